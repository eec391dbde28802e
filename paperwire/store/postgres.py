"""PostgreSQL backend (server mode): several paperwire processes or machines on one database.

The store's queries and migrations are the SQLite backend's, read as PostgreSQL by store/dialect.py;
what differs lives here: connections come from a pool per database URL (psycopg 3 + psycopg_pool),
migrations run under an advisory lock (nodes starting together wait their turn), new papers go in
with COPY, and revs are handed out under a transaction-scoped advisory lock, so they follow commit
order and a node's index that reads `rev > last seen` never skips a paper committed late.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg_pool import ConnectionPool, PoolTimeout

from paperwire.model import Paper
from paperwire.store.base import DatabaseUnavailable, UpsertResult
from paperwire.store.dialect import PostgresConnection, identity_tables, postgres_sql
from paperwire.store.migrations import MIGRATIONS
from paperwire.store.rows import COLUMNS, PaperRow
from paperwire.store.sqlite import SQLiteStore

# The advisory lock key of migrations (a constant no other program on the database uses).
MIGRATION_LOCK = 0x70617065  # "pape"
POOL_SIZE = 16
CONNECT_TIMEOUT = 10  # seconds
_COPY_COLUMNS = ("rev", *COLUMNS, "title_key", "title_hash", "ingested_on")
_IDENTITY = identity_tables(s for _, steps in MIGRATIONS for s in steps if isinstance(s, str))
_pools: dict[str, ConnectionPool] = {}
_pools_lock = threading.Lock()


def safe_url(url: str) -> str:
    """The URL with its password left out, for messages and stats."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc[-1]}"))


class _NumberLoader(Loader):
    """numeric (what SUM of integers gives) as int when whole, else float: as SQLite answers."""

    def load(self, data: Buffer) -> int | float:
        text = bytes(data).decode()
        return int(text) if text.lstrip("-").isdigit() else float(text)


def _configure(conn: psycopg.Connection) -> None:
    conn.adapters.register_loader("numeric", _NumberLoader)


def _pool(url: str) -> ConnectionPool:
    with _pools_lock:
        pool = _pools.get(url)
        if pool is None:
            try:  # one plain connection first, for a clear error (a pool only says it timed out)
                psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT).close()
            except psycopg.Error as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                raise DatabaseUnavailable(f"cannot connect to the database at {safe_url(url)}: {reason}") from None
            pool = ConnectionPool(url, min_size=1, max_size=POOL_SIZE, open=True, name="paperwire",
                                  kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
                                  configure=_configure, check=ConnectionPool.check_connection)
            _pools[url] = pool
        return pool


def _forget_pools_in_child() -> None:
    """A forked child starts its own pools: the parent's connections and pool threads are the parent's
    (closing them here would end the parent's sessions)."""
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pools_in_child)


def close_pool(url: str) -> None:
    """Close this process's connections to one database (its stores closed), as before the database is
    copied or dropped, which PostgreSQL does only with no session connected."""
    with _pools_lock:
        pool = _pools.pop(url, None)
    if pool is not None:
        pool.close()


def close_pools() -> None:
    with _pools_lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()


class PostgresStore(SQLiteStore):
    """The store on PostgreSQL. One pooled connection per store object, used by one thread at a time."""

    BEGIN = "BEGIN"
    INTEGRITY_ERRORS = (psycopg.IntegrityError,)
    ROW_LOCKS = True  # FOR UPDATE SKIP LOCKED: deliveries on several nodes claim outbox rows side by side

    def __init__(self, url: str, *, readonly: bool = False) -> None:  # noqa: D107 - no SQLite file here
        self.url = url
        self.path = safe_url(url)  # type: ignore[assignment]  # where the data is, for messages and stats
        self._lock = threading.RLock()
        self._depth = 0
        self._pool = _pool(url)
        self.conn = PostgresConnection(self._getconn(), _IDENTITY, self._reconnect)  # type: ignore[assignment]
        if not readonly:
            self.migrate()

    @property
    def _raw(self) -> psycopg.Connection:
        return self.conn.live()

    def _getconn(self) -> psycopg.Connection:
        try:
            return self._pool.getconn(timeout=CONNECT_TIMEOUT)
        except PoolTimeout:
            raise DatabaseUnavailable(f"the database at {self.path} is not answering") from None

    def _reconnect(self, dropped: psycopg.Connection | None) -> psycopg.Connection:
        """After the server dropped this store's connection (a restart): the pool discards it, a new one
        comes, or DatabaseUnavailable while the server is still away."""
        self._depth = 0  # whatever transaction was open ended with the connection
        if dropped is not None:
            self._pool.putconn(dropped)
        return self._getconn()

    # ------------------------------------------------------------ schema

    def schema_version(self) -> int:
        row = self.conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        if not row or not row[0]:
            return 0
        return int(self.conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0])

    def migrate(self) -> None:
        """The same migrations as SQLite's, each in its own transaction, one node at a time."""
        raw = self._raw
        raw.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            raw.execute("CREATE EXTENSION IF NOT EXISTS citext")
            raw.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                        "name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            applied = {name for (name,) in raw.execute("SELECT name FROM schema_migrations")}
            known = {name for name, _ in MIGRATIONS}
            if applied - known:
                newer = sorted(applied - known)
                raise DatabaseUnavailable(f"{self.path}: made by a newer paperwire (migrations {newer})")
            for name, statements in MIGRATIONS:
                if name in applied:
                    continue
                with self.transaction():
                    for statement in statements:
                        if callable(statement):
                            statement(self.conn)  # type: ignore[arg-type]
                        else:
                            raw.execute(postgres_sql(statement, with_params=False))
                    raw.execute("INSERT INTO schema_migrations(name) VALUES (%s)", (name,))
                applied.add(name)
        finally:
            raw.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))

    # ------------------------------------------------------------ papers

    def upsert_papers(self, papers: Iterable[Paper | PaperRow]) -> UpsertResult:
        with self.transaction():
            # Revs in commit order: writers of papers take turns until they commit.
            self.hold("papers")
            return super().upsert_papers(papers)

    def _insert_papers(self, records: list[tuple]) -> None:
        with self._raw.cursor() as cursor:
            with cursor.copy(f"COPY papers ({', '.join(_COPY_COLUMNS)}) FROM STDIN") as copy:
                for record in records:
                    copy.write_row(record)
        self.conn.total_changes += len(records)

    # ------------------------------------------------------------ the rest

    def change_token(self) -> str:
        """The transactions this statement's snapshot sees as committed or running: it moves with every
        transaction that writes, on any node, as soon as it commits, and never with a read. (The write-ahead
        log position moved with reads that prune old row versions, and with synchronous_commit off it
        trailed a commit until the log was written.)"""
        return str(self.conn.execute("SELECT pg_current_snapshot()").fetchone()[0])

    @contextmanager
    def exclusive(self, name: str, *, wait: bool = True) -> Iterator[bool]:
        """A session advisory lock: one holder among every node; a killed holder's connection ends and
        with it the lock. Yields whether this store holds it (unless `wait` is False, always)."""
        if wait:
            self.conn.execute("SELECT pg_advisory_lock(hashtextextended(?, 0))", (name,))
        elif not self.conn.execute("SELECT pg_try_advisory_lock(hashtextextended(?, 0))", (name,)).fetchone()[0]:
            yield False
            return
        try:
            yield True
        finally:
            self.conn.execute("SELECT pg_advisory_unlock(hashtextextended(?, 0))", (name,))

    def hold(self, *names: str) -> None:
        for name in names:  # callers pass them sorted, so two transactions never wait on each other
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (name,))

    def tables_with_column(self, column: str) -> list[str]:
        rows = self.conn.execute("SELECT table_name FROM information_schema.columns WHERE table_schema = "
                                 "current_schema() AND column_name = ? ORDER BY table_name", (column,))
        return [r[0] for r in rows]

    def integrity_check(self) -> str:
        return "ok"  # PostgreSQL checks its own pages; there is no cheap whole-database check to run

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "backend": "postgresql"}

    def close(self) -> None:
        raw, self.conn.raw = self.conn.raw, None
        if raw is not None:
            self._pool.putconn(raw)
