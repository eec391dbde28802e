"""Combining ranked lists from the lexical and dense retrievers."""

from __future__ import annotations

import math
from itertools import pairwise

# Reciprocal-rank fusion: each list contributes weight / (k + rank), and a paper BM25 is sure of stays
# first. Chosen on the tune split of bench/known_items.json only (grid: bench/tune_fusion.py; BENCHMARKS.md).
RRF_K = 60
LEXICAL_WEIGHT = 1.0
# Per embedder kind: the weaker the dense retriever, the less say it has (MiniLM: a plateau at 0.33-0.5;
# the distilled static model adds nothing measurable on the tune split, so it mostly breaks near-ties).
DENSE_WEIGHTS = {"minilm": 0.5, "static": 0.25}
DENSE_WEIGHT = DENSE_WEIGHTS["minilm"]
# A dense retriever loses ground to BM25 as the corpus grows (more near neighbours to confuse a known
# paper with). (papers, weight) anchors, interpolated in log(papers), chosen on the tune splits of both
# query sets among real arXiv papers (bench/real_scale.py; BENCHMARKS.md "Quality among real papers"):
# the static model's vectors add MRR at 20k papers with weight 0.1 (0.850 -> 0.891, 0.949 -> 0.952) and
# take it away at 100k and 187k with every weight tried (0.811 -> 0.763 at 0.05), so there hybrid = lexical.
WEIGHT_BY_SIZE: dict[str, tuple[tuple[int, float], ...]] = {
    "static": ((407, 0.25), (20_000, 0.1), (100_000, 0.0)),
}
# When BM25's best score is at least this many times its second best, that paper stays first.
CONFIDENT_RATIO: float | None = 1.2


def dense_weight(embedder_kind: str, papers: int | None = None) -> float:
    """The fusion weight of dense results from an index of `papers` papers built by `embedder_kind`."""
    anchors = WEIGHT_BY_SIZE.get(embedder_kind)
    if papers is None or not anchors:
        return DENSE_WEIGHTS.get(embedder_kind, DENSE_WEIGHT)
    if papers <= anchors[0][0]:
        return anchors[0][1]
    for (low, low_weight), (high, high_weight) in pairwise(anchors):
        if papers <= high:
            share = (math.log(papers) - math.log(low)) / (math.log(high) - math.log(low))
            return low_weight + share * (high_weight - low_weight)
    return anchors[-1][1]


def lexical_depth(wanted: int, dense_weight: float, *, ceiling: int, k: int = RRF_K) -> int:
    """How many lexical results fusion needs for its best `wanted` to be exactly what a list of `ceiling`
    gives. The `wanted`-th fused score is at least 1/(k + wanted) (the lexical top `wanted` alone score
    that), and a paper below lexical rank d scores at most 1/(k + d + 1) + dense_weight/(k + 1); once
    that is lower, no paper below rank d can reach the top, and the papers that do keep their ranks.
    With the static embedder's weight this is 39 for a top 10 instead of 100."""
    room = 1.0 / (k + wanted) - dense_weight / (k + 1)
    if room <= 0:
        return ceiling
    return max(min(ceiling, math.floor(1.0 / room - k) + 1), wanted, 2)  # +1: a margin for rounding


def fuse(lexical: list[tuple[str, float]], dense: list[tuple[str, float]], *,
         lexical_weight: float = LEXICAL_WEIGHT, dense_weight: float = DENSE_WEIGHT,
         k: int = RRF_K, confident_ratio: float | None = CONFIDENT_RATIO) -> list[tuple[str, float]]:
    """One ranking from two, best first; ties broken by the lexical order, then by id."""
    scores: dict[str, float] = {}
    for weight, ranked in ((lexical_weight, lexical), (dense_weight, dense)):
        for rank, (pid, _) in enumerate(ranked, 1):
            scores[pid] = scores.get(pid, 0.0) + weight / (k + rank)
    lexical_rank = {pid: rank for rank, (pid, _) in enumerate(lexical)}
    fused = sorted(scores.items(), key=lambda item: (-item[1], lexical_rank.get(item[0], len(lexical)), item[0]))
    if confident_ratio is not None and lexical and fused[0][0] != lexical[0][0] and lexical_confident(
            lexical, confident_ratio):
        leader = lexical[0][0]
        fused = [(leader, fused[0][1] + 1e-9), *[item for item in fused if item[0] != leader]]
    return fused


def lexical_confident(lexical: list[tuple[str, float]], ratio: float) -> bool:
    """Whether BM25's best paper leads the second by `ratio` (a single paper with a positive score leads)."""
    best = lexical[0][1]
    second = lexical[1][1] if len(lexical) > 1 else 0.0
    return best > 0 and best >= ratio * second
