"""The piece of an abstract that best shows why a paper matched a query (plain text)."""

from __future__ import annotations

import operator
import re
from functools import lru_cache

import numpy as np

from paperwire.index.query import ParsedQuery, stem_word, tokenize, words
from paperwire.model import Paper

ELLIPSIS = "…"
_SPAN = re.compile(r"\S+")
_group, _start, _end = operator.methodcaller("group", 0), operator.methodcaller("start"), operator.methodcaller("end")


def query_stems(query: ParsedQuery | None) -> set[str]:
    """The stemmed words a query looks for (free words, phrases, title/abstract fields)."""
    if query is None:
        return set()
    parts = [*query.terms, *query.phrases]
    for name in ("ti", "abs", "au"):
        parts.extend(query.fields.get(name, []))
    return set(tokenize(" ".join(parts)))


@lru_cache(maxsize=262_144)  # the same words recur across abstracts: each is folded and stemmed once
def _span_stems(span: str) -> tuple[str, ...]:
    return tuple(stem_word(w) for w in words(span))


def snippet(paper: Paper, query: ParsedQuery | None, width: int = 240) -> str:
    """The window of about `width` characters of the abstract with the most query-word hits, cut at
    whole words, with … where text was cut. The start of the abstract when nothing matches."""
    text = paper.abstract or ""
    if len(text) <= width:
        return text
    matches = list(_SPAN.finditer(text))
    spans = list(map(_group, matches))
    starts = np.fromiter(map(_start, matches), dtype=np.int64, count=len(matches))
    ends = np.fromiter(map(_end, matches), dtype=np.int64, count=len(matches))
    stems = query_stems(query)
    if stems:
        hits = np.fromiter((not stems.isdisjoint(_span_stems(word)) for word in spans), dtype=np.int64,
                           count=len(spans))
    else:
        hits = np.zeros(len(spans), dtype=np.int64)
    # The window starting at word i holds words i .. right[i] - 1 (those ending within `width` of its start);
    # the first window with the most hits wins, so ties go to the one nearest the abstract's start.
    right = np.maximum(np.searchsorted(ends, starts + width, side="right"), np.arange(len(spans)))
    totals = np.concatenate(([0], np.cumsum(hits)))
    best = int(np.argmax(totals[right] - totals[:-1]))
    start = int(starts[best])
    end_word = max(best, int(right[best]) - 1)
    end = int(ends[end_word]) if ends[end_word] - start <= width else start + width
    piece = text[start:end]
    return (ELLIPSIS if start > 0 else "") + piece + (ELLIPSIS if end < len(text) else "")
