"""Collections: a user's named, ordered lists of papers with a note per paper, shared by URL.

A collection is public (listed on /collections), unlisted (reachable by its URL only) or private (its
owner's draft). Its URL carries a random token, so an unlisted one cannot be found by counting. Items
point at paper ids as they were when added; reads resolve aliases through `store.get_papers`.
Both tables carry the owner's user_id: the account export and deletion take every table with one.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paperwire.store.sqlite import SQLiteStore

_NOW = "(strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"


PUBLIC, UNLISTED, PRIVATE = "public", "unlisted", "private"
VISIBILITIES = (PUBLIC, UNLISTED, PRIVATE)
MAX_TITLE = 200
MAX_DESCRIPTION = 2_000
MAX_NOTE = 2_000
MAX_ITEMS = 1_000  # papers per collection
MAX_COLLECTIONS = 500  # per user


class CollectionError(ValueError):
    """A request a collection cannot take (what is wrong, in one sentence)."""


@dataclass(frozen=True)
class CollectionInfo:
    id: int
    token: str
    user_id: int
    owner: str
    title: str
    description: str
    visibility: str
    created_at: str
    updated_at: str
    size: int

    def visible_to(self, user_id: int | None) -> bool:
        """Public and unlisted ones are for anyone with the URL; private ones for their owner."""
        return self.visibility != PRIVATE or user_id == self.user_id


@dataclass(frozen=True)
class CollectionItem:
    paper_id: str
    position: int
    note: str
    added_at: str


@dataclass
class NewItems:
    """What an add did: papers new to the collection, and those already in it (left as they were)."""

    added: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)


def clean_title(title: str) -> str:
    text = " ".join(title.split())
    if not text:
        raise CollectionError("a collection needs a title")
    if len(text) > MAX_TITLE:
        raise CollectionError(f"the title is {len(text):,} characters long; the limit is {MAX_TITLE}")
    return text


def clean_text(text: str, what: str, limit: int) -> str:
    """Notes and descriptions keep their line breaks; surrounding space goes."""
    text = text.replace("\r\n", "\n").strip()
    if len(text) > limit:
        raise CollectionError(f"the {what} is {len(text):,} characters long; the limit is {limit:,}")
    return text


def check_visibility(visibility: str) -> str:
    if visibility not in VISIBILITIES:
        raise CollectionError(f"visibility must be one of {', '.join(VISIBILITIES)}, not {visibility[:20]!r}")
    return visibility


_SELECT = ("SELECT c.id, c.token, c.user_id, u.username, c.title, c.description, c.visibility, c.created_at, "
           "c.updated_at, (SELECT COUNT(*) FROM collection_items i WHERE i.collection_id = c.id) "
           "FROM collections c JOIN users u ON u.id = c.user_id")


class Collections:
    """Collection tables of one store. Every write is one transaction: a refused request writes nothing."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.conn = store.conn

    # ------------------------------------------------------------ reads

    def by_token(self, token: str) -> CollectionInfo | None:
        row = self.conn.execute(f"{_SELECT} WHERE c.token = ?", (token,)).fetchone()
        return CollectionInfo(*row) if row else None

    def of_user(self, user_id: int) -> list[CollectionInfo]:
        rows = self.conn.execute(f"{_SELECT} WHERE c.user_id = ? ORDER BY c.updated_at DESC, c.id DESC", (user_id,))
        return [CollectionInfo(*r) for r in rows]

    def public(self, *, limit: int, offset: int = 0) -> list[CollectionInfo]:
        """Public collections, most recently changed first (unlisted and private ones never)."""
        rows = self.conn.execute(f"{_SELECT} WHERE c.visibility = 'public' ORDER BY c.updated_at DESC, c.id DESC "
                                 "LIMIT ? OFFSET ?", (limit, offset))
        return [CollectionInfo(*r) for r in rows]

    def count_public(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM collections WHERE visibility = 'public'").fetchone()[0]

    def public_with_paper(self, paper_id: str, limit: int = 10) -> list[CollectionInfo]:
        """Public collections holding a paper (added under its id or an alias it was known by)."""
        rows = self.conn.execute(
            f"{_SELECT} WHERE c.visibility = 'public' AND c.id IN (SELECT collection_id FROM collection_items "
            f"WHERE paper_id = ? OR paper_id IN (SELECT alias FROM paper_aliases WHERE paper_id = ?)) "
            f"ORDER BY c.updated_at DESC LIMIT ?", (paper_id, paper_id, limit))
        return [CollectionInfo(*r) for r in rows]

    def items(self, collection_id: int) -> list[CollectionItem]:
        rows = self.conn.execute("SELECT paper_id, position, note, added_at FROM collection_items "
                                 "WHERE collection_id = ? ORDER BY position", (collection_id,))
        return [CollectionItem(*r) for r in rows]

    # ------------------------------------------------------------ writes

    def create(self, user_id: int, title: str, *, description: str = "", visibility: str = PUBLIC,
               items: Sequence[tuple[str, str]] = ()) -> CollectionInfo:
        """A new collection holding `items` ((paper id, note), in order); checked whole before anything
        is written."""
        title = clean_title(title)
        description = clean_text(description, "description", MAX_DESCRIPTION)
        check_visibility(visibility)
        items = _unique(items)
        if len(items) > MAX_ITEMS:
            raise CollectionError(f"a collection holds at most {MAX_ITEMS:,} papers, not {len(items):,}")
        notes = [clean_text(note, "note", MAX_NOTE) for _, note in items]
        with self.store.transaction():
            owned = self.conn.execute("SELECT COUNT(*) FROM collections WHERE user_id = ?", (user_id,)).fetchone()[0]
            if owned >= MAX_COLLECTIONS:
                raise CollectionError(f"you have {owned:,} collections, the most one account may keep")
            token = secrets.token_urlsafe(9)  # 72 random bits
            cur = self.conn.execute("INSERT INTO collections(token, user_id, title, description, visibility) "
                                    "VALUES (?, ?, ?, ?, ?)", (token, user_id, title, description, visibility))
            self.conn.executemany(
                "INSERT INTO collection_items(collection_id, user_id, paper_id, position, note) VALUES (?, ?, ?, ?, ?)",
                [(cur.lastrowid, user_id, pid, place, note)
                 for place, ((pid, _), note) in enumerate(zip(items, notes, strict=True), 1)])
        found = self.by_token(token)
        assert found is not None
        return found

    def update(self, collection: CollectionInfo, *, title: str | None = None, description: str | None = None,
               visibility: str | None = None) -> None:
        changes: dict[str, str] = {}
        if title is not None:
            changes["title"] = clean_title(title)
        if description is not None:
            changes["description"] = clean_text(description, "description", MAX_DESCRIPTION)
        if visibility is not None:
            changes["visibility"] = check_visibility(visibility)
        if not changes:
            return
        with self.store.transaction():
            self.conn.execute(f"UPDATE collections SET {', '.join(f'{k} = ?' for k in changes)}, updated_at = {_NOW} "
                              "WHERE id = ?", (*changes.values(), collection.id))

    def add(self, collection: CollectionInfo, items: Sequence[tuple[str, str]]) -> NewItems:
        """Append papers with their notes; a paper already there keeps its place and note."""
        items = _unique(items)
        notes = [clean_text(note, "note", MAX_NOTE) for _, note in items]
        result = NewItems()
        with self.store.transaction():
            present = {r[0] for r in self.conn.execute(
                "SELECT paper_id FROM collection_items WHERE collection_id = ?", (collection.id,))}
            fresh = [(pid, note) for (pid, _), note in zip(items, notes, strict=True) if pid not in present]
            result.already = [pid for pid, _ in items if pid in present]
            if len(present) + len(fresh) > MAX_ITEMS:
                raise CollectionError(f"a collection holds at most {MAX_ITEMS:,} papers; "
                                      f"this one holds {len(present):,}")
            last = self.conn.execute("SELECT COALESCE(MAX(position), 0) FROM collection_items WHERE collection_id = ?",
                                     (collection.id,)).fetchone()[0]
            self.conn.executemany(
                "INSERT INTO collection_items(collection_id, user_id, paper_id, position, note) VALUES (?, ?, ?, ?, ?)",
                [(collection.id, collection.user_id, pid, place, note)
                 for place, (pid, note) in enumerate(fresh, last + 1)])
            self._touch(collection)
        result.added = [pid for pid, _ in fresh]
        return result

    def set_note(self, collection: CollectionInfo, paper_id: str, note: str) -> bool:
        """Whether the paper is in the collection (and its note now `note`)."""
        note = clean_text(note, "note", MAX_NOTE)
        with self.store.transaction():
            cur = self.conn.execute("UPDATE collection_items SET note = ? WHERE collection_id = ? AND paper_id = ?",
                                    (note, collection.id, paper_id))
            if cur.rowcount:
                self._touch(collection)
        return cur.rowcount > 0

    def remove(self, collection: CollectionInfo, paper_id: str) -> bool:
        with self.store.transaction():
            cur = self.conn.execute("DELETE FROM collection_items WHERE collection_id = ? AND paper_id = ?",
                                    (collection.id, paper_id))
            if cur.rowcount:
                self._renumber(collection.id, [i.paper_id for i in self.items(collection.id)])
                self._touch(collection)
        return cur.rowcount > 0

    def move(self, collection: CollectionInfo, paper_id: str, to: int) -> bool:
        """Put one paper at place `to` (1-based; clamped to the list), the others keeping their order."""
        with self.store.transaction():
            order = [i.paper_id for i in self.items(collection.id)]
            if paper_id not in order:
                return False
            order.remove(paper_id)
            order.insert(max(0, min(to - 1, len(order))), paper_id)
            self._renumber(collection.id, order)
            self._touch(collection)
        return True

    def reorder(self, collection: CollectionInfo, paper_ids: list[str]) -> None:
        """The whole order at once: exactly the collection's papers, each once."""
        with self.store.transaction():
            current = [i.paper_id for i in self.items(collection.id)]
            if sorted(paper_ids) != sorted(current) or len(set(paper_ids)) != len(paper_ids):
                missing, extra = set(current) - set(paper_ids), set(paper_ids) - set(current)
                detail = (f"missing {', '.join(sorted(missing)[:5])}" if missing else
                          f"not in it {', '.join(sorted(extra)[:5])}" if extra else "a paper given twice")
                raise CollectionError(f"an order must name each paper of the collection once ({detail})")
            self._renumber(collection.id, paper_ids)
            self._touch(collection)

    def delete(self, collection: CollectionInfo) -> None:
        with self.store.transaction():
            self.conn.execute("DELETE FROM collections WHERE id = ?", (collection.id,))  # items cascade

    def _renumber(self, collection_id: int, order: list[str]) -> None:
        self.conn.executemany("UPDATE collection_items SET position = ? WHERE collection_id = ? AND paper_id = ?",
                              [(place, collection_id, pid) for place, pid in enumerate(order, 1)])

    def _touch(self, collection: CollectionInfo) -> None:
        self.conn.execute(f"UPDATE collections SET updated_at = {_NOW} WHERE id = ?", (collection.id,))


def _unique(items: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Items in order, each paper once (its first note)."""
    seen: dict[str, str] = {}
    for pid, note in items:
        seen.setdefault(pid, note)
    return list(seen.items())
