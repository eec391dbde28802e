"""Bulk index builds embed in a worker process: the same vectors and the same index as in one process."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import install_static_model

import paperwire.index.embed_worker as embed_worker
from paperwire.index import open_index
from paperwire.index.embed import EmbeddingCache, embed_texts, embed_texts_alongside, load_embedder
from paperwire.ingest import ingest_items
from paperwire.model import make_paper
from paperwire.store import open_store

TOPICS = ["sparse attention for long documents", "protein folding with diffusion models",
          "reinforcement learning from human feedback", "retrieval of scientific papers",
          "speech recognition in noisy rooms", "graph neural networks for molecules"]


def papers(n: int, start: int = 0) -> list:
    rng = np.random.default_rng(start)
    out = []
    for i in range(start, start + n):
        topic = TOPICS[int(rng.integers(len(TOPICS)))]
        words = " ".join(rng.choice(topic.split(), 4))
        out.append(make_paper(title=f"Paper {i} on {topic}", abstract=f"We study {topic}; {words} (run {i}).",
                              arxiv_id=f"2401.{i + 1:05d}", source="test", listed_on="2025-01-01"))
    return out


@pytest.fixture
def home(tmp_path: Path, static_model_dir: Path) -> Path:
    install_static_model(static_model_dir, tmp_path)
    return tmp_path


def test_worker_vectors_equal_those_embedded_here(home):
    embedder = load_embedder("static", home)
    texts = [f"{p.title}. {p.abstract}" for p in papers(300)]
    here = embed_texts(embedder, texts, EmbeddingCache(home / "a.sqlite3"))
    cache = EmbeddingCache(home / "b.sqlite3")  # empty: every text goes to the worker
    ran = []
    worker = embed_worker.EmbeddingWorker("static", home)
    try:
        there = embed_texts_alongside(embedder, texts, cache, worker.submit, lambda: ran.append(True))
    finally:
        worker.close()
    assert ran == [True]
    assert np.array_equal(here, there)
    assert cache.count(embedder.name) == len(set(texts))
    # a second pass finds everything in the cache and submits nothing
    again = embed_texts_alongside(embedder, texts, cache, lambda _: pytest.fail("submitted"), lambda: None)
    assert np.array_equal(again, there)


def test_an_update_with_the_worker_builds_the_same_index(home, tmp_path_factory, static_model_dir, monkeypatch):
    other = tmp_path_factory.mktemp("single")
    install_static_model(static_model_dir, other)
    batch = papers(1200)
    for h in (home, other):
        store = open_store(h)
        ingest_items(store, batch)
        store.close()
    monkeypatch.setattr(embed_worker, "MIN_PAPERS", 1000)
    assert embed_worker.worth_it(1200, "static") == (len(os.sched_getaffinity(0)) > 1)
    with_worker = open_index(home, open_store(home), embedder="static")
    monkeypatch.setattr(embed_worker, "MIN_PAPERS", 10**9)
    single = open_index(other, open_store(other), embedder="static")
    ids = sorted(single.all_ids())
    assert sorted(with_worker.all_ids()) == ids
    assert np.array_equal(with_worker.paper_vectors(ids), single.paper_vectors(ids))
    for query in ("protein diffusion", "attention over long documents", "speech in noisy rooms"):
        assert [h.id for h in with_worker.search(query)] == [h.id for h in single.search(query)]


def _worth_it_here(papers: int) -> bool:
    return embed_worker.worth_it(papers, "static")


def test_no_worker_from_a_daemonic_process():
    """A multiprocessing.Pool worker may not start children: a build there stays in one process."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_worth_it_here, (10**6,)) is False
