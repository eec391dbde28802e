"""SQLite backend: one file in WAL mode, a versioned schema, idempotent batch upserts."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from paperwire.host import FileLock
from paperwire.model import TITLE_ID_PREFIX, Paper, merge_papers
from paperwire.store.authors import add_paper_authors, link_variants, replace_paper_authors
from paperwire.store.base import ADDED, UNCHANGED, UPDATED, PaperNotFound, UpsertResult
from paperwire.store.migrations import MIGRATIONS
from paperwire.store.rows import (
    ARXIV_ID,
    AUTHORS,
    COLUMNS,
    PAPER_COLUMNS,
    TITLE_HASH,
    TITLE_KEY,
    PaperRow,
    paper_row,
    row_paper,
    title_hash,
)

_SELECT_COLUMNS = "SELECT rev, " + ", ".join(COLUMNS)
_SELECT = _SELECT_COLUMNS + " FROM papers"
_INSERT = (f"INSERT INTO papers (rev, {', '.join(COLUMNS)}, title_key, title_hash, ingested_on) "
           f"VALUES ({', '.join('?' * (PAPER_COLUMNS + 4))})")
_UPDATE = ("UPDATE papers SET rev = ?, " + ", ".join(f"{c} = ?" for c in COLUMNS[1:])
           + ", title_key = ?, title_hash = ? WHERE id = ?")
_CHUNK = 500  # bound parameters per IN (...) query


def _row_to_paper(record: sqlite3.Row | tuple) -> Paper:
    """The Paper of a stored record selected as (rev, *COLUMNS)."""
    return row_paper(record[1:])


def _chunks(items: list[str], size: int = _CHUNK) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only, if it does not exist: it holds password hashes,
    addresses and the outbox. SQLite gives its -wal and -shm files the database file's mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class SQLiteStore:
    """The default store. One connection per store object, usable from one thread at a time."""

    BEGIN = "BEGIN IMMEDIATE"  # a write lock from the start: two writers never deadlock on an upgrade
    INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)  # a constraint refused a write
    # Whether the database locks single rows, so concurrent workers can claim rows one by one (the
    # outbox); SQLite has one writer at a time, and its workers take turns instead.
    ROW_LOCKS = False

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(self.path)
        uri = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
        self.conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                                    timeout=30)
        self._lock = threading.RLock()
        self._depth = 0
        self.conn.execute("PRAGMA busy_timeout = 30000")
        self.conn.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            # For a new database only (a no-op on an existing one): a paper row is 1-2 kB, and 8 kB pages
            # hold them with less slack and fewer overflow pages than 4 kB ones (a sixth less disk, and
            # a bulk ingest writes every page twice, to the WAL and then to the database).
            self.conn.execute("PRAGMA page_size = 8192")
            self.conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode survives a process kill; only an OS crash can lose the last commit.
            self.conn.execute("PRAGMA synchronous = NORMAL")
            # Bulk ingests write gigabytes: a larger page cache keeps the id and title indexes in memory,
            # and fewer, larger checkpoints mean fewer fsyncs (the WAL stays under ~64 MB).
            self.conn.execute("PRAGMA cache_size = -65536")
            self.conn.execute("PRAGMA wal_autocheckpoint = 8192")
            self.migrate()

    # ------------------------------------------------------------ schema

    def schema_version(self) -> int:
        """How many migrations this database has applied."""
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> None:
        self.conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                          "name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)")
        applied = {name for (name,) in self.conn.execute("SELECT name FROM schema_migrations")}
        known = {name for name, _ in MIGRATIONS}
        if applied - known:
            raise RuntimeError(f"{self.path}: made by a newer paperwire (migrations {sorted(applied - known)})")
        for name, statements in MIGRATIONS:
            if name in applied:
                continue
            with self.transaction():
                for statement in statements:
                    if callable(statement):
                        statement(self.conn)
                    else:
                        self.conn.execute(statement)
                self.conn.execute("INSERT INTO schema_migrations(name) VALUES (?)", (name,))
                self.conn.execute(f"PRAGMA user_version = {len(applied) + 1}")
                applied.add(name)

    # ------------------------------------------------------------ transactions

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT; nested uses join the outer transaction."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.conn.execute(self.BEGIN)
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self.conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self.conn.execute("COMMIT")

    # ------------------------------------------------------------ papers: writes

    def upsert_papers(self, papers: Iterable[Paper | PaperRow]) -> UpsertResult:
        """Items are Papers or rows made by `rows.paper_row` (a bulk ingest makes them where it parses)."""
        incoming: dict[str, PaperRow] = {}
        for item in papers:
            row = item if type(item) is tuple else paper_row(item)
            pid = row[0]
            if pid in incoming:  # one paper twice in a batch is merged before it meets the store
                row = paper_row(merge_papers(row_paper(incoming[pid]), row_paper(row)))
            incoming[pid] = row
        result = UpsertResult()
        if not incoming:
            return result
        with self.transaction():
            while incoming:
                # Rows a pass cannot store safely come back for another pass, which reads the store again;
                # every pass stores at least one row, so this ends.
                status, deferred = self._store_pass(incoming)
                for pid, state in status.items():
                    if result.status.get(pid, UNCHANGED) == UNCHANGED:
                        result.status[pid] = state
                incoming = {row[0]: row for row in deferred}
        return result

    def _store_pass(self, incoming: dict[str, PaperRow]) -> tuple[dict[str, str], list[PaperRow]]:
        """Store rows (by id, none twice) in the open transaction: each paper's status, and the rows
        left for another pass."""
        status: dict[str, str] = {}
        existing = self._records(list(incoming))
        unknown = [row for pid, row in incoming.items() if pid not in existing]
        by_title = self._match_by_title(unknown) if unknown else {}
        rev = self.max_rev()
        today = date.today().isoformat()
        # New papers are inserted together at the end; most batches of a first bulk ingest are only that.
        fresh = [row for row in unknown if row[0] not in by_title]
        deferred: list[PaperRow] = []
        if any(not row[ARXIV_ID] for row in fresh):
            # A title-only capture of an arXiv paper that is new in this batch too joins it in the next pass.
            arxiv_keys = {row[TITLE_KEY] for row in fresh if row[ARXIV_ID]}
            deferred = [row for row in fresh if not row[ARXIV_ID] and row[TITLE_KEY] in arxiv_keys]
            if deferred:
                fresh = [row for row in fresh if row[ARXIV_ID] or row[TITLE_KEY] not in arxiv_keys]
        for row in fresh:
            status[row[0]] = ADDED
        known = [(pid, row) for pid, row in incoming.items() if pid in existing or pid in by_title]
        claimed: set[str] = set()  # stored papers a row of this pass has been merged with
        for pid, row in known:
            stored = existing.get(pid) or by_title[pid]
            if stored[1] in claimed:
                # Two rows for one stored paper (its id and an alias, or two arXiv papers whose title is
                # a title-only capture's): the second would merge into a record the first has changed.
                deferred.append(row)
                continue
            claimed.add(stored[1])
            if stored[1] == pid and stored[1:] == row[:PAPER_COLUMNS]:
                status.setdefault(pid, UNCHANGED)  # the same record again (most of a re-ingest): nothing to merge
                continue
            old = _row_to_paper(stored)
            capture = row_paper(row)
            merged = merge_papers(old, capture)
            if merged.arxiv_id and old.id.startswith(TITLE_ID_PREFIX):
                # The paper was known by title; now its arXiv id is known: re-key it, keep the alias.
                merged.id = merged.arxiv_id
                self.conn.execute("UPDATE papers SET id = ? WHERE id = ?", (merged.id, old.id))
                self.conn.execute("INSERT OR REPLACE INTO paper_aliases(alias, paper_id) VALUES (?, ?)",
                                  (old.id, merged.id))
                self.conn.execute("UPDATE paper_aliases SET paper_id = ? WHERE paper_id = ?",
                                  (merged.id, old.id))
            elif pid != merged.id:
                # a title-only capture joined a paper stored under its arXiv id: its id must resolve
                self.conn.execute("INSERT OR IGNORE INTO paper_aliases(alias, paper_id) VALUES (?, ?)",
                                  (pid, merged.id))
            link_variants(self.conn, merged.id, old.authors, capture.authors)  # one paper, two spellings
            if merged == old:
                status.setdefault(merged.id, UNCHANGED)
                continue
            rev += 1
            self.conn.execute(_UPDATE, [rev, *paper_row(merged)[1:], merged.id])
            if merged.authors != old.authors or merged.id != old.id:
                replace_paper_authors(self.conn, merged.id, merged.authors, old_ids=[old.id])
            status[merged.id] = UPDATED
        if fresh:
            self._insert_papers([(number, *row, today) for number, row in enumerate(fresh, rev + 1)])
            add_paper_authors(self.conn, [(row[0], row[AUTHORS]) for row in fresh])
        return status, deferred

    def _insert_papers(self, records: list[tuple]) -> None:
        """New papers as (rev, *row, ingested_on): one prepared statement (PostgreSQL copies them in)."""
        self.conn.executemany(_INSERT, records)

    def _match_by_title(self, rows: list[PaperRow]) -> dict[str, tuple]:
        """Stored records that are the same work as an incoming row with a different id."""
        keys: dict[str, list[PaperRow]] = {}
        # Two arXiv papers may share a title; only a title-only capture is merged. So a key that only
        # arXiv rows bring (nearly every key of a bulk ingest) is looked up among title-only papers,
        # in their small index, rather than probing the index of every title.
        any_paper: dict[str, int] = {}
        for row in rows:
            key = row[TITLE_KEY]
            same = keys.get(key)
            if same is None:
                keys[key] = [row]
            else:
                same.append(row)
            if not row[ARXIV_ID]:
                any_paper[key] = row[TITLE_HASH]
        title_only = {key: same[0][TITLE_HASH] for key, same in keys.items() if key not in any_paper}
        matches: dict[str, tuple] = {}
        select = f"{_SELECT_COLUMNS}, title_key"
        for hashes, only in ((any_paper, False), (title_only, True)):
            for record in self._rows_by_title(hashes, select, title_only=only):
                for row in keys[record[-1]]:
                    if not (row[ARXIV_ID] and record[1 + ARXIV_ID]):
                        matches[row[0]] = record[:-1]
        return matches

    def _rows_by_title(self, hashes: dict[str, int], select: str, *, title_only: bool = False) -> Iterator[tuple]:
        """Rows of `select` (whose last column is title_key) for papers with one of these title keys
        (given with their hashes), oldest first within each chunk of keys; `title_only`: only papers
        without an arXiv id."""
        source = "papers INDEXED BY papers_title_only" if title_only else "papers"
        only = " AND arxiv_id IS NULL" if title_only else ""
        for chunk in _chunks(list(hashes)):
            rows = self.conn.execute(
                f"{select} FROM {source} WHERE title_hash IN ({','.join('?' * len(chunk))}){only} ORDER BY rev",
                [hashes[k] for k in chunk]).fetchall()
            wanted = set(chunk)
            yield from (row for row in rows if row[-1] in wanted)  # a shared hash is not a shared title

    def ids_by_title(self, keys: Iterable[str]) -> dict[str, str]:
        """The oldest stored paper id for each of these title keys that has one."""
        found: dict[str, str] = {}
        for pid, key in self._rows_by_title({k: title_hash(k) for k in sorted(set(keys))}, "SELECT id, title_key"):
            found.setdefault(key, pid)
        return found

    def ids_by_doi(self, dois: Iterable[str]) -> dict[str, str]:
        """The stored paper id for each of these DOIs (as stored: lower case) that has one."""
        found: dict[str, str] = {}
        for chunk in _chunks(sorted(set(dois))):
            found.update(self.conn.execute(f"SELECT doi, id FROM papers WHERE doi IN ({','.join('?' * len(chunk))})",
                                           chunk).fetchall())
        return found

    # ------------------------------------------------------------ papers: reads

    def _records(self, ids: list[str]) -> dict[str, tuple]:
        """Stored records (rev, *COLUMNS) by id, or by an alias the paper is also known by."""
        found: dict[str, tuple] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for record in self.conn.execute(f"{_SELECT} WHERE id IN ({marks})", chunk):
                found[record[1]] = record
            missing = [i for i in chunk if i not in found]
            if missing:
                marks = ",".join("?" * len(missing))
                rows = self.conn.execute(
                    f"SELECT a.alias, {', '.join('p.' + c for c in ('rev', *COLUMNS))} FROM paper_aliases a "
                    f"JOIN papers p ON p.id = a.paper_id WHERE a.alias IN ({marks})", missing
                ).fetchall()
                for row in rows:
                    found[row[0]] = row[1:]
        return found

    def _fetch(self, ids: list[str]) -> dict[str, Paper]:
        return {pid: _row_to_paper(record) for pid, record in self._records(ids).items()}

    def get_paper(self, paper_id: str) -> Paper:
        found = self._fetch([paper_id])
        if paper_id not in found:
            raise PaperNotFound(paper_id)
        return found[paper_id]

    def aliases_of(self, paper_ids: Iterable[str]) -> list[str]:
        """The other ids (aliases) under which these papers were known: a paper re-keyed to its arXiv id
        leaves its old id here, which a search index must not keep."""
        ids = list(paper_ids)
        out: list[str] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ", ".join("?" * len(chunk))
            out += [alias for (alias,) in self.conn.execute(
                f"SELECT alias FROM paper_aliases WHERE paper_id IN ({marks})", chunk)]
        return out

    def get_papers(self, paper_ids: Iterable[str]) -> dict[str, Paper]:
        return self._fetch(list(dict.fromkeys(paper_ids)))

    def iter_papers(self, *, after_rev: int = 0, batch_size: int = 1000) -> Iterator[tuple[int, Paper]]:
        last = after_rev
        while True:
            rows = self.conn.execute(f"{_SELECT} WHERE rev > ? ORDER BY rev LIMIT ?", (last, batch_size)).fetchall()
            if not rows:
                return
            for row in rows:
                yield row[0], _row_to_paper(row)
            last = rows[-1][0]

    def paper_ids(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT id FROM papers ORDER BY rev")]

    def max_rev(self) -> int:
        return self.conn.execute("SELECT COALESCE(MAX(rev), 0) FROM papers").fetchone()[0]

    def count_papers(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM papers").fetchone()[0]

    def papers_listed_between(self, first: str, last: str) -> list[Paper]:
        rows = self.conn.execute(
            f"{_SELECT} WHERE listed_on BETWEEN ? AND ? ORDER BY listed_on DESC, upvotes DESC, rev",
            (first, last),
        ).fetchall()
        return [_row_to_paper(r) for r in rows]

    def listing_days(self) -> list[tuple[str, int]]:
        rows = self.conn.execute(
            "SELECT listed_on, COUNT(*) FROM papers WHERE listed_on IS NOT NULL GROUP BY listed_on ORDER BY listed_on"
        )
        return [(d, n) for d, n in rows]

    def stats(self) -> dict[str, Any]:
        sources = dict(self.conn.execute("SELECT source, COUNT(*) FROM papers GROUP BY source ORDER BY source"))
        days = self.listing_days()
        return {
            "papers": self.count_papers(),
            "with_arxiv_id": self.conn.execute("SELECT COUNT(*) FROM papers WHERE arxiv_id IS NOT NULL").fetchone()[0],
            "sources": sources,
            "listing_days": len(days),
            "newest_day": days[-1][0] if days else None,
            "oldest_day": days[0][0] if days else None,
            "schema_version": self.schema_version(),
            "database": str(self.path),
        }

    def change_token(self) -> tuple[int, int]:
        """A value that differs whenever the database may have changed since it was last asked: commits
        by every other connection, other processes included (`PRAGMA data_version`), and this
        connection's own changes (`total_changes`)."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0], self.conn.total_changes

    @contextmanager
    def exclusive(self, name: str, *, wait: bool = True) -> Iterator[bool]:
        """Run a block while no other process using this store runs one under the same name (delivering
        the outbox): a lock file beside the database. Yields whether this process holds it (always,
        unless `wait` is False and another holds it)."""
        lock = FileLock(self.path.parent / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.lock")
        held = lock.acquire(wait=wait)
        try:
            yield held
        finally:
            lock.release()

    def hold(self, *names: str) -> None:
        """In a write transaction: wait until no other transaction holds any of these names, and hold them
        to its end (check-then-write sequences such as rate limits). SQLite's write transaction already
        shuts out every other writer."""

    def tables_with_column(self, column: str) -> list[str]:
        """Tables that have this column, by name."""
        tables = [r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        return sorted(t for t in tables if column in {r[1] for r in self.conn.execute(f'PRAGMA table_info("{t}")')})

    def integrity_check(self) -> str:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        self.conn.close()
