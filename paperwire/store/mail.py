"""Subscriptions, the outbox and what each subscriber has been sent.

Outbox states: queued → sending → sent, or queued → failed after too many attempts.
`sending` is committed after the server has agreed to take the message body (354 to DATA) and
before the body is written; `sent` right after the server's 250. A process killed in between
leaves `sending`, which `recover_interrupted` counts as delivered: see paperwire/digest/deliver.py
for why. `sent_items` is written in the same transaction as the digest it belongs to, so a paper
is never put in two digests for one subscriber; a digest that finally fails gives its papers back.

Several deliveries at once (cron runs, server nodes): on SQLite they take turns (`delivery_run`, a
lock file beside the database: one writer anyway). On PostgreSQL they run side by side and `claim`
each mail: its row is locked with FOR UPDATE SKIP LOCKED until `sending` is committed, so another
delivery passes over it instead of waiting for this one's SMTP round trips, and a session lock on the
mail is held for the whole attempt, so another delivery neither takes it while its outcome is being
written nor counts it interrupted while its body is on the wire. A killed sender's session ends, and
with it both locks.
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from paperwire.store.base import DatabaseUnavailable

if TYPE_CHECKING:
    from paperwire.store.sqlite import SQLiteStore

_NOW = "(strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"


PERIODS = ("daily", "weekly")
PENDING, ACTIVE, UNSUBSCRIBED = "pending", "active", "unsubscribed"
QUEUED, SENDING, SENT, FAILED = "queued", "sending", "sent", "failed"
DELIVERY_LOCK = "outbox"  # the store lock one delivery at a time holds where rows are not locked (SQLite)
# Seed of the session lock a delivery holds on one mail (PostgreSQL): hashtextextended(this, outbox id).
_MAIL_LOCK = "paperwire-outbox-mail"


@dataclass
class Subscription:
    id: int
    email: str
    period: str
    status: str
    user_id: int | None
    content: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    confirmed_at: str | None = None
    unsubscribed_at: str | None = None
    requested: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"email": self.email, "period": self.period, "status": self.status}


@dataclass
class OutboxItem:
    id: int
    dedupe_key: str
    subscription_id: int | None
    kind: str
    recipient: str
    message_id: str
    status: str
    attempts: int
    last_error: str | None
    message: bytes = b""


_SUB_COLUMNS = "id, email, period, status, user_id, content, created_at, confirmed_at, unsubscribed_at, requested"
_OUTBOX_COLUMNS = "id, dedupe_key, subscription_id, kind, recipient, message_id, status, attempts, last_error"


def _subscription(row: tuple) -> Subscription:
    values = list(row)
    values[5] = json.loads(values[5] or "{}")
    values[9] = json.loads(values[9]) if values[9] else None
    return Subscription(*values)


def compress(message: bytes) -> bytes:
    # Level 1: the bodies are base64, which level 6 shrinks only 7% further at twice the CPU.
    return zlib.compress(message, 1)


class MailStore:
    """Mail tables of one store."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.conn = store.conn
        self._claim: ExitStack | None = None  # the open transaction of a claimed mail, until `sending`

    # ------------------------------------------------------------ subscriptions

    def get(self, subscription_id: int) -> Subscription | None:
        row = self.conn.execute(f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE id = ?",
                                (subscription_id,)).fetchone()
        return _subscription(row) if row else None

    def by_email(self, email: str) -> Subscription | None:
        row = self.conn.execute(f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE email = ?", (email,)).fetchone()
        return _subscription(row) if row else None

    def subscriptions(self, *, period: str | None = None, status: str | None = None) -> list[Subscription]:
        sql, args = f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE 1 = 1", []
        if period:
            sql, args = sql + " AND period = ?", [*args, period]
        if status:
            sql, args = sql + " AND status = ?", [*args, status]
        return [_subscription(r) for r in self.conn.execute(sql + " ORDER BY id", args)]

    def upsert_subscription(self, email: str, period: str, *, user_id: int | None = None,
                            content: dict[str, Any] | None = None, apply_to_active: bool = True) -> Subscription:
        """Create a pending subscription, or update the wishes of an existing one.

        An unsubscribed address starts again as pending (it must confirm again); an active one
        stays active. With `apply_to_active` False an active subscription keeps its settings and
        the wish is stored as `requested` until `apply_request` (the owner confirmed it)."""
        if period not in PERIODS:
            raise ValueError(f"period must be one of {', '.join(PERIODS)}")
        with self.store.transaction():
            existing = self.by_email(email)
            if existing is None:
                cur = self.conn.execute(
                    "INSERT INTO subscriptions(email, period, status, user_id, content) VALUES (?, ?, ?, ?, ?)",
                    (email, period, PENDING, user_id, json.dumps(content or {}, sort_keys=True)))
                return self.get(int(cur.lastrowid or 0))  # type: ignore[return-value]
            if existing.status == ACTIVE and not apply_to_active:
                wish = {"period": period, "user_id": user_id if user_id is not None else existing.user_id,
                        "content": content if content is not None else existing.content}
                current = {"period": existing.period, "user_id": existing.user_id, "content": existing.content}
                self.conn.execute("UPDATE subscriptions SET requested = ? WHERE id = ?",
                                  (None if wish == current else json.dumps(wish, sort_keys=True), existing.id))
                return self.get(existing.id)  # type: ignore[return-value]
            status = PENDING if existing.status == UNSUBSCRIBED else existing.status
            self.conn.execute(
                "UPDATE subscriptions SET period = ?, status = ?, user_id = COALESCE(?, user_id), requested = NULL, "
                "content = ?, unsubscribed_at = CASE WHEN ? = 'pending' THEN NULL ELSE unsubscribed_at END "
                "WHERE id = ?",
                (period, status, user_id, json.dumps(content if content is not None else existing.content,
                                                     sort_keys=True), status, existing.id))
            return self.get(existing.id)  # type: ignore[return-value]

    def apply_request(self, subscription_id: int) -> bool:
        """Make a stored change request the subscription's settings; True if there was one."""
        with self.store.transaction():
            sub = self.get(subscription_id)
            if sub is None or not sub.requested:
                return False
            wish = sub.requested
            self.conn.execute("UPDATE subscriptions SET period = ?, user_id = ?, content = ?, requested = NULL "
                              "WHERE id = ?", (wish["period"], wish.get("user_id"),
                                               json.dumps(wish.get("content") or {}, sort_keys=True), sub.id))
            return True

    def activate(self, subscription_id: int) -> bool:
        """pending → active; True if this call changed it."""
        with self.store.transaction():
            cur = self.conn.execute(f"UPDATE subscriptions SET status = 'active', confirmed_at = {_NOW} "
                                    "WHERE id = ? AND status = 'pending'", (subscription_id,))
            return cur.rowcount > 0

    def unsubscribe(self, subscription_id: int) -> bool:
        """Any state → unsubscribed, and queued mail to it is dropped; True if this call changed it."""
        with self.store.transaction():
            cur = self.conn.execute(f"UPDATE subscriptions SET status = 'unsubscribed', unsubscribed_at = {_NOW} "
                                    "WHERE id = ? AND status != 'unsubscribed'", (subscription_id,))
            # Mail dropped here was never sent: its papers do not count as sent.
            self.conn.execute("DELETE FROM sent_items WHERE outbox_id IN (SELECT id FROM outbox "
                              "WHERE subscription_id = ? AND status = 'queued')", (subscription_id,))
            self.conn.execute("UPDATE outbox SET status = 'failed', last_error = 'unsubscribed before delivery' "
                              "WHERE subscription_id = ? AND status = 'queued'", (subscription_id,))
            self.conn.execute("UPDATE subscriptions SET requested = NULL WHERE id = ?", (subscription_id,))
            return cur.rowcount > 0

    # ------------------------------------------------------------ what was sent

    def sent_papers(self, subscription_id: int) -> set[str]:
        rows = self.conn.execute("SELECT paper_id FROM sent_items WHERE subscription_id = ?", (subscription_id,))
        return {r[0] for r in rows}

    def sent_papers_for_user(self, user_id: int) -> set[str]:
        rows = self.conn.execute("SELECT s.paper_id FROM sent_items s JOIN subscriptions u "
                                 "ON u.id = s.subscription_id WHERE u.user_id = ?", (user_id,))
        return {r[0] for r in rows}

    def last_mail_time(self, subscription_id: int, kind: str) -> float | None:
        """Unix time the newest mail of this kind was queued for the subscriber."""
        row = self.conn.execute("SELECT MAX(strftime('%s', created_at)) FROM outbox WHERE subscription_id = ? "
                                "AND kind = ?", (subscription_id, kind)).fetchone()
        return float(row[0]) if row and row[0] else None

    # ------------------------------------------------------------ outbox

    def has_mail(self, dedupe_key: str) -> bool:
        return self.conn.execute("SELECT 1 FROM outbox WHERE dedupe_key = ?", (dedupe_key,)).fetchone() is not None

    def enqueue(self, *, dedupe_key: str, subscription_id: int | None, kind: str, recipient: str,
                message_id: str, message: bytes, paper_ids: list[str] = ()) -> int | None:  # type: ignore[assignment]
        """Queue one mail unless one with this key exists; its papers count as sent to the subscriber.

        Returns the outbox id, or None if the key was already queued (idempotent re-runs)."""
        with self.store.transaction():
            cur = self.conn.execute(
                "INSERT INTO outbox(dedupe_key, subscription_id, kind, recipient, message_id, message) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(dedupe_key) DO NOTHING",
                (dedupe_key, subscription_id, kind, recipient, message_id, compress(message)))
            if cur.rowcount == 0:
                return None
            outbox_id = int(cur.lastrowid or 0)
            if paper_ids and subscription_id is not None:
                self.conn.executemany("INSERT OR IGNORE INTO sent_items(subscription_id, paper_id, outbox_id) "
                                      "VALUES (?, ?, ?)", [(subscription_id, pid, outbox_id) for pid in paper_ids])
            return outbox_id

    def due(self, now: float | None = None, *, kinds: tuple[str, ...] | None = None) -> list[OutboxItem]:
        """Queued mails whose next attempt is due, oldest first, message bytes included."""
        now = time.time() if now is None else now
        sql = f"SELECT {_OUTBOX_COLUMNS}, message FROM outbox WHERE status = 'queued' AND next_attempt_at <= ?"
        args: list[Any] = [now]
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args += list(kinds)
        items = []
        for row in self.conn.execute(sql + " ORDER BY id", args):
            item = OutboxItem(*row[:-1])
            item.message = zlib.decompress(row[-1])
            items.append(item)
        return items

    def waiting(self, now: float | None = None, *, kinds: tuple[str, ...] | None = None) -> tuple[int, float, str]:
        """Queued mails still waiting on their backoff: (how many, when the first is due, its last error)."""
        now = time.time() if now is None else now
        sql = "FROM outbox WHERE status = 'queued' AND next_attempt_at > ?"
        args: list[Any] = [now]
        if kinds:
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args += list(kinds)
        count = self.conn.execute("SELECT COUNT(*) " + sql, args).fetchone()[0]
        if not count:
            return 0, 0.0, ""
        due, error = self.conn.execute("SELECT next_attempt_at, last_error " + sql + " ORDER BY next_attempt_at, id "
                                       "LIMIT 1", args).fetchone()
        return count, due, error or ""

    def status(self, outbox_id: int) -> str | None:
        row = self.conn.execute("SELECT status FROM outbox WHERE id = ?", (outbox_id,)).fetchone()
        return row[0] if row else None

    def latest_mail(self, subscription_id: int, kind: str) -> OutboxItem | None:
        """The newest mail of this kind queued for the subscriber (without its message bytes)."""
        row = self.conn.execute(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE subscription_id = ? AND kind = ? "
                                "ORDER BY id DESC LIMIT 1", (subscription_id, kind)).fetchone()
        return OutboxItem(*row) if row else None

    def queued_count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'queued'").fetchone()[0]

    def next_attempt_at(self) -> float | None:
        row = self.conn.execute("SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'queued'").fetchone()
        return row[0]

    def delivery_run(self) -> AbstractContextManager[Any]:
        """Held around one delivery run: on SQLite one run at a time (any process using the database);
        on PostgreSQL runs go side by side, each mail claimed on its own (`claim`)."""
        return nullcontext() if self.store.ROW_LOCKS else self.store.exclusive(DELIVERY_LOCK)

    @contextmanager
    def claim(self, outbox_id: int, *, due_by: float | None = None) -> Iterator[bool]:
        """Hold one queued mail for one delivery attempt (the block); yields whether this caller has it:
        False when another delivery has it, or it is no longer queued, or (with `due_by`) its next
        attempt is later. See the module docstring for the locks; the block's writes up to
        `mark_sending` (or a retry or failure written before it) commit with the claim."""
        due = " AND next_attempt_at <= ?" if due_by is not None else ""
        args: tuple[Any, ...] = (outbox_id,) if due_by is None else (outbox_id, due_by)
        if not self.store.ROW_LOCKS:  # one delivery at a time (`delivery_run`): whether it is still queued
            yield self.conn.execute("SELECT 1 FROM outbox WHERE id = ? AND status = 'queued'" + due,
                                    args).fetchone() is not None
            return
        claim = ExitStack()
        claim.enter_context(self.store.transaction())
        locked = False
        try:
            row = self.conn.execute("SELECT id FROM outbox WHERE id = ? AND status = 'queued'" + due +
                                    " FOR UPDATE SKIP LOCKED", args).fetchone()
            locked = row is not None and bool(self.conn.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(?, CAST(? AS BIGINT)))",
                (_MAIL_LOCK, outbox_id)).fetchone()[0])
            if not locked:
                claim.close()
                yield False
                return
            self._claim = claim
            yield True
            self._end_claim()
        except BaseException:
            self._claim = None
            claim.__exit__(*sys.exc_info())  # rolls back what the claim had not committed
            raise
        finally:
            if locked:
                try:
                    self.conn.execute("SELECT pg_advisory_unlock(hashtextextended(?, CAST(? AS BIGINT)))",
                                      (_MAIL_LOCK, outbox_id))
                except DatabaseUnavailable:
                    pass  # the session is gone, and its locks with it

    def _end_claim(self) -> None:
        """Commit the open claim's transaction (and with it release its row lock), if there is one."""
        claim, self._claim = self._claim, None
        if claim is not None:
            claim.close()

    def recover_interrupted(self) -> int:
        """Mails left in `sending` by a killed process: the server already had their body; count them sent.
        On PostgreSQL only those no live delivery holds (its session lock on the mail): the others are
        on their way."""
        error = "delivery was interrupted after the server took the message; counted as sent"
        with self.store.transaction():
            if not self.store.ROW_LOCKS:
                cur = self.conn.execute(f"UPDATE outbox SET status = 'sent', sent_at = {_NOW}, last_error = ? "
                                        "WHERE status = 'sending'", (error,))
                return cur.rowcount
            # Materialised first so the transaction's locks are tried on `sending` rows only.
            cur = self.conn.execute(
                "WITH interrupted AS MATERIALIZED (SELECT id FROM outbox WHERE status = 'sending') "
                f"UPDATE outbox SET status = 'sent', sent_at = {_NOW}, last_error = ? WHERE id IN "
                "(SELECT id FROM interrupted WHERE pg_try_advisory_xact_lock(hashtextextended(?, id)))",
                (error, _MAIL_LOCK))
            return cur.rowcount

    def mark_sending(self, outbox_id: int) -> bool:
        """queued → sending, committed before this returns (a claim's transaction too): the body may
        go to the server only after this. False if someone else changed it (for example an unsubscribe)."""
        with self.store.transaction():
            cur = self.conn.execute("UPDATE outbox SET status = 'sending', attempts = attempts + 1 "
                                    "WHERE id = ? AND status = 'queued'", (outbox_id,))
        self._end_claim()
        return cur.rowcount > 0

    def mark_sent(self, outbox_id: int) -> None:
        with self.store.transaction():
            self.conn.execute(f"UPDATE outbox SET status = 'sent', sent_at = {_NOW}, last_error = NULL WHERE id = ?",
                              (outbox_id,))

    def mark_retry(self, outbox_id: int, error: str, next_attempt_at: float, *, counted: bool = False) -> None:
        """Back to queued for a later attempt. `counted`: the attempt was already counted by mark_sending."""
        with self.store.transaction():
            self.conn.execute("UPDATE outbox SET status = 'queued', last_error = ?, next_attempt_at = ?, "
                              f"attempts = attempts + {0 if counted else 1} WHERE id = ?",
                              (error[:500], next_attempt_at, outbox_id))

    def mark_failed(self, outbox_id: int, error: str) -> None:
        """Give up on a mail; its papers may go into a later digest."""
        with self.store.transaction():
            self.conn.execute("UPDATE outbox SET status = 'failed', last_error = ? WHERE id = ?",
                              (error[:500], outbox_id))
            self.conn.execute("DELETE FROM sent_items WHERE outbox_id = ?", (outbox_id,))

    def attempts(self, outbox_id: int) -> int:
        return self.conn.execute("SELECT attempts FROM outbox WHERE id = ?", (outbox_id,)).fetchone()[0]

    def outbox_counts(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall())

    def outbox_items(self, *, kind: str | None = None) -> list[OutboxItem]:
        sql = f"SELECT {_OUTBOX_COLUMNS} FROM outbox"
        rows = self.conn.execute(sql + (" WHERE kind = ?" if kind else "") + " ORDER BY id", (kind,) if kind else ())
        return [OutboxItem(*r) for r in rows]
