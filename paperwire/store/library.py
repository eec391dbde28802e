"""Personal libraries: papers saved under tags, read / not-relevant marks, saved searches.

Rows point at paper ids as they were when saved; a paper later re-keyed from its title id to its
arXiv id keeps an alias in the store, so reads resolve through `store.get_papers`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paperwire.store.sqlite import SQLiteStore


READ, NOT_RELEVANT = "read", "not_relevant"
MARKS = (READ, NOT_RELEVANT)
MAX_TAG_LENGTH = 64
MAX_QUERY_LENGTH = 300


class UnknownUser(LookupError):
    def __str__(self) -> str:
        return f"no user {self.args[0]!r}"


@dataclass(frozen=True)
class UserRef:
    id: int
    username: str
    email: str | None


def clean_tag(tag: str | None) -> str:
    """Tags are short single-line labels; surrounding space is dropped."""
    text = " ".join((tag or "").split())
    if len(text) > MAX_TAG_LENGTH:
        raise ValueError(f"tag longer than {MAX_TAG_LENGTH} characters")
    return text


class Library:
    """Library tables of one store."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.conn = store.conn

    # ------------------------------------------------------------ users

    def user(self, name_or_id: str | int) -> UserRef:
        """A user by username, email or numeric id; raises UnknownUser."""
        if isinstance(name_or_id, int) or str(name_or_id).isdecimal():
            row = self.conn.execute("SELECT id, username, email FROM users WHERE id = ?", (int(name_or_id),)).fetchone()
        else:
            row = self.conn.execute("SELECT id, username, email FROM users WHERE username = ? OR email = ? "
                                    "ORDER BY username = ? DESC LIMIT 1",
                                    (name_or_id, name_or_id, name_or_id)).fetchone()
        if row is None:
            raise UnknownUser(name_or_id)
        return UserRef(*row)

    # ------------------------------------------------------------ saved papers

    def save(self, user_id: int, paper_ids: list[str], tag: str | None = None) -> int:
        """Save papers (under a tag); returns how many were new to that tag."""
        tag = clean_tag(tag)
        with self.store.transaction():
            before = self.conn.total_changes
            self.conn.executemany("INSERT OR IGNORE INTO library_items(user_id, tag, paper_id) VALUES (?, ?, ?)",
                                  [(user_id, tag, pid) for pid in paper_ids])
            return self.conn.total_changes - before

    def unsave(self, user_id: int, paper_id: str, tag: str | None = None) -> None:
        """Remove from one tag, or from the whole library when tag is None."""
        with self.store.transaction():
            if tag is None:
                self.conn.execute("DELETE FROM library_items WHERE user_id = ? AND paper_id = ?", (user_id, paper_id))
            else:
                self.conn.execute("DELETE FROM library_items WHERE user_id = ? AND tag = ? AND paper_id = ?",
                                  (user_id, clean_tag(tag), paper_id))

    def saved(self, user_id: int, tag: str | None = None) -> list[str]:
        """Saved paper ids, newest first; one tag's when `tag` is given."""
        if tag is None:
            rows = self.conn.execute("SELECT paper_id, MAX(added_at) AS t FROM library_items WHERE user_id = ? "
                                     "GROUP BY paper_id ORDER BY t DESC, paper_id", (user_id,))
        else:
            rows = self.conn.execute("SELECT paper_id, added_at FROM library_items WHERE user_id = ? AND tag = ? "
                                     "ORDER BY added_at DESC, paper_id", (user_id, clean_tag(tag)))
        return [r[0] for r in rows]

    def tags(self, user_id: int) -> dict[str, int]:
        """Tag → number of papers (the untagged part under '')."""
        rows = self.conn.execute("SELECT tag, COUNT(*) FROM library_items WHERE user_id = ? GROUP BY tag ORDER BY tag",
                                 (user_id,))
        return dict(rows.fetchall())

    def tags_of(self, user_id: int, paper_ids: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for start in range(0, len(paper_ids), 500):
            chunk = paper_ids[start:start + 500]
            rows = self.conn.execute(f"SELECT paper_id, tag FROM library_items WHERE user_id = ? AND paper_id IN "
                                     f"({','.join('?' * len(chunk))}) ORDER BY tag", (user_id, *chunk))
            for pid, tag in rows:
                found.setdefault(pid, []).append(tag)
        return found

    # ------------------------------------------------------------ marks

    def mark(self, user_id: int, paper_id: str, mark: str, on: bool = True) -> None:
        if mark not in MARKS:
            raise ValueError(f"unknown mark {mark!r}; use one of {', '.join(MARKS)}")
        with self.store.transaction():
            if on:
                self.conn.execute("INSERT OR IGNORE INTO paper_marks(user_id, mark, paper_id) VALUES (?, ?, ?)",
                                  (user_id, mark, paper_id))
            else:
                self.conn.execute("DELETE FROM paper_marks WHERE user_id = ? AND mark = ? AND paper_id = ?",
                                  (user_id, mark, paper_id))

    def marked(self, user_id: int, mark: str) -> list[str]:
        rows = self.conn.execute("SELECT paper_id FROM paper_marks WHERE user_id = ? AND mark = ? "
                                 "ORDER BY created_at DESC, paper_id", (user_id, mark))
        return [r[0] for r in rows]

    # ------------------------------------------------------------ saved searches (keyword alerts)

    def add_search(self, user_id: int, query: str) -> None:
        query = " ".join(query.split())
        if not query or len(query) > MAX_QUERY_LENGTH:
            raise ValueError(f"a saved search is 1 to {MAX_QUERY_LENGTH} characters")
        with self.store.transaction():
            self.conn.execute("INSERT OR IGNORE INTO saved_searches(user_id, query) VALUES (?, ?)", (user_id, query))

    def remove_search(self, user_id: int, query: str) -> None:
        with self.store.transaction():
            self.conn.execute("DELETE FROM saved_searches WHERE user_id = ? AND query = ?",
                              (user_id, " ".join(query.split())))

    def searches(self, user_id: int) -> list[str]:
        rows = self.conn.execute("SELECT query FROM saved_searches WHERE user_id = ? ORDER BY id", (user_id,))
        return [r[0] for r in rows]
