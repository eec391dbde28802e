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


def test_static_weight_shrinks_with_the_corpus() -> None:
    from paperwire.index.fusion import dense_weight

    sizes = [100, 407, 2_000, 20_000, 50_000, 100_000, 187_451, 1_000_000]
    weights = [dense_weight("static", n) for n in sizes]
    assert weights == sorted(weights, reverse=True)
    assert weights[1] == DENSE_WEIGHTS["static"] and dense_weight("static", 20_000) == pytest.approx(0.1)
    assert dense_weight("static", 100_000) == 0.0 and dense_weight("static", 1_000_000) == 0.0
    assert 0.0 < dense_weight("static", 50_000) < 0.1
    assert dense_weight("minilm", 187_451) == DENSE_WEIGHTS["minilm"]  # no schedule measured for MiniLM yet


def test_hybrid_is_lexical_where_the_dense_weight_is_zero(seed_home, monkeypatch: pytest.MonkeyPatch) -> None:
    from paperwire.index import fusion, open_index
    from paperwire.store import open_store

    store = open_store(seed_home, readonly=True)
    try:
        index = open_index(seed_home, store, catch_up=False)
        query = "language models that reason about their own mistakes"
        fused = [h.id for h in index.search(query, mode="hybrid", snippets=False)]
        lexical = [h.id for h in index.search(query, mode="lexical", snippets=False)]
        assert fused != lexical  # with MiniLM's weight the dense side reorders this query
        monkeypatch.setitem(fusion.WEIGHT_BY_SIZE, index.embedder_kind, ((10, 0.0),))
        assert [h.id for h in index.search(query, mode="hybrid", snippets=False)] == lexical
    finally:
        store.close()
