"""Comments on papers by signed-in users: written, edited and deleted by their author, hidden by an admin.

The text is stored as typed (a Markdown subset, rendered safely by the site). A hidden comment stays
stored (its author still sees it, marked) but is left out of pages, feeds and counts for everyone else.
The table carries the author's user_id, so the account export and deletion take a user's comments.
Comments point at paper ids as they were when written; reads go through the paper's id and aliases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paperwire.store.sqlite import SQLiteStore

_NOW = "(strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"

COMMENTS_SCHEMA: list[str] = [
    f"""CREATE TABLE comments (
        id INTEGER PRIMARY KEY,
        paper_id TEXT NOT NULL,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        body TEXT NOT NULL,                      -- Markdown as typed
        created_at TEXT NOT NULL DEFAULT {_NOW},
        edited_at TEXT,
        hidden_at TEXT                           -- set when an admin hides it
    )""",
    "CREATE INDEX comments_paper ON comments(paper_id, id)",
    "CREATE INDEX comments_user ON comments(user_id)",
    # Counts per paper for cards and the API, kept with the comments: a card's count is one lookup.
    "CREATE INDEX comments_shown ON comments(paper_id) WHERE hidden_at IS NULL",
]

MAX_BODY = 10_000  # characters


class CommentError(ValueError):
    """A comment that cannot be taken (what is wrong, in one sentence)."""


@dataclass(frozen=True)
class Comment:
    id: int
    paper_id: str
    user_id: int
    author: str
    body: str
    created_at: str
    edited_at: str | None
    hidden_at: str | None

    @property
    def hidden(self) -> bool:
        return self.hidden_at is not None


def clean_body(body: str) -> str:
    """The text to store: line ends unified, surrounding blank space gone; CommentError if empty or long."""
    text = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise CommentError("a comment needs some text")
    if len(text) > MAX_BODY:
        raise CommentError(f"the comment is {len(text):,} characters long; the limit is {MAX_BODY:,}")
    return text


_SELECT = ("SELECT c.id, c.paper_id, c.user_id, u.username, c.body, c.created_at, c.edited_at, c.hidden_at "
           "FROM comments c JOIN users u ON u.id = c.user_id")


class Comments:
    """The comments table of one store; each write is one statement (a refused request writes nothing)."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.conn = store.conn

    def _ids_of(self, paper_id: str) -> list[str]:
        aliases = [r[0] for r in self.conn.execute("SELECT alias FROM paper_aliases WHERE paper_id = ?", (paper_id,))]
        return [paper_id, *aliases]

    def of_paper(self, paper_id: str, *, with_hidden: bool = False, limit: int = 500) -> list[Comment]:
        """A paper's comments, oldest first; hidden ones only `with_hidden`."""
        ids = self._ids_of(paper_id)
        marks = ",".join("?" * len(ids))
        shown = "" if with_hidden else " AND c.hidden_at IS NULL"
        rows = self.conn.execute(f"{_SELECT} WHERE c.paper_id IN ({marks}){shown} ORDER BY c.id LIMIT ?",
                                 (*ids, limit))
        return [Comment(*r) for r in rows]

    def newest_of_paper(self, paper_id: str, limit: int) -> list[Comment]:
        """A paper's shown comments, newest first (for its feed)."""
        ids = self._ids_of(paper_id)
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(f"{_SELECT} WHERE c.paper_id IN ({marks}) AND c.hidden_at IS NULL "
                                 "ORDER BY c.id DESC LIMIT ?", (*ids, limit))
        return [Comment(*r) for r in rows]

    def get(self, comment_id: int) -> Comment | None:
        row = self.conn.execute(f"{_SELECT} WHERE c.id = ?", (comment_id,)).fetchone()
        return Comment(*row) if row else None

    def counts(self, paper_ids: list[str]) -> dict[str, int]:
        """Shown comments per paper (aliases resolved); papers without any are absent."""
        counts: dict[str, int] = {}
        for start in range(0, len(paper_ids), 400):
            chunk = paper_ids[start:start + 400]
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"SELECT pid, SUM(n) FROM ("
                f"SELECT paper_id AS pid, COUNT(*) AS n FROM comments WHERE paper_id IN ({marks}) "
                f"AND hidden_at IS NULL GROUP BY paper_id "
                f"UNION ALL SELECT a.paper_id, COUNT(*) FROM paper_aliases a JOIN comments c ON c.paper_id = a.alias "
                f"WHERE a.paper_id IN ({marks}) AND c.hidden_at IS NULL GROUP BY a.paper_id) AS counted GROUP BY pid",
                (*chunk, *chunk))
            counts.update({pid: n for pid, n in rows})
        return counts

    def add(self, paper_id: str, user_id: int, body: str) -> Comment:
        text = clean_body(body)
        with self.store.transaction():
            cur = self.conn.execute("INSERT INTO comments(paper_id, user_id, body) VALUES (?, ?, ?)",
                                    (paper_id, user_id, text))
        found = self.get(int(cur.lastrowid))
        assert found is not None
        return found

    def edit(self, comment: Comment, body: str) -> None:
        text = clean_body(body)
        with self.store.transaction():
            self.conn.execute(f"UPDATE comments SET body = ?, edited_at = {_NOW} WHERE id = ?", (text, comment.id))

    def delete(self, comment: Comment) -> None:
        with self.store.transaction():
            self.conn.execute("DELETE FROM comments WHERE id = ?", (comment.id,))

    def set_hidden(self, comment: Comment, hidden: bool) -> None:
        with self.store.transaction():
            if hidden:
                self.conn.execute(f"UPDATE comments SET hidden_at = COALESCE(hidden_at, {_NOW}) WHERE id = ?",
                                  (comment.id,))
            else:
                self.conn.execute("UPDATE comments SET hidden_at = NULL WHERE id = ?", (comment.id,))
