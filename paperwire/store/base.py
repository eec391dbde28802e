"""The store interface. Callers use only this; SQLite is the default backend."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from paperwire.model import Paper
from paperwire.store.rows import PaperRow

ADDED, UPDATED, UNCHANGED = "added", "updated", "unchanged"


@dataclass
class UpsertResult:
    """What one batch did to each paper id it touched (the id the paper is stored under)."""

    status: dict[str, str] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for s in self.status.values() if s == status)


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or used (what and where, in one line)."""


class PaperNotFound(KeyError):
    def __str__(self) -> str:
        return f"no paper with id {self.args[0]!r}"


class Store(Protocol):
    """Papers and everything users attach to them; one implementation per database."""

    def upsert_papers(self, papers: Iterable[Paper | PaperRow]) -> UpsertResult:
        """Insert or merge a batch in one transaction; idempotent. Items are Papers or their
        `rows.paper_row`s (made where a bulk ingest parses, so the store only compares and writes)."""

    def transaction(self) -> AbstractContextManager[None]:
        """Group several upserts into one all-or-nothing transaction."""

    def get_paper(self, paper_id: str) -> Paper:
        """The paper with this id or alias; raises PaperNotFound."""

    def get_papers(self, paper_ids: Iterable[str]) -> dict[str, Paper]: ...
    def aliases_of(self, paper_ids: Iterable[str]) -> list[str]: ...

    def iter_papers(self, *, after_rev: int = 0, batch_size: int = 1000) -> Iterator[tuple[int, Paper]]:
        """(rev, paper) in change order: everything written after `after_rev`."""

    def paper_ids(self) -> list[str]: ...

    def ids_by_title(self, keys: Iterable[str]) -> dict[str, str]: ...

    def ids_by_doi(self, dois: Iterable[str]) -> dict[str, str]:
        """Stored paper ids by DOI (lower case), for the DOIs that have one."""

    def max_rev(self) -> int: ...

    def count_papers(self) -> int: ...

    def papers_listed_between(self, first: str, last: str) -> list[Paper]: ...

    def listing_days(self) -> list[tuple[str, int]]: ...

    def stats(self) -> dict[str, Any]: ...

    def exclusive(self, name: str, *, wait: bool = True) -> AbstractContextManager[bool]:
        """Run a block while no other process (on any node) runs one under the same name; yields whether
        this one holds the name: always when it waits its turn, else False when another holds it."""

    def hold(self, *names: str) -> None:
        """In a write transaction: hold these names (sorted) until it ends, waiting for other holders."""

    def change_token(self) -> Hashable:
        """Differs from the previous answer whenever anything in the store may have changed (any
        connection, any process): page caches compare it before reusing what they computed."""

    def close(self) -> None: ...
