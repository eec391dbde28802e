"""Local accounts, sessions, votes and submissions (tables from the `web_…` migrations).

Imported upvotes live in `papers.upvotes` and are never overwritten here; local votes are rows in
`votes`, and what a page shows is the sum of the two. Papers can be re-keyed from a title id to an
arXiv id (the old id becomes an alias), so vote counts resolve aliases.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from paperwire.model import Paper
from paperwire.store.sqlite import SQLiteStore, _chunks

# Local votes of papers row `p`: one index lookup per paper (a join on all votes grouped would read
# every vote for every feed page).
_LOCAL_VOTES = "(SELECT COUNT(*) FROM votes v WHERE v.paper_id = p.id)"

SESSION_DAYS = 30
# Tables owned by this module; other features' tables that carry a user_id are exported and
# deleted generically, so a new feature's data is never left behind when an account goes.
_OWN_TABLES = {"votes", "submissions", "web_sessions", "users"}


class UsernameTaken(ValueError):
    pass


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """Users, sessions, votes and submissions of one store."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.conn = store.conn

    # ------------------------------------------------------------ users

    def create_user(self, username: str, password_hash: str, email: str | None = None) -> int:
        try:
            with self.store.transaction():
                cur = self.conn.execute("INSERT INTO users(username, email, password_hash) VALUES (?, ?, ?)",
                                        (username, email or None, password_hash))
        except self.store.INTEGRITY_ERRORS as exc:
            raise UsernameTaken(f"the name {username!r} is taken") from exc
        return int(cur.lastrowid)

    def user_by_name(self, username: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT id, username, email, password_hash, created_at FROM users WHERE username = ?",
                                (username,)).fetchone()
        return _user(row)

    def user_by_id(self, user_id: int) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT id, username, email, password_hash, created_at FROM users WHERE id = ?",
                                (user_id,)).fetchone()
        return _user(row)

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        with self.store.transaction():
            self.conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))

    def delete_user(self, user_id: int) -> None:
        """The account and everything attached to it; papers it submitted stay, unattributed."""
        user = self.user_by_id(user_id)
        if user is None:
            return
        with self.store.transaction():
            for table in self._user_tables():
                self.conn.execute(f'DELETE FROM "{table}" WHERE user_id = ?', (user_id,))
            self.conn.execute("DELETE FROM votes WHERE user_id = ?", (user_id,))
            self.conn.execute("DELETE FROM submissions WHERE user_id = ?", (user_id,))
            self.conn.execute("DELETE FROM web_sessions WHERE user_id = ?", (user_id,))
            # Attribution only: the text is unchanged, so the search index need not follow.
            self.conn.execute("UPDATE papers SET submitted_by = NULL WHERE submitted_by = ?", (user["username"],))
            self.conn.execute("DELETE FROM users WHERE id = ?", (user_id,))

    def export_user(self, user_id: int) -> dict[str, Any]:
        """Everything stored about a user, as plain JSON-able data."""
        user = self.user_by_id(user_id)
        if user is None:
            return {}
        data: dict[str, Any] = {
            "account": {"username": user["username"], "email": user["email"], "created_at": user["created_at"]},
            "votes": [dict(paper_id=p, voted_at=t) for p, t in self.conn.execute(
                "SELECT paper_id, created_at FROM votes WHERE user_id = ? ORDER BY created_at, paper_id", (user_id,))],
            "submissions": [dict(paper_id=p, status=s, submitted_at=t) for p, s, t in self.conn.execute(
                "SELECT paper_id, status, created_at FROM submissions WHERE user_id = ? ORDER BY id", (user_id,))],
        }
        for table in self._user_tables():
            cur = self.conn.execute(f'SELECT * FROM "{table}" WHERE user_id = ?', (user_id,))
            names = [d[0] for d in cur.description]
            data[table] = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        if user["email"]:
            for table in self._email_tables():
                cur = self.conn.execute(f'SELECT * FROM "{table}" WHERE email = ? COLLATE NOCASE', (user["email"],))
                names = [d[0] for d in cur.description]
                data.setdefault(table, []).extend(dict(zip(names, row, strict=True)) for row in cur.fetchall())
        return data

    def _tables_with_column(self, column: str) -> list[str]:
        return [t for t in self.store.tables_with_column(column) if t not in _OWN_TABLES]

    def _user_tables(self) -> list[str]:
        return self._tables_with_column("user_id")

    def _email_tables(self) -> list[str]:
        return [t for t in self._tables_with_column("email") if t not in self._user_tables()]

    # ------------------------------------------------------------ sessions

    def create_session(self, user_id: int) -> str:
        token = secrets.token_urlsafe(32)
        now = _now()
        with self.store.transaction():
            self.conn.execute("DELETE FROM web_sessions WHERE expires_at < ?", (_iso(now),))
            self.conn.execute("INSERT INTO web_sessions(token_hash, user_id, created_at, expires_at) VALUES (?,?,?,?)",
                              (_token_hash(token), user_id, _iso(now), _iso(now + timedelta(days=SESSION_DAYS))))
        return token

    def session_user(self, token: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT u.id, u.username, u.email, u.password_hash, u.created_at FROM web_sessions s "
            "JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ?",
            (_token_hash(token), _iso(_now()))).fetchone()
        return _user(row)

    def end_session(self, token: str) -> None:
        with self.store.transaction():
            self.conn.execute("DELETE FROM web_sessions WHERE token_hash = ?", (_token_hash(token),))

    # ------------------------------------------------------------ votes

    def _ids_of(self, paper_id: str) -> list[str]:
        """The paper's id and every alias it was known under."""
        aliases = [r[0] for r in self.conn.execute("SELECT alias FROM paper_aliases WHERE paper_id = ?", (paper_id,))]
        return [paper_id, *aliases]

    def has_voted(self, user_id: int, paper_id: str) -> bool:
        ids = self._ids_of(paper_id)
        marks = ",".join("?" * len(ids))
        row = self.conn.execute(f"SELECT 1 FROM votes WHERE user_id = ? AND paper_id IN ({marks})",
                                (user_id, *ids)).fetchone()
        return row is not None

    def set_vote(self, user_id: int, paper_id: str, on: bool) -> bool:
        """Vote for a paper (on) or take the vote back; returns whether the user now votes for it."""
        ids = self._ids_of(paper_id)
        marks = ",".join("?" * len(ids))
        with self.store.transaction():
            if on:
                self.conn.execute("INSERT OR IGNORE INTO votes(user_id, paper_id) VALUES (?, ?)", (user_id, paper_id))
            else:
                self.conn.execute(f"DELETE FROM votes WHERE user_id = ? AND paper_id IN ({marks})", (user_id, *ids))
        return on

    def voted_among(self, user_id: int, paper_ids: Iterable[str]) -> set[str]:
        """Which of these papers the user has voted for."""
        found: set[str] = set()
        for chunk in _chunks(list(paper_ids)):
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"SELECT COALESCE(a.paper_id, v.paper_id) FROM votes v "
                f"LEFT JOIN paper_aliases a ON a.alias = v.paper_id "
                f"WHERE v.user_id = ? AND COALESCE(a.paper_id, v.paper_id) IN ({marks})", (user_id, *chunk))
            found.update(r[0] for r in rows)
        return found

    def local_votes(self, paper_ids: Iterable[str]) -> dict[str, int]:
        """Local vote counts per paper (aliases resolved); papers without votes are absent."""
        counts: dict[str, int] = {}
        for chunk in _chunks(list(paper_ids)):
            marks = ",".join("?" * len(chunk))
            # Votes on the ids themselves, plus votes on their aliases; each side is an index lookup
            # (an OR across the join would scan every vote).
            rows = self.conn.execute(
                f"SELECT pid, SUM(n) FROM ("
                f"SELECT paper_id AS pid, COUNT(*) AS n FROM votes WHERE paper_id IN ({marks}) GROUP BY paper_id "
                f"UNION ALL SELECT a.paper_id, COUNT(*) FROM paper_aliases a JOIN votes v ON v.paper_id = a.alias "
                f"WHERE a.paper_id IN ({marks}) GROUP BY a.paper_id) GROUP BY pid", (*chunk, *chunk))
            counts.update({pid: n for pid, n in rows})
        return counts

    # ------------------------------------------------------------ submissions

    def record_submission(self, user_id: int, paper_id: str, status: str) -> None:
        with self.store.transaction():
            self.conn.execute("INSERT INTO submissions(user_id, paper_id, status) VALUES (?, ?, ?)",
                              (user_id, paper_id, status))

    def recent_submissions(self, user_id: int, limit: int = 20) -> list[tuple[str, str, str]]:
        return list(self.conn.execute(
            "SELECT paper_id, status, created_at FROM submissions WHERE user_id = ? ORDER BY id DESC LIMIT ?",
            (user_id, limit)))


class Listings:
    """Feed queries: papers by listing day, by submitter, and vote-ranked windows."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.conn = store.conn

    def listing_days(self) -> list[tuple[str, int]]:
        return self.store.listing_days()

    def count_between(self, first: str, last: str, submitter: str | None = None) -> int:
        sql, args = "SELECT COUNT(*) FROM papers WHERE listed_on BETWEEN ? AND ?", [first, last]
        if submitter:
            sql, args = sql + " AND submitted_by = ?", [*args, submitter]
        return self.conn.execute(sql, args).fetchone()[0]

    def between(self, first: str, last: str, *, limit: int, offset: int = 0,
                submitter: str | None = None) -> list[Paper]:
        """Papers listed in [first, last], newest day first, then by imported upvotes."""
        sql, args = "SELECT id FROM papers WHERE listed_on BETWEEN ? AND ?", [first, last]
        if submitter:
            sql, args = sql + " AND submitted_by = ?", [*args, submitter]
        rows = self.conn.execute(sql + " ORDER BY listed_on DESC, upvotes DESC, rev LIMIT ? OFFSET ?",
                                 [*args, limit, offset])
        return self._papers_in_order([r[0] for r in rows])

    def all_between(self, first: str, last: str, *, cap: int, submitter: str | None = None) -> list[Paper]:
        return self.between(first, last, limit=cap, submitter=submitter)

    def ranked(self, first: str, last: str, *, limit: int, offset: int = 0, submitter: str | None = None,
               order: str = "votes") -> list[Paper]:
        """Papers listed in [first, last] by total votes (imported + local), or newest first."""
        sql = "SELECT p.id FROM papers p WHERE p.listed_on BETWEEN ? AND ?"
        args: list[Any] = [first, last]
        if submitter:
            sql, args = sql + " AND p.submitted_by = ?", [*args, submitter]
        if order == "votes":
            sql += f" ORDER BY p.upvotes + {_LOCAL_VOTES} DESC, p.listed_on DESC, p.rev"
        else:
            sql += f" ORDER BY p.listed_on DESC, p.upvotes + {_LOCAL_VOTES} DESC, p.rev"
        ids = [r[0] for r in self.conn.execute(sql + " LIMIT ? OFFSET ?", [*args, limit, offset])]
        return self._papers_in_order(ids)

    def best_per_day(self, first: str, last: str, per_day: int) -> list[Paper]:
        """The `per_day` most-voted papers of each listing day in [first, last].

        Within one day every paper has the same age, so a time-decayed ranking of the whole window
        can only draw its top N from each day's top N by votes."""
        sql = (f"SELECT id FROM (SELECT p.id, ROW_NUMBER() OVER (PARTITION BY p.listed_on "
               f"ORDER BY p.upvotes + {_LOCAL_VOTES} DESC, p.rev) AS place FROM papers p "
               f"WHERE p.listed_on BETWEEN ? AND ?) AS ranked WHERE place <= ?")
        return self._papers_in_order([r[0] for r in self.conn.execute(sql, (first, last, per_day))])

    def _papers_in_order(self, ids: list[str]) -> list[Paper]:
        # Ranking reads narrow rows; only the page's papers are read whole.
        papers = self.store.get_papers(ids)
        return [papers[i] for i in ids if i in papers]

    def days_near(self, day: str, each_side: int) -> tuple[list[tuple[str, int]], str | None, str | None]:
        """Up to `each_side` listing days before and after `day` (and `day` itself if it has papers),
        with their paper counts, plus the nearest day before and after."""
        before = [r[0] for r in self.conn.execute(
            "SELECT DISTINCT listed_on FROM papers WHERE listed_on < ? ORDER BY listed_on DESC LIMIT ?",
            (day, each_side))]
        after = [r[0] for r in self.conn.execute(
            "SELECT DISTINCT listed_on FROM papers WHERE listed_on > ? ORDER BY listed_on LIMIT ?",
            (day, each_side))]
        first, last = (before[-1] if before else day), (after[-1] if after else day)
        days = [(d, n) for d, n in self.conn.execute(
            "SELECT listed_on, COUNT(*) FROM papers WHERE listed_on BETWEEN ? AND ? GROUP BY listed_on "
            "ORDER BY listed_on", (first, last))]
        return days, (before[0] if before else None), (after[0] if after else None)

    def newest(self, *, limit: int, offset: int = 0, submitter: str | None = None) -> list[Paper]:
        sql, args = "SELECT id FROM papers WHERE listed_on IS NOT NULL", []
        if submitter:
            sql, args = sql + " AND submitted_by = ?", [submitter]
        rows = self.conn.execute(sql + " ORDER BY listed_on DESC, upvotes DESC, rev LIMIT ? OFFSET ?",
                                 [*args, limit, offset])
        return self._papers_in_order([r[0] for r in rows])

    def newest_day(self, on_or_before: str | None = None) -> str | None:
        if on_or_before:
            row = self.conn.execute("SELECT MAX(listed_on) FROM papers WHERE listed_on <= ?", (on_or_before,))
        else:
            row = self.conn.execute("SELECT MAX(listed_on) FROM papers")
        return row.fetchone()[0]

    def neighbour_days(self, day: str) -> tuple[str | None, str | None]:
        """The nearest days before and after `day` that have papers."""
        before = self.conn.execute("SELECT MAX(listed_on) FROM papers WHERE listed_on < ?", (day,)).fetchone()[0]
        after = self.conn.execute("SELECT MIN(listed_on) FROM papers WHERE listed_on > ?", (day,)).fetchone()[0]
        return before, after


def _user(row: tuple | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return dict(zip(("id", "username", "email", "password_hash", "created_at"), row, strict=True))
