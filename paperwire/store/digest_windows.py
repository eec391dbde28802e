"""Which papers count as new for one digest period day (kept in `meta`, one row per period day).

The window of a period day is fixed by its first run and reused by re-runs, so a crash part-way
through a digest run does not change what is new: it reaches from the store's rev at the previous
period day's run (later ingests count once) to the rev at this one. A scheduled run that got through
its period day is recorded too, so the other nodes' schedules leave that day alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paperwire.store.sqlite import SQLiteStore


@dataclass(frozen=True)
class DigestWindow:
    from_rev: int | None  # None: the first digest of its period, so the window is by date
    from_day: str | None
    to_rev: int
    day: str


class DigestWindows:
    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    def fix(self, period: str, period_day: str, day: str) -> DigestWindow:
        """The window of this period day (`period_day` is 2025-03-11 or 2025-W11): the stored one, or a
        new one from the previous period day's end to the store's rev now."""
        key = f"digest_window:{period}:{period_day}"
        conn = self.store.conn
        with self.store.transaction():
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row is not None:
                return DigestWindow(**json.loads(row[0]))
            prev = conn.execute("SELECT value FROM meta WHERE key LIKE ? AND key < ? ORDER BY key DESC LIMIT 1",
                                (f"digest_window:{period}:%", key)).fetchone()
            before = json.loads(prev[0]) if prev else None
            window = DigestWindow(from_rev=before["to_rev"] if before else None,
                                  from_day=before["day"] if before else None,
                                  to_rev=self.store.max_rev(), day=day)
            conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(asdict(window))))
            return window

    def new_paper_ids(self, window: DigestWindow, first_day: str, last_day: str) -> list[str]:
        """Ids of the papers new in the window, in change order: written to the store within its revs or
        listed after its previous day up to `last_day`; for a first digest, listed or ingested from
        `first_day` to `last_day`."""
        if window.from_rev is None:
            rows = self.store.conn.execute(
                "SELECT id FROM papers WHERE rev <= ? AND (listed_on BETWEEN ? AND ? "
                "OR ingested_on BETWEEN ? AND ?) ORDER BY rev",
                (window.to_rev, first_day, last_day, first_day, last_day))
        else:
            rows = self.store.conn.execute(
                "SELECT id FROM papers WHERE (rev > ? AND rev <= ?) OR (listed_on > ? AND listed_on <= ?) ORDER BY rev",
                (window.from_rev, window.to_rev, window.from_day, last_day))
        return [r[0] for r in rows]

    def scheduled_run_done(self, period: str, period_day: str) -> bool:
        """Whether a schedule (on any node) has run this period day's digests through."""
        return self.store.conn.execute("SELECT 1 FROM meta WHERE key = ?",
                                       (f"digest_scheduled:{period}:{period_day}",)).fetchone() is not None

    def record_scheduled_run(self, period: str, period_day: str, day: str) -> None:
        with self.store.transaction():
            self.store.conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)",
                                    (f"digest_scheduled:{period}:{period_day}", json.dumps({"day": day})))
