"""SQLite backend: one file in WAL mode, a versioned schema, idempotent batch upserts."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from paperwire.model import TITLE_ID_PREFIX, Paper, merge_papers, normalise_title
from paperwire.store.base import ADDED, UNCHANGED, UPDATED, PaperNotFound, UpsertResult
from paperwire.store.migrations import MIGRATIONS, title_hash

_COLUMNS = (
    "id", "title", "abstract", "authors", "categories", "published", "updated", "listed_on",
    "links", "source", "upvotes", "submitted_by", "arxiv_id", "version", "doi", "num_comments",
    "raw_title", "raw_abstract",
)
_SELECT_COLUMNS = "SELECT rev, " + ", ".join(_COLUMNS)
_SELECT = _SELECT_COLUMNS + " FROM papers"
_CHUNK = 500  # bound parameters per IN (...) query
assert _COLUMNS[:4] == ("id", "title", "abstract", "authors") and len(_COLUMNS) == 18  # _paper_values' order


def _row_to_paper(row: sqlite3.Row | tuple) -> Paper:
    # Positional: the columns are Paper's fields in order (asserted below); every page and re-ingest reads here.
    (pid, title, abstract, authors, categories, published, updated, listed_on, links, source, upvotes,
     submitted_by, arxiv_id, version, doi, num_comments, raw_title, raw_abstract) = row[1:]
    loads = orjson.loads
    return Paper(pid, title, abstract, loads(authors) if authors else [], loads(categories) if categories else [],
                 published, updated, listed_on, loads(links) if links else [], source, upvotes, submitted_by,
                 arxiv_id, version, doi, num_comments, raw_title or title, raw_abstract or abstract)


assert tuple(f.name for f in fields(Paper)) == _COLUMNS, "_row_to_paper reads columns as Paper's fields in order"


_encode_json_std = json.JSONEncoder(ensure_ascii=False).encode


def _encode_json(value: list[str]) -> str:
    """JSON text of a list of strings; orjson is ten times faster on the ingest path."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # a lone surrogate: the standard encoder writes it as an escape
        return _encode_json_std(value)


def _paper_values(paper: Paper) -> list[Any]:
    return [paper.id, paper.title, paper.abstract, _encode_json(paper.authors), _encode_json(paper.categories),
            paper.published, paper.updated, paper.listed_on, _encode_json(paper.links), paper.source,
            paper.upvotes, paper.submitted_by, paper.arxiv_id, paper.version, paper.doi, paper.num_comments,
            # the raw text is stored only where cleaning changed it (most abstracts have no LaTeX): half the bytes
            "" if paper.raw_title == paper.title else paper.raw_title,
            "" if paper.raw_abstract == paper.abstract else paper.raw_abstract]


def _chunks(items: list[str], size: int = _CHUNK) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class SQLiteStore:
    """The default store. One connection per store object, usable from one thread at a time."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
        self.conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                                    timeout=30)
        self._lock = threading.RLock()
        self._depth = 0
        self.conn.execute("PRAGMA busy_timeout = 30000")
        self.conn.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            self.conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode survives a process kill; only an OS crash can lose the last commit.
            self.conn.execute("PRAGMA synchronous = NORMAL")
            # Bulk ingests write gigabytes: a larger page cache keeps the id and title indexes in memory,
            # and fewer, larger checkpoints mean fewer fsyncs (the WAL stays under ~64 MB).
            self.conn.execute("PRAGMA cache_size = -65536")
            self.conn.execute("PRAGMA wal_autocheckpoint = 16384")
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
            self.conn.execute("BEGIN IMMEDIATE")
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

    def upsert_papers(self, papers: Iterable[Paper]) -> UpsertResult:
        incoming: dict[str, Paper] = {}
        for paper in papers:  # one paper twice in a batch is merged before it meets the store
            incoming[paper.id] = merge_papers(incoming[paper.id], paper) if paper.id in incoming else paper
        result = UpsertResult()
        if not incoming:
            return result
        with self.transaction():
            existing = self._fetch(list(incoming), resolve_aliases=True)
            unknown = [p for pid, p in incoming.items() if pid not in existing]
            title_keys = {p.id: _title_key(p) for p in unknown}
            by_title = self._match_by_title(unknown, title_keys) if unknown else {}
            rev = self.max_rev()
            today = date.today().isoformat()
            inserts: list[list[Any]] = []
            for pid, paper in incoming.items():
                old = existing.get(pid) or by_title.get(pid)
                if old is None:
                    rev += 1
                    key = title_keys[pid]
                    inserts.append([rev, *_paper_values(paper), key, title_hash(key), today])
                    result.status[pid] = ADDED
                    continue
                merged = merge_papers(old, paper)
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
                if merged == old:
                    result.status.setdefault(merged.id, UNCHANGED)
                    continue
                rev += 1
                key = _title_key(merged)
                self.conn.execute(
                    "UPDATE papers SET rev = ?, " + ", ".join(f"{c} = ?" for c in _COLUMNS[1:])
                    + ", title_key = ?, title_hash = ? WHERE id = ?",
                    [rev, *_paper_values(merged)[1:], key, title_hash(key), merged.id],
                )
                result.status[merged.id] = UPDATED
            if inserts:
                placeholders = ", ".join("?" * (len(_COLUMNS) + 4))
                self.conn.executemany(
                    f"INSERT INTO papers (rev, {', '.join(_COLUMNS)}, title_key, title_hash, ingested_on) "
                    f"VALUES ({placeholders})",
                    inserts,
                )
        return result

    def _match_by_title(self, papers: list[Paper], title_keys: dict[str, str]) -> dict[str, Paper]:
        """Stored papers that are the same work as an incoming one with a different id."""
        keys: dict[str, list[Paper]] = {}
        for paper in papers:
            keys.setdefault(title_keys[paper.id], []).append(paper)
        matches: dict[str, Paper] = {}
        for row in self._rows_by_title(list(keys), f"{_SELECT_COLUMNS}, title_key"):
            stored = _row_to_paper(row[:-1])
            for paper in keys[row[-1]]:
                # Two arXiv papers may share a title; only a title-only capture is merged.
                if not (paper.arxiv_id and stored.arxiv_id):
                    matches[paper.id] = stored
        return matches

    def _rows_by_title(self, keys: list[str], select: str) -> Iterator[tuple]:
        """Rows of `select` (whose last column is title_key) for papers with one of these title keys,
        oldest first within each chunk of keys."""
        for chunk in _chunks(keys):
            rows = self.conn.execute(
                f"{select} FROM papers WHERE title_hash IN ({','.join('?' * len(chunk))}) ORDER BY rev",
                [title_hash(k) for k in chunk]).fetchall()
            wanted = set(chunk)
            yield from (row for row in rows if row[-1] in wanted)  # a shared hash is not a shared title

    def ids_by_title(self, keys: Iterable[str]) -> dict[str, str]:
        """The oldest stored paper id for each of these title keys that has one."""
        found: dict[str, str] = {}
        for pid, key in self._rows_by_title(sorted(set(keys)), "SELECT id, title_key"):
            found.setdefault(key, pid)
        return found

    # ------------------------------------------------------------ papers: reads

    def _fetch(self, ids: list[str], *, resolve_aliases: bool) -> dict[str, Paper]:
        found: dict[str, Paper] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(f"{_SELECT} WHERE id IN ({marks})", chunk):
                found[row[1]] = _row_to_paper(row)
            missing = [i for i in chunk if i not in found]
            if resolve_aliases and missing:
                marks = ",".join("?" * len(missing))
                rows = self.conn.execute(
                    f"SELECT a.alias, {', '.join('p.' + c for c in ('rev', *_COLUMNS))} FROM paper_aliases a "
                    f"JOIN papers p ON p.id = a.paper_id WHERE a.alias IN ({marks})", missing
                ).fetchall()
                for row in rows:
                    found[row[0]] = _row_to_paper(row[1:])
        return found

    def get_paper(self, paper_id: str) -> Paper:
        found = self._fetch([paper_id], resolve_aliases=True)
        if paper_id not in found:
            raise PaperNotFound(paper_id)
        return found[paper_id]

    def get_papers(self, paper_ids: Iterable[str]) -> dict[str, Paper]:
        return self._fetch(list(dict.fromkeys(paper_ids)), resolve_aliases=True)

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

    def integrity_check(self) -> str:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        self.conn.close()


def _title_key(paper: Paper) -> str:
    return normalise_title(paper.raw_title or paper.title)
