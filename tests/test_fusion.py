"""Rank fusion: the lexical depth it needs gives the same top results as a long lexical list."""

from __future__ import annotations

import random

import pytest

from paperwire.index.fusion import DENSE_WEIGHTS, fuse, lexical_depth


@pytest.mark.parametrize("weight", [*DENSE_WEIGHTS.values(), 0.1, 0.9])
@pytest.mark.parametrize("wanted", [1, 3, 10, 25, 60])
def test_fused_top_is_the_same_with_the_shorter_lexical_list(weight: float, wanted: int) -> None:
    rng = random.Random(wanted * 1000 + int(weight * 100))
    ceiling = max(100, 2 * wanted)
    depth = lexical_depth(wanted, weight, ceiling=ceiling)
    assert wanted <= depth <= ceiling
    for _ in range(300):
        pool = [f"p{i}" for i in range(400)]
        lexical = [(pid, 100.0 - r) for r, pid in enumerate(rng.sample(pool, ceiling))]
        # dense lists that favour what BM25 ranks low: the case where a short lexical list could lose a paper
        tail = [pid for pid, _ in lexical[depth:]]
        dense_ids = rng.sample(tail, min(len(tail), 20)) + rng.sample(pool, 80)
        dense = [(pid, 1.0 - r / 1000) for r, pid in enumerate(dict.fromkeys(dense_ids))]
        full = fuse(lexical, dense, dense_weight=weight)[:wanted]
        short = fuse(lexical[:depth], dense, dense_weight=weight)[:wanted]
        assert [pid for pid, _ in short] == [pid for pid, _ in full]
        assert [s for _, s in short] == pytest.approx([s for _, s in full])


def test_depth_for_the_static_and_minilm_weights() -> None:
    assert lexical_depth(10, DENSE_WEIGHTS["static"], ceiling=100) == 39
    # MiniLM's dense list weighs enough that a top 10 needs the whole default list
    assert lexical_depth(10, DENSE_WEIGHTS["minilm"], ceiling=100) == 100
