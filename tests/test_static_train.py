"""The static model trained on a home's own abstracts against their MiniLM vectors (index train-static)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli


def neighbour_overlap(a: np.ndarray, b: np.ndarray, top: int = 5) -> float:
    """Mean share of each row's `top` nearest rows (cosine) that two vector sets of the same texts agree on."""
    def nearest(matrix: np.ndarray) -> list[set[int]]:
        matrix = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
        scores = matrix @ matrix.T
        np.fill_diagonal(scores, -np.inf)
        return [set(np.argsort(-row, kind="stable")[:top].tolist()) for row in scores]
    return float(np.mean([len(x & y) / top for x, y in zip(nearest(a), nearest(b), strict=True)]))


@pytest.fixture
def embedded_home(static_home: Path) -> Path:
    """The static home with MiniLM vectors for every paper in its embedding cache, index still on static."""
    embedded = run_cli(static_home, "index", "embed", "--no-switch", "--json")
    assert embedded.returncode == 0, embedded.stderr
    return static_home


def test_train_static_on_the_homes_abstracts(embedded_home: Path) -> None:
    from paperwire.index import open_index
    from paperwire.index.embed import (
        MINILM_NAME,
        STATIC_NAME,
        EmbeddingCache,
        StaticEmbedder,
        static_model_directory,
    )
    from paperwire.index.engine import index_dir
    from paperwire.index.static_train import minilm_training_set, train_home_static_model
    from paperwire.store import open_store

    home = embedded_home
    directory = static_model_directory(home)
    distilled = StaticEmbedder(directory)
    # A process with the distilled model loaded (a server) before the training.
    serving_store = open_store(home)
    serving = open_index(home, serving_store)
    serving.embedder.load()
    assert serving.embedder.name == STATIC_NAME
    before = (directory / "paperwire.json").read_text()

    # The real threshold: one page of abstracts is far too few, and nothing changes.
    refused = run_cli(home, "index", "train-static", "--json")
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0
    assert "training needs at least 1000" in refused.stderr
    assert (directory / "paperwire.json").read_text() == before

    store = open_store(home)
    try:
        cache = EmbeddingCache(index_dir(home) / "embeddings.sqlite3")
        texts, minilm = minilm_training_set(store, cache)
        assert len(texts) == store.count_papers() > 50
        assert cache.count(STATIC_NAME) > 0 and cache.count(MINILM_NAME) == len(texts)
        cache.close()
        record = train_home_static_model(home, store, min_texts=50)
    finally:
        store.close()

    # Another model, so another name: never taken for the distilled model's vectors anywhere.
    assert record["name"].startswith("static:trained-256-") and record["trained_on"] == len(texts)
    assert json.loads((directory / "paperwire.json").read_text()) == record
    trained = StaticEmbedder(directory)
    assert trained.dim == distilled.dim and trained.name == record["name"]
    # Fitted to MiniLM on these abstracts: their nearest neighbours now agree with MiniLM's more often.
    reference = np.asarray(minilm, dtype=np.float32)
    assert neighbour_overlap(trained.encode(texts), reference) > neighbour_overlap(distilled.encode(texts), reference)
    cache = EmbeddingCache(index_dir(home) / "embeddings.sqlite3")
    try:  # the old model's vectors are gone, MiniLM's kept
        assert cache.count(STATIC_NAME) == 0 and cache.count(MINILM_NAME) == len(texts)
    finally:
        cache.close()

    rebuilt = run_cli(home, "index", "rebuild", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["embedder"] == record["name"]
    # The process that had the distilled model loads the rebuilt generation with the trained model.
    assert serving.reload() and serving.embedder.name == record["name"]
    assert np.allclose(serving.embedder.encode(texts[:5]), trained.encode(texts[:5]))
    serving_store.close()
    store = open_store(home)
    try:
        paper = next(p for _, p in store.iter_papers())
    finally:
        store.close()
    hits = run_cli(home, "search", paper.title, "--mode", "semantic", "--json")
    assert hits.returncode == 0, hits.stderr
    assert paper.id in [h["id"] for h in json.loads(hits.stdout)[:3]]
