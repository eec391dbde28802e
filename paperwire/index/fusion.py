"""Combining ranked lists from the lexical and dense retrievers."""

from __future__ import annotations

# Reciprocal-rank fusion: each list contributes weight / (k + rank). k = 60 is the usual
# constant; the weights were chosen on the tune split of bench/known_items.json only.
RRF_K = 60
LEXICAL_WEIGHT = 1.0
DENSE_WEIGHT = 1.0


def fuse(lexical: list[tuple[str, float]], dense: list[tuple[str, float]], *,
         lexical_weight: float = LEXICAL_WEIGHT, dense_weight: float = DENSE_WEIGHT,
         k: int = RRF_K) -> list[tuple[str, float]]:
    """One ranking from two, best first; ties broken by the lexical order, then by id."""
    scores: dict[str, float] = {}
    for weight, ranked in ((lexical_weight, lexical), (dense_weight, dense)):
        for rank, (pid, _) in enumerate(ranked, 1):
            scores[pid] = scores.get(pid, 0.0) + weight / (k + rank)
    lexical_rank = {pid: rank for rank, (pid, _) in enumerate(lexical)}
    return sorted(scores.items(), key=lambda item: (-item[1], lexical_rank.get(item[0], len(lexical)), item[0]))
