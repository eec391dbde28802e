"""`paperwire migrate`: copy a home's SQLite store into a PostgreSQL database, resumably, and prove the
copy by counting and hashing both sides.

The tables are the ones the migrations create, in the order they create them (a table refers only to
tables made before it, so that order also satisfies the foreign keys). Each table is read in key order
and written with COPY in batches; a batch and the note of how far its table has come
(`paperwire_copy_progress`, in the target) commit together, so a run killed at any point leaves whole
batches and the next run goes on after the last one. Ids are copied as they are; afterwards every
sequence of the target is set past its column's largest value so new rows do not collide.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from paperwire.store.base import DatabaseUnavailable
from paperwire.store.dialect import primary_keys
from paperwire.store.migrations import MIGRATIONS
from paperwire.store.sqlite import SQLiteStore

PROGRESS_TABLE = "paperwire_copy_progress"
# The advisory lock key of a copy into a database (one copy at a time); "pwcp".
COPY_LOCK = 0x70776370
BATCH_ROWS = 5_000
# Test hooks (read only here): rows per batch, and a batch number at which the process kills itself with
# SIGKILL after sending that batch's rows and before committing it, to show a resumed copy is whole.
BATCH_ROWS_ENV = "PAPERWIRE_MIGRATE_BATCH_ROWS"
KILL_AT_BATCH_ENV = "PAPERWIRE_MIGRATE_KILL_AT_BATCH"

_CREATE_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I)


class CopyError(RuntimeError):
    """A copy that cannot start or did not come out identical (what and where, in one line)."""


@dataclass
class CopyReport:
    """What one run did: rows per table in the target, whether it went on from an earlier run."""

    target: str
    tables: dict[str, int] = field(default_factory=dict)
    copied: int = 0  # rows this run wrote (less than the total when it resumed)
    seconds: float = 0.0
    verify_seconds: float = 0.0  # of `seconds`: reading and hashing both sides
    resumed: bool = False
    verified: bool = False

    def to_dict(self) -> dict[str, Any]:
        rows = sum(self.tables.values())
        return {"target": self.target, "tables": self.tables, "rows": rows, "copied": self.copied,
                "seconds": round(self.seconds, 3),
                "rows_per_second": round(self.copied / self.seconds) if self.seconds > 0 else None,
                "verify_seconds": round(self.verify_seconds, 3), "resumed": self.resumed, "verified": self.verified}


def schema_tables() -> list[str]:
    """Every table the migrations create, in the order they create them."""
    names: list[str] = []
    for _, steps in MIGRATIONS:
        for step in steps:
            if isinstance(step, str) and (match := _CREATE_TABLE.match(step)) and match.group(1) not in names:
                names.append(match.group(1))
    return names


@dataclass(frozen=True)
class _Table:
    name: str
    columns: tuple[str, ...]
    keys: tuple[str, ...]  # the primary key's columns: the order rows are copied and hashed in
    text_keys: frozenset[str]  # key columns of text type (ordered byte-wise on PostgreSQL, as SQLite does)

    def source_select(self, after: Sequence[Any] | None) -> tuple[str, list[Any]]:
        sql = f"SELECT {', '.join(self.columns)} FROM {self.name}"
        params: list[Any] = []
        if after is not None:
            sql += f" WHERE ({', '.join(self.keys)}) > ({', '.join('?' * len(self.keys))})"
            params = list(after)
        return sql + f" ORDER BY {', '.join(self.keys)}", params

    def target_select(self) -> str:
        order = ", ".join(f'{k} COLLATE "C"' if k in self.text_keys else k for k in self.keys)
        return f"SELECT {', '.join(self.columns)} FROM {self.name} ORDER BY {order}"


def _row_bytes(row: Sequence[Any]) -> bytes:
    """One row as the checksum reads it: its values' types and values (repr is exact for the types
    both databases give: None, int, float, str, bytes)."""
    return repr(tuple(row)).encode("utf-8", "surrogatepass") + b"\n"


def _scrub(message: str, url: str) -> str:
    """An error message without the URL's password, on one line."""
    from urllib.parse import unquote, urlsplit

    password = urlsplit(url).password
    text = " ".join(message.split())
    for secret in {password, unquote(password)} if password else ():
        if secret:
            text = text.replace(secret, "***")
    return text


class _Copier:
    def __init__(self, source: Path, url: str, *, force: bool, batch_rows: int,
                 on_total: Callable[[int], None] | None, advance: Callable[[int], None] | None) -> None:
        from paperwire.store.postgres import PostgresStore, safe_url

        self.source_path = source
        self.url = url
        self.where = safe_url(url)
        self.force = force
        self.batch_rows = batch_rows
        self.on_total = on_total or (lambda _n: None)
        self.advance = advance or (lambda _n: None)
        self.kill_at = int(os.environ.get(KILL_AT_BATCH_ENV) or 0)
        self.batches = 0
        self.source = _open_source(source)
        try:
            self.target = PostgresStore(url)  # migrates the target first: the same migrations as SQLite's
        except BaseException:
            self.source.close()
            raise
        self.raw: psycopg.Connection = self.target.conn.live()

    def close(self) -> None:
        self.source.close()
        self.target.close()

    # ------------------------------------------------------------ tables

    def tables(self) -> list[_Table]:
        present = {r[0]: r[1] for r in self.raw.execute(
            "SELECT table_name, array_agg(column_name::text ORDER BY ordinal_position) "
            "FROM information_schema.columns WHERE table_schema = current_schema() GROUP BY table_name")}
        kinds = {(r[0], r[1]): r[2] for r in self.raw.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema()")}
        keys = primary_keys()
        found: list[_Table] = []
        for name in schema_tables():
            if name not in present:
                continue  # not in the target after its migrations: a table a later migration dropped
            columns = tuple(present[name])
            source_columns = {r[1] for r in self.source.conn.execute(f'PRAGMA table_info("{name}")')}
            missing = [c for c in columns if c not in source_columns]
            if missing:
                raise CopyError(f"{self.source_path}: table {name} has no column {missing[0]} "
                                "(the home's schema differs from the database's)")
            key = keys.get(name) or columns
            text_keys = frozenset(k for k in key if kinds[(name, k)] in ("text", "USER-DEFINED", "character varying"))
            found.append(_Table(name, columns, key, text_keys))
        return found

    # ------------------------------------------------------------ the run

    def run(self) -> CopyReport:
        started = time.monotonic()
        report = CopyReport(self.where)
        locked = self.raw.execute("SELECT pg_try_advisory_lock(%s)", (COPY_LOCK,)).fetchone()[0]
        if not locked:
            raise CopyError(f"{self.where}: another `paperwire migrate` is copying into this database")
        try:
            tables = self.tables()
            progress = self._start(tables)
            report.resumed = any(rows or done for rows, _, done in progress.values())
            # A consistent view of the home for this run: one read transaction over every table.
            self.source.conn.execute("BEGIN")
            try:
                totals = {t.name: self.source.conn.execute(f"SELECT COUNT(*) FROM {t.name}").fetchone()[0]
                          for t in tables}
                self.on_total(2 * sum(totals.values()))  # each row is counted copying it, then verifying it
                self.advance(sum(progress[t.name][0] for t in tables))
                for table in tables:
                    rows, last_key, done = progress[table.name]
                    if not done:
                        report.copied += self._copy_table(table, rows, last_key)
                self._set_sequences(tables)
                verifying = time.monotonic()
                report.tables = self._verify(tables)
                report.verify_seconds = time.monotonic() - verifying
                report.verified = True
            finally:
                self.source.conn.execute("ROLLBACK")
        finally:
            self.raw.execute("SELECT pg_advisory_unlock(%s)", (COPY_LOCK,))
        report.seconds = time.monotonic() - started
        return report

    def _start(self, tables: list[_Table]) -> dict[str, tuple[int, Any, bool]]:
        """Each table's (rows copied, last key copied, done): an earlier run's into this target from this
        home, or nothing after checking that the target is empty (or emptying it with --force)."""
        source = str(self.source_path.resolve())
        self.raw.execute(f"""CREATE TABLE IF NOT EXISTS {PROGRESS_TABLE} (
            table_name TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            rows BIGINT NOT NULL DEFAULT 0,
            last_key TEXT,
            done BOOLEAN NOT NULL DEFAULT false,
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now())""")
        earlier = {r[0]: (r[1], r[2], r[3], r[4]) for r in self.raw.execute(
            f"SELECT table_name, source, rows, last_key, done FROM {PROGRESS_TABLE}")}
        ours = bool(earlier) and all(e[0] == source for e in earlier.values())
        if ours and not self.force:
            return {t.name: (earlier[t.name][1], json.loads(earlier[t.name][2]) if earlier[t.name][2] else None,
                             earlier[t.name][3]) if t.name in earlier else (0, None, False) for t in tables}
        if not self.force:
            held = [t.name for t in tables
                    if self.raw.execute(f"SELECT EXISTS (SELECT 1 FROM {t.name})").fetchone()[0]]
            if held:
                raise CopyError(f"{self.where} is not empty (table {held[0]} has rows): "
                                "pass --force to replace its contents")
        with self.raw.transaction():
            names = ", ".join([t.name for t in tables] + [PROGRESS_TABLE])
            self.raw.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
            with self.raw.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {PROGRESS_TABLE} (table_name, source) VALUES (%s, %s)",
                                   [(t.name, source) for t in tables])
        return {t.name: (0, None, False) for t in tables}

    def _copy_table(self, table: _Table, rows: int, last_key: Any) -> int:
        sql, params = table.source_select(last_key)
        cursor = self.source.conn.execute(sql, params)
        key_at = [table.columns.index(k) for k in table.keys]
        copied = 0
        while True:
            batch = cursor.fetchmany(self.batch_rows)
            if not batch:
                break
            last = [batch[-1][i] for i in key_at]
            with self.raw.transaction():
                with self.raw.cursor() as out:
                    with out.copy(f"COPY {table.name} ({', '.join(table.columns)}) FROM STDIN") as copy:
                        for row in batch:
                            copy.write_row(row)
                    self.batches += 1
                    if self.batches == self.kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)  # the test hook: a crash before this batch commits
                    rows += len(batch)
                    out.execute(f"UPDATE {PROGRESS_TABLE} SET rows = %s, last_key = %s, updated_at = now() "
                                "WHERE table_name = %s", (rows, json.dumps(last), table.name))
            copied += len(batch)
            self.advance(len(batch))
        self.raw.execute(f"UPDATE {PROGRESS_TABLE} SET done = true, updated_at = now() WHERE table_name = %s",
                         (table.name,))
        return copied

    def _set_sequences(self, tables: list[_Table]) -> None:
        """Every sequence a copied column owns (identity ids) continues after the column's largest value."""
        names = [t.name for t in tables]
        owned = self.raw.execute(
            "SELECT table_name, column_name, pg_get_serial_sequence(quote_ident(table_name), column_name) "
            "FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ANY(%s) "
            "AND pg_get_serial_sequence(quote_ident(table_name), column_name) IS NOT NULL", (names,)).fetchall()
        with self.raw.transaction():
            for table, column, sequence in owned:
                self.raw.execute(f"SELECT setval(%s, COALESCE(MAX({column}), 0) + 1, false) FROM {table}",
                                 (sequence,))

    def _verify(self, tables: list[_Table]) -> dict[str, int]:
        """Row counts and a checksum over the rows in key order, read from both sides; a difference
        is a CopyError naming the first table that differs."""
        counts: dict[str, int] = {}
        for table in tables:
            sql, params = table.source_select(None)
            ours = _digest(self.source.conn.execute(sql, params))
            theirs = _digest(self._target_rows(table), self.advance)
            if ours != theirs:
                detail = (f"{ours[0]} rows in the home, {theirs[0]} in the database" if ours[0] != theirs[0]
                          else f"{ours[0]} rows on both sides but their checksums differ")
                raise CopyError(f"copy into {self.where} does not match the home: table {table.name}: {detail} "
                                "(was the home written during the copy? run again with --force)")
            counts[table.name] = ours[0]
        return counts

    def _target_rows(self, table: _Table) -> Iterator[tuple]:
        with self.raw.transaction():
            with self.raw.cursor(name=f"verify_{table.name}") as cursor:
                cursor.itersize = 5_000
                cursor.execute(table.target_select())
                yield from cursor


def _digest(rows: Any, advance: Callable[[int], None] | None = None) -> tuple[int, str]:
    """(rows, checksum) of rows in order; `advance` hears of every 5,000 rows read."""
    digest = hashlib.blake2b(digest_size=16)
    count = 0
    for row in rows:
        digest.update(_row_bytes(row))
        count += 1
        if advance and count % 5_000 == 0:
            advance(5_000)
    if advance:
        advance(count % 5_000)
    return count, digest.hexdigest()


def _open_source(path: Path) -> SQLiteStore:
    """The home's SQLite store read-only; brought to the current schema first when it is older (as any
    command that opens it would)."""
    if not path.is_file():
        raise CopyError(f"{path}: no SQLite database here to copy")
    try:
        store = SQLiteStore(path, readonly=True)
        applied = {r[0] for r in store.conn.execute("SELECT name FROM schema_migrations")}
    except sqlite3.Error as exc:
        raise CopyError(f"{path}: cannot read it as a paperwire database: {exc}") from None
    known = {name for name, _ in MIGRATIONS}
    if applied - known:
        store.close()
        raise CopyError(f"{path}: made by a newer paperwire (migrations {sorted(applied - known)})")
    if known - applied:
        store.close()
        SQLiteStore(path).close()
        store = SQLiteStore(path, readonly=True)
    return store


def copy_to_postgres(source: Path, url: str, *, force: bool = False,
                     on_total: Callable[[int], None] | None = None,
                     advance: Callable[[int], None] | None = None) -> CopyReport:
    """Copy the SQLite store at `source` into the PostgreSQL database at `url` (migrated first), going on
    from an earlier interrupted run into the same database; verified before it returns. Raises CopyError
    or DatabaseUnavailable (one line each, the URL's password left out)."""
    batch_rows = int(os.environ.get(BATCH_ROWS_ENV) or BATCH_ROWS)
    try:
        copier = _Copier(source, url, force=force, batch_rows=batch_rows, on_total=on_total, advance=advance)
        try:
            return copier.run()
        finally:
            copier.close()
    except sqlite3.Error as exc:
        raise CopyError(f"{source}: reading the home's database failed: {' '.join(str(exc).split())}") from None
    except psycopg.Error as exc:
        from paperwire.store.postgres import safe_url

        raise DatabaseUnavailable(f"copy into {safe_url(url)} failed: {_scrub(str(exc), url)}") from None
    except DatabaseUnavailable as exc:
        raise DatabaseUnavailable(_scrub(str(exc), url)) from None
