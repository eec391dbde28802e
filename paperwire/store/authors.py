"""Authors: which papers each name is on, kept beside the papers for author pages at any corpus size.

`paper_authors` holds one row per (paper, author position) under the name's key (accents, case and
punctuation folded: "Erdős, P." and "erdos p" are one key). It is written with the papers (new papers in
the same statement batch, changed author lists replaced) and filled for existing homes by a migration.

Spelling variants of one person ("J. Smith", "John Smith") are grouped only when a single paper links
them: two captures of the same paper name the author at the same place (or with the same surname) in
compatible spellings. Such a pair goes into `author_links` with the paper that links it; names on
different papers are never merged by guessing.
"""

from __future__ import annotations

import random
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from paperwire.model import strip_accents

if TYPE_CHECKING:
    from paperwire.store.sqlite import SQLiteStore

AUTHORS_SCHEMA: list[str] = [
    """CREATE TABLE paper_authors (
        name_key TEXT NOT NULL,      -- author_key(name): what a page is looked up by
        paper_id TEXT NOT NULL,
        position INTEGER NOT NULL,   -- 0 for the first author
        name TEXT NOT NULL,          -- as the paper writes it
        last_key TEXT NOT NULL,      -- the key's last word: the surname, for a one-word lookup
        PRIMARY KEY (name_key, paper_id, position)
    ) WITHOUT ROWID""",
    "CREATE INDEX paper_authors_paper ON paper_authors(paper_id)",
    "CREATE INDEX paper_authors_last ON paper_authors(last_key)",
    """CREATE TABLE author_links (
        key_a TEXT NOT NULL,         -- two keys of one person, key_a < key_b
        key_b TEXT NOT NULL,
        paper_id TEXT NOT NULL,      -- the paper whose captures name the author both ways
        PRIMARY KEY (key_a, key_b, paper_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX author_links_b ON author_links(key_b)",
]

MAX_GROUP = 50  # keys one page groups at most (links are per paper; a chain longer than this is not one person)
COAUTHOR_PAPERS = 500  # the newest papers co-authors are counted over (collaboration papers list thousands)

_NOT_WORD = re.compile(r"[^\w]+|_+")


def author_key(name: str) -> str:
    """A name as it is looked up: accents, case and punctuation folded, words in order ("J.-P. Serre" ->
    "j p serre")."""
    return " ".join(_NOT_WORD.sub(" ", strip_accents(name).casefold()).split())


def _last(key: str) -> str:
    return key.rsplit(" ", 1)[-1]


def same_person(a: str, b: str) -> bool:
    """Whether two keys can name one person on one paper: the same surname, and given names that agree
    word by word, an initial standing for any word that starts with it ("j smith" ~ "john smith";
    "j smith" !~ "k smith"; "smith" alone says nothing)."""
    if a == b:
        return False
    wa, wb = a.split(), b.split()
    if len(wa) < 2 or len(wb) < 2 or wa[-1] != wb[-1]:
        return False
    for x, y in zip(wa[:-1], wb[:-1], strict=False):
        if x == y:
            continue
        if not ((len(x) == 1 and y.startswith(x)) or (len(y) == 1 and x.startswith(y))):
            return False
    return True


def variant_pairs(old: Sequence[str], new: Sequence[str]) -> list[tuple[str, str]]:
    """Key pairs that two author lists of one paper link: the same place in lists of the same length, else
    the only author of a surname on each side; only spellings `same_person` accepts."""
    ka, kb = [author_key(n) for n in old], [author_key(n) for n in new]
    pairs: list[tuple[str, str]] = []
    if len(ka) == len(kb):
        candidates = list(zip(ka, kb, strict=True))
    else:
        by_last_a = Counter(_last(k) for k in ka if k)
        by_last_b = Counter(_last(k) for k in kb if k)
        only_b = {_last(k): k for k in kb if k and by_last_b[_last(k)] == 1}
        candidates = [(k, only_b[_last(k)]) for k in ka if k and by_last_a[_last(k)] == 1 and _last(k) in only_b]
    for a, b in candidates:
        if same_person(a, b):
            pairs.append((min(a, b), max(a, b)))
    return pairs


def _rows(paper_id: str, authors: Iterable[str]) -> list[tuple[str, str, int, str, str]]:
    rows = []
    for place, name in enumerate(authors):
        key = author_key(name)
        if key:
            rows.append((key, paper_id, place, name, _last(key)))
    return rows


_INSERT = "INSERT OR IGNORE INTO paper_authors(name_key, paper_id, position, name, last_key) VALUES (?, ?, ?, ?, ?)"


def add_paper_authors(conn: sqlite3.Connection, papers: Iterable[tuple[str, str | list[str]]]) -> None:
    """Index new papers' authors: (paper id, authors as a list or as the row's JSON text)."""
    rows = []
    for pid, authors in papers:
        names = orjson.loads(authors) if isinstance(authors, str) else authors
        if names:
            rows.extend(_rows(pid, names))
    if rows:
        conn.executemany(_INSERT, rows)


def replace_paper_authors(conn: sqlite3.Connection, paper_id: str, authors: Sequence[str],
                          old_ids: Iterable[str] = ()) -> None:
    """A paper's author rows anew (its list changed, or it was re-keyed from `old_ids`)."""
    for pid in {paper_id, *old_ids}:
        conn.execute("DELETE FROM paper_authors WHERE paper_id = ?", (pid,))
        if pid != paper_id:
            conn.execute("UPDATE OR IGNORE author_links SET paper_id = ? WHERE paper_id = ?", (paper_id, pid))
    add_paper_authors(conn, [(paper_id, list(authors))])


def link_variants(conn: sqlite3.Connection, paper_id: str, old: Sequence[str], new: Sequence[str]) -> None:
    """Record the spellings of one person that two captures of one paper link."""
    if list(old) == list(new):
        return
    pairs = variant_pairs(old, new)
    if pairs:
        conn.executemany("INSERT OR IGNORE INTO author_links(key_a, key_b, paper_id) VALUES (?, ?, ?)",
                         [(a, b, paper_id) for a, b in pairs])


def backfill_authors(conn: sqlite3.Connection) -> None:
    """Migration step: index the authors of every stored paper."""
    last_rowid = 0
    while True:
        rows = conn.execute("SELECT rowid, id, authors FROM papers WHERE rowid > ? ORDER BY rowid LIMIT 20000",
                            (last_rowid,)).fetchall()
        if not rows:
            return
        add_paper_authors(conn, [(pid, authors) for _, pid, authors in rows])
        last_rowid = rows[-1][0]


@dataclass(frozen=True)
class AuthorPaper:
    paper_id: str
    name: str  # as this paper writes it
    day: str | None  # published, else listed


@dataclass(frozen=True)
class Coauthor:
    key: str
    name: str
    papers: int


@dataclass(frozen=True)
class VariantLink:
    name_a: str
    name_b: str
    paper_id: str


class Authors:
    """Reads over the author tables of one store."""

    def __init__(self, store: SQLiteStore) -> None:
        self.conn = store.conn

    def group(self, key: str) -> list[str]:
        """The key and every key linked to it through papers (transitively, up to MAX_GROUP), key first."""
        seen = [key]
        frontier = [key]
        while frontier and len(seen) < MAX_GROUP:
            marks = ",".join("?" * len(frontier))
            found = self.conn.execute(
                f"SELECT key_b FROM author_links WHERE key_a IN ({marks}) "
                f"UNION SELECT key_a FROM author_links WHERE key_b IN ({marks})", (*frontier, *frontier)).fetchall()
            frontier = [k for (k,) in found if k not in seen][:MAX_GROUP - len(seen)]
            seen.extend(frontier)
        return seen

    def links(self, keys: Sequence[str]) -> list[VariantLink]:
        """Why the keys are grouped: each link with the paper that makes it, names as written."""
        marks = ",".join("?" * len(keys))
        rows = self.conn.execute(f"SELECT key_a, key_b, paper_id FROM author_links WHERE key_a IN ({marks}) "
                                 "ORDER BY key_a, key_b, paper_id", tuple(keys)).fetchall()
        names = self.names(keys)
        return [VariantLink(names.get(a, a), names.get(b, b), pid) for a, b, pid in rows]

    def names(self, keys: Sequence[str]) -> dict[str, str]:
        """The spelling each key is written in most often."""
        marks = ",".join("?" * len(keys))
        rows = self.conn.execute(f"SELECT name_key, name, COUNT(*) AS n FROM paper_authors WHERE name_key IN ({marks}) "
                                 "GROUP BY name_key, name ORDER BY n DESC, name", tuple(keys)).fetchall()
        found: dict[str, str] = {}
        for key, name, _ in rows:
            found.setdefault(key, name)
        return found

    def papers(self, keys: Sequence[str]) -> list[AuthorPaper]:
        """The papers of these keys, newest first (by first publication, else listing day)."""
        marks = ",".join("?" * len(keys))
        # Grouped by the paper's key too, so that its day and rev are one value per group; the day is
        # spelled out in ORDER BY because PostgreSQL takes an output name only as a whole sort key.
        day = "COALESCE(substr(p.published, 1, 10), p.listed_on)"
        rows = self.conn.execute(
            f"SELECT a.paper_id, MIN(a.name), {day} FROM paper_authors a JOIN papers p ON p.id = a.paper_id "
            f"WHERE a.name_key IN ({marks}) GROUP BY a.paper_id, p.id ORDER BY {day} IS NULL, {day} DESC, p.rev DESC",
            tuple(keys)).fetchall()
        return [AuthorPaper(*r) for r in rows]

    def coauthors(self, keys: Sequence[str], paper_ids: Sequence[str], limit: int = 20) -> list[Coauthor]:
        """Who shares the most of these papers (the newest COAUTHOR_PAPERS of them) with the author. Counted
        in SQL on the paper index alone (it holds the name keys); names are read for the few shown."""
        ids = list(paper_ids[:COAUTHOR_PAPERS])
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        skip = ",".join("?" * len(keys))
        rows = self.conn.execute(
            f"SELECT name_key, COUNT(DISTINCT paper_id) AS n FROM paper_authors INDEXED BY paper_authors_paper "
            f"WHERE paper_id IN ({marks}) AND name_key NOT IN ({skip}) GROUP BY name_key "
            f"ORDER BY n DESC, name_key LIMIT ?", (*ids, *keys, limit)).fetchall()
        names = self.names([k for k, _ in rows]) if rows else {}
        return [Coauthor(key, names.get(key, key), n) for key, n in rows]

    def by_surname(self, last_key: str, limit: int = 50) -> list[tuple[str, str, int]]:
        """(key, name, papers) of authors whose name ends in this word, most papers first."""
        rows = self.conn.execute(
            "SELECT name_key, MIN(name), COUNT(DISTINCT paper_id) AS n FROM paper_authors WHERE last_key = ? "
            "GROUP BY name_key ORDER BY n DESC, name_key LIMIT ?", (last_key, limit)).fetchall()
        return [(k, name, n) for k, name, n in rows]

    def sample_names(self, *, top: int, others: int, seed: int) -> tuple[list[str], list[str]]:
        """For benchmarks: the names of the `top` authors with most papers, and `others` names drawn at
        random (seeded) from every author row."""
        keys = [k for k, _ in self.conn.execute(
            "SELECT name_key, COUNT(*) AS n FROM paper_authors GROUP BY name_key ORDER BY n DESC, name_key LIMIT ?",
            (top,))]
        names = self.names(keys)
        every = [n for (n,) in self.conn.execute("SELECT name FROM paper_authors ORDER BY name_key, paper_id")]
        drawn = random.Random(seed).sample(every, min(others, len(every)))
        return [names[k] for k in keys], drawn
