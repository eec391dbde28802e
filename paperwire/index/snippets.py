"""The piece of an abstract that best shows why a paper matched a query (plain text)."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from itertools import chain

import numpy as np

from paperwire.index.query import ParsedQuery, stem_word, tokenize, words
from paperwire.model import Paper

ELLIPSIS = "…"
_SPAN = re.compile(r"\S+")


def query_stems(query: ParsedQuery | None) -> set[str]:
    """The stemmed words a query looks for (free words, phrases, title/abstract fields)."""
    if query is None:
        return set()
    parts = [*query.terms, *query.phrases]
    for name in ("ti", "abs", "au"):
        parts.extend(query.fields.get(name, []))
    return set(tokenize(" ".join(parts)))


def _span_stems(span: str) -> set[str]:
    return {stem_word(w) for w in words(span)}


class _SpanTable:
    """Every whitespace-separated span of the abstracts shown so far, numbered, with the numbers of the
    spans that hold each stem. Whether a span holds a query word is then an array lookup, so the words
    of an abstract are tested in C; only a span never seen before is folded and stemmed in Python."""

    def __init__(self) -> None:
        self.number_of: dict[str, int] = {}
        self.spans_with: dict[str, list[int]] = {}
        self._lock = threading.Lock()

    def numbers(self, spans: list[str]) -> np.ndarray:
        found = list(map(self.number_of.get, spans))
        if None in found:
            with self._lock:
                for i, span in enumerate(spans):
                    if found[i] is None:
                        found[i] = self._add(span)
        return np.fromiter(found, dtype=np.int64, count=len(found))

    def _add(self, span: str) -> int:
        number = self.number_of.get(span)
        if number is None:
            number = len(self.number_of)
            for stem in _span_stems(span):
                self.spans_with.setdefault(stem, []).append(number)
            self.number_of[span] = number  # last: a reader who sees the number sees its stems too
        return number

    def holding(self, stems: set[str]) -> np.ndarray:
        """A mask over span numbers: which spans hold one of `stems`."""
        size = len(self.number_of)
        mask = np.zeros(size, dtype=bool)
        for stem in stems:
            spans = self.spans_with.get(stem)
            if spans:
                numbers = np.fromiter(spans, dtype=np.int64, count=len(spans))
                mask[numbers[numbers < size]] = True  # other threads may be adding spans meanwhile
        return mask


_table = _SpanTable()
MAX_SPANS = 400_000  # about 50 MB; past it the table starts again empty


def _span_table() -> _SpanTable:
    global _table
    if len(_table.number_of) > MAX_SPANS:
        _table = _SpanTable()  # callers still holding the old one finish with it
    return _table


def snippets(papers: Sequence[Paper], query: ParsedQuery | None, width: int = 240) -> list[str]:
    """snippet() of each paper for one query, the windows of all abstracts found in one pass of array
    operations (per-abstract array calls would cost more than the arithmetic in them)."""
    texts = [paper.abstract or "" for paper in papers]
    long = [i for i, text in enumerate(texts) if len(text) > width]
    if not long:
        return texts
    split = [texts[i].split() for i in long]  # the same spans as \S+ (both split on str.isspace characters)
    flat = list(chain.from_iterable(split))
    n = len(flat)
    counts = np.fromiter(map(len, split), dtype=np.int64, count=len(split))
    first = np.cumsum(counts) - counts  # each abstract's first word in `flat`
    lengths = np.fromiter(map(len, flat), dtype=np.int64, count=n)
    before = np.cumsum(lengths + 1) - lengths - 1
    starts = before - np.repeat(before[first], counts)  # right where words are single-space separated
    for k, i in enumerate(long):
        if " ".join(split[k]) != texts[i]:  # other whitespace: find the offsets
            starts[first[k]:first[k] + counts[k]] = [m.start() for m in _SPAN.finditer(texts[i])]
    ends = starts + lengths
    stems = query_stems(query)
    if stems:
        table = _span_table()
        numbers = table.numbers(flat)
        hits = table.holding(stems)[numbers]  # after numbering: covers every span just numbered
    else:
        hits = np.zeros(n, dtype=bool)
    # Abstracts side by side on one axis, each after the previous one's end plus `width`, so a window
    # never reaches into the next abstract. The window starting at word i holds words i .. right[i] - 1
    # (those ending within `width` of its start); the first window with the most hits wins, so ties go
    # to the one nearest the abstract's start.
    shift = np.repeat(np.arange(len(long), dtype=np.int64) * (max(len(texts[i]) for i in long) + width + 1), counts)
    right = np.maximum(np.searchsorted(ends + shift, starts + shift + width, side="right"), np.arange(n))
    totals = np.concatenate(([0], np.cumsum(hits, dtype=np.int64)))
    in_window = totals[right] - totals[:-1]
    key = in_window * (n + 1) + (n - np.arange(n))  # most hits, then earliest
    best = n - np.maximum.reduceat(key, first) % (n + 1)
    out = list(texts)
    for k, (b, r) in enumerate(zip(best.tolist(), right[best].tolist(), strict=True)):
        text = texts[long[k]]
        start = int(starts[b])
        end_word = max(b, r - 1)
        end = int(ends[end_word]) if ends[end_word] - start <= width else start + width
        out[long[k]] = (ELLIPSIS if start > 0 else "") + text[start:end] + (ELLIPSIS if end < len(text) else "")
    return out


def snippet(paper: Paper, query: ParsedQuery | None, width: int = 240) -> str:
    """The window of about `width` characters of the abstract with the most query-word hits, cut at
    whole words, with … where text was cut. The start of the abstract when nothing matches."""
    return snippets([paper], query, width)[0]
