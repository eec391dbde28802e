"""Narrow reads over every paper for topics and the map: its day and its texts, without whole rows."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from paperwire.store.sqlite import SQLiteStore

_CHUNK = 500  # bound parameters per IN (...) query


class PaperFacts:
    """Per-paper facts read in bulk (the store's other readers return whole papers)."""

    def __init__(self, store: SQLiteStore) -> None:
        self.conn = store.conn

    def days(self, paper_ids: Iterable[str]) -> dict[str, str]:
        """Each paper's day: the day it was listed, else the day it was first published."""
        ids = list(dict.fromkeys(paper_ids))
        found: dict[str, str] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            rows = self.conn.execute(
                "SELECT id, COALESCE(listed_on, substr(published, 1, 10)) FROM papers "
                f"WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
            found.update((pid, day) for pid, day in rows if day)
        return found

    def all_days(self) -> Iterator[tuple[str, str | None]]:
        """(id, day) of every paper, in write order."""
        yield from self.conn.execute(
            "SELECT id, COALESCE(listed_on, substr(published, 1, 10)) FROM papers ORDER BY rev")

    def texts(self, paper_ids: Iterable[str]) -> Iterator[tuple[str, str, str]]:
        """(id, title, abstract) of the given papers, in no particular order."""
        ids = list(dict.fromkeys(paper_ids))
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            yield from self.conn.execute(
                f"SELECT id, title, abstract FROM papers WHERE id IN ({', '.join('?' * len(chunk))})", chunk)

    def upvotes(self, paper_ids: Iterable[str]) -> dict[str, int]:
        """Imported upvotes of the given papers (local votes are the accounts' to count)."""
        ids = list(dict.fromkeys(paper_ids))
        found: dict[str, int] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            found.update(self.conn.execute(
                f"SELECT id, upvotes FROM papers WHERE id IN ({', '.join('?' * len(chunk))})", chunk))
        return found
