"""Rate-limit counters in the database (migration `web_0002_rate_limits`).

Kept here rather than in a process's memory so that every `serve --workers N` process and a
restarted server count the same attempts. A hit is one row; a window is a range of its time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paperwire.store.sqlite import SQLiteStore


@dataclass(frozen=True)
class Bucket:
    """At most `count` attempts of `action` by `key` in any `seconds`."""

    action: str
    key: str
    count: int
    seconds: float


@dataclass(frozen=True)
class Refused:
    """The first full bucket, and how long until it has room again."""

    bucket: Bucket
    retry_after: float


class RateLimits:
    """Counting attempts against several buckets at once, all or none."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.conn = store.conn

    def take(self, buckets: Sequence[Bucket], now: float | None = None) -> list[int] | Refused:
        """Count one attempt in every bucket, or in none when one of them is full.

        Returns the ids of the new hits (to give some back later: an attempt that turns out not to
        count, such as a successful log-in) or what refused it. One write transaction, so concurrent
        processes never let more than `count` through."""
        now = time.time() if now is None else now
        with self.store.transaction():
            self.store.hold(*sorted({f"rate:{b.action}:{b.key}" for b in buckets}))  # one counter at a time
            self.conn.execute("DELETE FROM rate_hits WHERE expires <= ?", (now,))
            for bucket in buckets:
                since = now - bucket.seconds
                (held,) = self.conn.execute("SELECT COUNT(*) FROM rate_hits WHERE action = ? AND key = ? AND at > ?",
                                            (bucket.action, bucket.key, since)).fetchone()
                if held >= bucket.count:
                    # Room again when enough of the oldest hits have left the window.
                    row = self.conn.execute(
                        "SELECT at FROM rate_hits WHERE action = ? AND key = ? AND at > ? ORDER BY at LIMIT 1 OFFSET ?",
                        (bucket.action, bucket.key, since, held - bucket.count)).fetchone()
                    oldest = row[0] if row else now
                    return Refused(bucket, max(1.0, oldest + bucket.seconds - now))
            ids = []
            for bucket in buckets:
                cur = self.conn.execute("INSERT INTO rate_hits(action, key, at, expires) VALUES (?, ?, ?, ?)",
                                        (bucket.action, bucket.key, now, now + bucket.seconds))
                ids.append(int(cur.lastrowid))
            return ids

    def give_back(self, hit_ids: Sequence[int]) -> None:
        """Uncount hits that `take` made."""
        if not hit_ids:
            return
        marks = ",".join("?" * len(hit_ids))
        with self.store.transaction():
            self.conn.execute(f"DELETE FROM rate_hits WHERE id IN ({marks})", tuple(hit_ids))

    def held(self, action: str, key: str, seconds: float, now: float | None = None) -> int:
        """Attempts of `action` by `key` counted in the last `seconds`."""
        now = time.time() if now is None else now
        (count,) = self.conn.execute("SELECT COUNT(*) FROM rate_hits WHERE action = ? AND key = ? AND at > ?",
                                     (action, key, now - seconds)).fetchone()
        return int(count)
