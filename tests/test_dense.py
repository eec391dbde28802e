"""The dense index: exact and quantised-scan search agree, replace/remove, filters, neighbours, atomic save/load."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from paperwire.index.dense import DenseIndex, DenseIndexError

DIM = 32
NAME = "static:test-model"


def clustered(n: int, seed: int = 0, clusters: int = 40) -> np.ndarray:
    """Unit vectors around a few centres, like embeddings of papers on a few topics."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIM))
    vectors = centres[rng.integers(0, clusters, n)] + 0.6 * rng.normal(size=(n, DIM))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def ids_of(n: int, start: int = 0) -> list[str]:
    return [f"p{i}" for i in range(start, start + n)]


def tie_tolerant_recall(exact: DenseIndex, approximate: DenseIndex, queries: np.ndarray, k: int = 10) -> float:
    hits = 0
    for query in queries:
        truth = exact.search(query, k)
        kth = truth[-1][1]
        found = approximate.search(query, k)
        hits += sum(float(exact.vector(i) @ query) >= kth - 1e-3 for i, _ in found)
    return hits / (k * len(queries))


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return clustered(4000)


@pytest.fixture
def pair(vectors) -> tuple[DenseIndex, DenseIndex]:
    exact = DenseIndex(DIM, NAME, storage="f32", exact_threshold=10**9)
    exact.add(ids_of(4000), vectors)
    graph = DenseIndex(DIM, NAME, exact_threshold=500)
    graph.add(ids_of(300), vectors[:300])  # exact while small
    graph.add(ids_of(3700, 300), vectors[300:])  # crosses the threshold: the graph is built
    return exact, graph


def test_graph_search_agrees_with_exact_search(pair):
    exact, graph = pair
    assert graph._ann is not None and exact._ann is None
    queries = clustered(100, seed=1)
    assert tie_tolerant_recall(exact, graph, queries) >= 0.95
    for query in queries[:10]:
        scores = [s for _, s in graph.search(query, 10)]
        assert scores == sorted(scores, reverse=True)


def test_queries_far_from_the_papers_still_find_their_exact_top_ten():
    """Embeddings share a strong common direction, and a short query embeds far from it: the case where a
    graph walk lost most of the exact top 10. The scan re-scored exactly must not."""
    rng = np.random.default_rng(7)
    common = rng.normal(size=DIM)
    papers = 3.0 * common / np.linalg.norm(common) + clustered(6000, seed=8)
    papers /= np.linalg.norm(papers, axis=1, keepdims=True)
    exact = DenseIndex(DIM, NAME, storage="f32", exact_threshold=10**9)
    scan = DenseIndex(DIM, NAME, exact_threshold=1000, candidates=500)
    exact.add(ids_of(6000), papers)
    scan.add(ids_of(6000), papers)
    assert scan._ann is not None
    queries = clustered(60, seed=9)  # no common direction: far from every paper
    assert float(np.mean(queries @ papers.mean(axis=0))) < 0.5
    assert tie_tolerant_recall(exact, scan, queries) >= 0.95


def test_a_moderate_filter_gives_the_exact_filtered_answer(pair, vectors):
    exact, graph = pair
    half = {f"p{i}" for i in range(0, 4000, 3)}
    for query in clustered(10, seed=6):
        found = graph.search(query, 10, allowed=half.__contains__)
        truth = exact.search(query, 10, allowed=half.__contains__)
        assert all(i in half for i, _ in found)
        # the same papers up to f16 rounding of near-ties
        assert [s for _, s in found] == pytest.approx([s for _, s in truth], abs=2e-3)


def test_adding_to_a_graph_extends_it_without_rebuilding(pair):
    exact, graph = pair
    ann = graph._ann
    extra = clustered(50, seed=2)
    graph.add(ids_of(50, 10_000), extra)
    assert graph._ann is ann and len(graph) == 4050
    for i, vector in enumerate(extra[:10]):
        assert graph.search(vector, 1)[0][0] == f"p{10_000 + i}"


@pytest.mark.parametrize("threshold", [10**9, 100])
def test_replace_and_remove(vectors, threshold):
    index = DenseIndex(DIM, NAME, exact_threshold=threshold)
    index.add(ids_of(1000), vectors[:1000])
    new = clustered(1, seed=3)[0]
    index.add(["p5"], new[None, :])
    assert len(index) == 1000 and index.ids().count("p5") == 1
    assert np.allclose(index.vector("p5"), new, atol=1e-3)
    assert index.search(new, 1)[0][0] == "p5"
    old_neighbours = [i for i, _ in index.search(vectors[5], 3)]
    assert "p5" not in old_neighbours or index.search(vectors[5], 1)[0][1] < 0.999

    index.remove(["p5", "p6", "never-added"])
    assert len(index) == 998 and index.vector("p5") is None and "p6" not in index
    assert all(i not in ("p5", "p6") for i, _ in index.search(new, 50))
    with pytest.raises(KeyError):
        index.vectors(["p5"])
    assert np.allclose(index.vectors(["p7", "p8"]), vectors[7:9], atol=1e-3)

    index.add(["p5"], vectors[5:6])  # back again
    assert index.search(vectors[5], 1)[0] == ("p5", pytest.approx(1.0, abs=1e-3))


def test_duplicate_ids_in_one_call_keep_the_last(vectors):
    index = DenseIndex(DIM, NAME)
    index.add(["a", "b", "a"], vectors[:3])
    assert len(index) == 2 and np.allclose(index.vector("a"), vectors[2], atol=1e-3)


@pytest.mark.parametrize("threshold", [10**9, 100])
def test_filters_and_exclusions(pair, vectors, threshold):
    exact, graph = pair
    index = graph if threshold == 100 else exact
    query = vectors[17]
    rare = {f"p{i}" for i in range(0, 4000, 97)}  # 42 allowed ids: the graph alone rarely reaches them
    found = index.search(query, 10, allowed=rare.__contains__)
    assert [i for i, _ in found] == [i for i, _ in exact.search(query, 10, allowed=rare.__contains__)]
    assert len(found) == 10 and all(i in rare for i, _ in found)
    assert index.search(query, 10, allowed=lambda i: False) == []
    top = index.search(query, 5, exclude={"p17"})
    assert "p17" not in [i for i, _ in top] and len(top) == 5


def test_neighbours_never_include_the_paper_itself(vectors):
    index = DenseIndex(DIM, NAME, exact_threshold=100)
    index.add(ids_of(500), vectors[:500])
    index.add(["twin"], vectors[3:4])  # an identical vector under another id
    near = index.neighbours("p3", 5)
    assert near[0][0] == "twin" and all(i != "p3" for i, _ in near) and len(near) == 5
    assert index.neighbours("unknown", 5) == []


@pytest.mark.parametrize("storage", ["f16", "int8"])
def test_compact_storage_keeps_the_ranking(vectors, storage):
    full = DenseIndex(DIM, NAME, storage="f32")
    small = DenseIndex(DIM, NAME, storage=storage)
    full.add(ids_of(2000), vectors[:2000])
    small.add(ids_of(2000), vectors[:2000])
    assert small.memory_bytes() < full.memory_bytes()
    queries = clustered(50, seed=4)
    assert tie_tolerant_recall(full, small, queries) >= (0.99 if storage == "f16" else 0.9)


def test_bad_shapes_are_refused(vectors):
    index = DenseIndex(DIM, NAME)
    with pytest.raises(ValueError, match="dimension"):
        index.add(["a"], np.ones((1, DIM + 1), dtype=np.float32))
    with pytest.raises(ValueError):
        index.add(["a", "b"], vectors[:1])
    with pytest.raises(ValueError, match="dimension"):
        index.search(np.ones(DIM + 1), 3)
    assert DenseIndex(DIM, NAME).search(vectors[0], 3) == []


@pytest.mark.parametrize("storage,threshold", [("f16", 10**9), ("int8", 200), ("f32", 200)])
def test_save_and_load_round_trip(tmp_path, vectors, storage, threshold):
    index = DenseIndex(DIM, NAME, storage=storage, exact_threshold=threshold)
    index.add(ids_of(1000), vectors[:1000])
    index.remove(["p3"])
    index.save(tmp_path / "dense")
    header = json.loads((tmp_path / "dense" / "header.json").read_text())
    assert header["embedder_name"] == NAME and header["count"] == 999 and header["storage"] == storage
    assert header["dim"] == DIM and header["format"] == 1

    loaded = DenseIndex.load(tmp_path / "dense", expected_embedder=NAME)
    assert len(loaded) == 999 and sorted(loaded.ids()) == sorted(index.ids()) and "p3" not in loaded
    assert (loaded._ann is None) == (index._ann is None)
    for query in clustered(10, seed=5):
        assert loaded.search(query, 10) == index.search(query, 10)
    loaded.add(["new"], vectors[1000:1001])  # still incremental after loading
    assert loaded.search(vectors[1000], 1)[0][0] == "new"

    index.add(["p3"], vectors[3:4])
    index.save(tmp_path / "dense")  # a second save replaces the first and removes its files
    names = sorted(p.name for p in (tmp_path / "dense").iterdir())
    assert len(names) == len(json.loads((tmp_path / "dense" / "header.json").read_text())["files"]) + 1
    assert len(DenseIndex.load(tmp_path / "dense")) == 1000


@pytest.mark.parametrize("damage", ["missing", "garbage", "other rows"])
def test_a_lost_or_damaged_quantised_copy_is_rebuilt_from_the_rows(tmp_path, vectors, damage):
    index = DenseIndex(DIM, NAME, exact_threshold=500)
    index.add(ids_of(1000), vectors[:1000])
    index.save(tmp_path / "dense")
    ann_file = tmp_path / "dense" / json.loads((tmp_path / "dense" / "header.json").read_text())["files"]["ann"]
    if damage == "missing":
        ann_file.unlink()
    elif damage == "garbage":
        ann_file.write_bytes(b"not an index" * 100)
    else:  # a copy saved with other rows, e.g. by an older version
        other = DenseIndex(DIM, NAME, exact_threshold=500)
        other.add(ids_of(900), vectors[:900])
        other.save(tmp_path / "other")
        ann_file.write_bytes(next((tmp_path / "other").glob("ann-*")).read_bytes())
    loaded = DenseIndex.load(tmp_path / "dense", expected_embedder=NAME)
    assert loaded._ann is not None and loaded._ann.ntotal == 1000
    for query in clustered(10, seed=5):
        assert loaded.search(query, 10) == index.search(query, 10)


def test_loading_vectors_of_another_embedder_is_refused(tmp_path, vectors):
    index = DenseIndex(DIM, NAME)
    index.add(ids_of(10), vectors[:10])
    index.save(tmp_path / "dense")
    with pytest.raises(DenseIndexError, match="static:test-model.*minilm:all-MiniLM-L6-v2.*rebuild"):
        DenseIndex.load(tmp_path / "dense", expected_embedder="minilm:all-MiniLM-L6-v2")
    with pytest.raises(DenseIndexError, match="no dense index"):
        DenseIndex.load(tmp_path / "elsewhere")
    (tmp_path / "dense" / "header.json").write_text("{not json")
    with pytest.raises(DenseIndexError, match="unreadable"):
        DenseIndex.load(tmp_path / "dense")


SAVER = """
import sys, numpy as np
from paperwire.index.dense import DenseIndex
directory = sys.argv[1]
index = DenseIndex.load(directory, expected_embedder="static:test-model")
rng = np.random.default_rng(0)
step = 0
while True:  # save ever bigger versions until killed
    step += 1
    v = rng.normal(size=(3000, 32)).astype(np.float32)
    index.add([f"{sys.argv[2]}-{step}-{i}" for i in range(3000)], v)
    index.save(directory)
    print(len(index), flush=True)
"""


@pytest.mark.slow
def test_sigkill_during_save_leaves_a_loadable_index(tmp_path, vectors):
    directory = tmp_path / "dense"
    index = DenseIndex(DIM, NAME, exact_threshold=2000)
    index.add(ids_of(1000), vectors[:1000])
    index.save(directory)
    rng = np.random.default_rng(1)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    for run in range(6):
        before = len(DenseIndex.load(directory, expected_embedder=NAME))
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(directory), f"run{run}"],
                                stdout=subprocess.PIPE, env=env, text=True)
        assert proc.stdout is not None
        proc.stdout.readline()  # one save done; the next one is under way
        time.sleep(float(rng.uniform(0.0, 0.3)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        loaded = DenseIndex.load(directory, expected_embedder=NAME)
        assert len(loaded) >= before + 3000 and (len(loaded) - 1000) % 3000 == 0
        assert loaded.search(vectors[4], 1)[0][0] == "p4"
