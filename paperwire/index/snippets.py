"""The piece of an abstract that best shows why a paper matched a query (plain text)."""

from __future__ import annotations

import re
from functools import lru_cache

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


@lru_cache(maxsize=262_144)  # the same words recur across abstracts: each is folded and stemmed once
def _span_stems(span: str) -> tuple[str, ...]:
    return tuple(stem_word(w) for w in words(span))


def snippet(paper: Paper, query: ParsedQuery | None, width: int = 240) -> str:
    """The window of about `width` characters of the abstract with the most query-word hits, cut at
    whole words, with … where text was cut. The start of the abstract when nothing matches."""
    text = paper.abstract or ""
    if len(text) <= width:
        return text
    spans = [(m.start(), m.end(), m.group(0)) for m in _SPAN.finditer(text)]
    stems = query_stems(query)
    if stems:
        hits = [1 if not stems.isdisjoint(_span_stems(word)) else 0 for _, _, word in spans]
    else:
        hits = [0] * len(spans)
    best, best_hits, right, total = 0, -1, 0, 0
    for left in range(len(spans)):
        if left:
            total -= hits[left - 1]
        right = max(right, left)
        while right < len(spans) and spans[right][1] - spans[left][0] <= width:
            total += hits[right]
            right += 1
        # Prefer more hits; on a tie, the earlier window (closer to the abstract's start).
        if total > best_hits:
            best, best_hits = left, total
        if right == len(spans):
            break
    start = spans[best][0]
    end_word = best
    while end_word + 1 < len(spans) and spans[end_word + 1][1] - start <= width:
        end_word += 1
    end = spans[end_word][1] if spans[end_word][1] - start <= width else start + width
    piece = text[start:end]
    return (ELLIPSIS if start > 0 else "") + piece + (ELLIPSIS if end < len(text) else "")
