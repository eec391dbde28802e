"""The ingest pipeline: parse files, batch, upsert, count. One transaction per batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from paperwire.model import Paper
from paperwire.sources import Rejected, hf_page, read_source
from paperwire.store import ADDED, UNCHANGED, UPDATED, Store
from paperwire.store.rows import PaperRow, paper_row

# Records per transaction. A commit writes every page its batch touched, and the title-hash index is
# touched at random, so small batches write its pages again and again: at 1M papers, commits of 2,000
# spent 37-42 s waiting on the disk, commits of 10,000 about 14-23 s.
BATCH_SIZE = 10000
PROGRESS_EVERY = 100  # records between progress reports
MAX_REPORTED_ERRORS = 1000  # a broken 4 GB file must not produce a 4 GB report


@dataclass
class IngestSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    rolled_back: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = {"added": self.added, "updated": self.updated, "unchanged": self.unchanged,
                "rejected": self.rejected, "errors": self.errors}
        if self.rolled_back:
            data["rolled_back"] = True
        return data

    def reject(self, item: Rejected) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(str(item))
        elif len(self.errors) == MAX_REPORTED_ERRORS:
            self.errors.append("… further errors not listed")


class _RunCounter:
    """Counts each paper once per run, however many batches or files it appears in."""

    _RANK = {UNCHANGED: 0, UPDATED: 1, ADDED: 2}

    def __init__(self) -> None:
        self.status: dict[str, str] = {}
        self.counts = {ADDED: 0, UPDATED: 0, UNCHANGED: 0}  # kept in step: a batch costs its own size

    def record(self, statuses: dict[str, str]) -> None:
        for pid, status in statuses.items():
            before = self.status.get(pid)
            if before is None or self._RANK[status] > self._RANK[before]:
                # "added" earlier in the run stays "added" when a later file revises it
                self.status[pid] = status
                self.counts[status] += 1
                if before is not None:
                    self.counts[before] -= 1

    def fill(self, summary: IngestSummary) -> None:
        counts = self.counts
        summary.added, summary.updated, summary.unchanged = counts[ADDED], counts[UPDATED], counts[UNCHANGED]


def _batches(items: Iterable[PaperRow], size: int) -> Iterator[list[PaperRow]]:
    batch: list[PaperRow] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# Captures of past pages: when a capture lost its day line, the day is unknown, and today would be
# wrong (the paper is not news); such papers are searchable but on no day's feed until a dated source lists them.
UNDATED_STAY_UNLISTED = frozenset({hf_page.FORMAT})


def stored_row(paper: Paper, today: str) -> PaperRow:
    """The row a parsed paper is stored as. A paper whose source gives no listing day is listed on its
    first-version day, else it enters the feed `today`."""
    if paper.listed_on is None and paper.source not in UNDATED_STAY_UNLISTED:
        paper.listed_on = paper.published or today
    return paper_row(paper)


def _counted(items: Iterable[Any], on_records: Callable[[int], None]) -> Iterator[Any]:
    """`items`, telling `on_records` how many have gone by every PROGRESS_EVERY and at the end."""
    count = 0
    for item in items:
        count += 1
        if not count % PROGRESS_EVERY:
            on_records(count)
        yield item
    on_records(count)


def ingest_items(store: Store, items: Iterable[Paper | PaperRow | Rejected], *, strict: bool = False,
                 batch_size: int = BATCH_SIZE, on_batch: Callable[[IngestSummary], None] | None = None,
                 on_records: Callable[[int], None] | None = None,
                 summary: IngestSummary | None = None) -> IngestSummary:
    """Store parsed items. Default: each batch commits; rejected records are reported and skipped.
    `strict`: all or nothing — one transaction, rolled back if anything was rejected.
    Rows are papers already made into `stored_row`s (where a large file was parsed).
    `on_records(n)`: n records (papers and rejections) read so far, now and then (a progress display)."""
    summary = summary or IngestSummary()
    if on_records is not None:
        items = _counted(items, on_records)
    counter = _RunCounter()
    today = date.today().isoformat()

    def papers() -> Iterator[PaperRow]:
        for item in items:
            if type(item) is tuple:
                yield item
            elif isinstance(item, Rejected):
                summary.reject(item)
            else:
                yield stored_row(item, today)

    class _StrictRejection(Exception):
        pass

    try:
        with store.transaction() if strict else nullcontext():
            for batch in _batches(papers(), batch_size):
                counter.record(store.upsert_papers(batch).status)
                counter.fill(summary)
                if on_batch:
                    on_batch(summary)
            counter.fill(summary)
            if strict and summary.rejected:
                raise _StrictRejection
    except _StrictRejection:
        summary.rolled_back = True
        summary.added = summary.updated = summary.unchanged = 0
    return summary


def ingest_paths(store: Store, paths: Iterable[Path], *, fmt: str = "auto", strict: bool = False,
                 batch_size: int = BATCH_SIZE, wrap: Callable[[BinaryIO], BinaryIO] | None = None,
                 on_batch: Callable[[IngestSummary], None] | None = None,
                 on_records: Callable[[int], None] | None = None, **options: object) -> IngestSummary:
    finish = partial(stored_row, today=date.today().isoformat())

    def items() -> Iterator[PaperRow | Rejected]:
        for path in paths:
            yield from read_source(Path(path), fmt, wrap=wrap, finish=finish, **options)

    return ingest_items(store, items(), strict=strict, batch_size=batch_size, on_batch=on_batch,
                        on_records=on_records)
