"""MiniLM queries run through the ONNX graph exported under the home: the same vectors as torch gives,
searches that never import torch, and a stale or damaged graph exported again."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_home

from paperwire.index.embed import FEW_TEXTS, SMALL_BATCH, MiniLMEmbedder, onnx_model_directory

QUERIES = [
    "robot learns to grasp from human videos",
    "",
    "   spaces   and\ttabs\naround  ",
    "Ünïcödé naïve café — 深度学习 and emoji 🤖",
    "transformers " * 400,  # far beyond the 256 word pieces both paths keep
]


@pytest.fixture(scope="module")
def home_with_graph(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("onnx") / "home"
    MiniLMEmbedder(home)
    return home


def _torch_vectors(embedder: MiniLMEmbedder, texts: list[str]) -> np.ndarray:
    # More texts than SMALL_BATCH (FEW_TEXTS while torch is not loaded) go through sentence-transformers:
    # pad with a filler and drop it.
    filler = ["filler text"] * (max(SMALL_BATCH, FEW_TEXTS) + 1)
    return embedder.encode(texts + filler)[: len(texts)]


def test_query_vectors_equal_the_torch_vectors(home_with_graph: Path) -> None:
    embedder = MiniLMEmbedder(home_with_graph)
    assert embedder.query_model is not None
    for text in QUERIES:
        assert np.abs(embedder.encode([text]) - _torch_vectors(embedder, [text])).max() < 1e-5, text
    # A small batch of different lengths: padding must not leak into the mean.
    mixed = QUERIES[:3]
    assert np.abs(embedder.encode(mixed) - _torch_vectors(embedder, mixed)).max() < 1e-5
    record = json.loads((onnx_model_directory(home_with_graph) / "paperwire.json").read_text())
    assert record["name"] == MiniLMEmbedder.name and record["weights_bytes"] > 0


def test_a_stale_graph_is_exported_again(tmp_path: Path, home_with_graph: Path) -> None:
    home = copy_home(home_with_graph, tmp_path / "home")
    graph = onnx_model_directory(home)
    record = json.loads((graph / "paperwire.json").read_text())
    record["weights_mtime_ns"] -= 1  # as after the MiniLM package was reinstalled
    (graph / "paperwire.json").write_text(json.dumps(record))
    os.utime(graph / "model.onnx", ns=(0, 0))
    leftover = graph.parent / f".{graph.name}-interrupted"  # what a killed export leaves behind
    leftover.mkdir()
    (leftover / "model.onnx").write_bytes(b"partial")
    embedder = MiniLMEmbedder(home)
    assert embedder.query_model is not None
    assert (graph / "model.onnx").stat().st_mtime_ns > 0
    assert json.loads((graph / "paperwire.json").read_text())["weights_mtime_ns"] == record["weights_mtime_ns"] + 1
    assert not leftover.exists()
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(graph.stat().st_mode) == 0o777 & ~umask  # readable as any other file the user makes


def test_a_damaged_graph_is_exported_again(tmp_path: Path, home_with_graph: Path) -> None:
    home = copy_home(home_with_graph, tmp_path / "home")
    graph = onnx_model_directory(home)
    (graph / "model.onnx").write_bytes(b"not a graph")
    embedder = MiniLMEmbedder(home)
    assert embedder.query_model is not None
    assert (graph / "model.onnx").stat().st_size > 1_000_000
    assert np.abs(embedder.encode([QUERIES[0]]) - _torch_vectors(embedder, [QUERIES[0]])).max() < 1e-5


def test_without_a_usable_graph_queries_fall_back_to_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    from paperwire.index import onnx_minilm

    calls = []

    def broken(*args: object) -> None:
        calls.append(args)
        raise RuntimeError("no exporter here")

    monkeypatch.setattr(onnx_minilm, "export_onnx", broken)
    with caplog.at_level(logging.WARNING, logger="paperwire.index.embed"):
        embedder = MiniLMEmbedder(tmp_path / "home")
    assert embedder.query_model is None and len(calls) == 1  # a failed export is not tried again at once
    assert "MiniLM queries run through torch" in caplog.text and "no exporter here" in caplog.text
    models = tmp_path / "home" / "models"
    assert [p.name for p in models.iterdir() if not p.name.endswith(".lock")] == []  # nothing half-written
    vector = embedder.encode([QUERIES[0]])
    assert vector.shape == (1, 384) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_without_onnxruntime_nothing_is_exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    monkeypatch.delitem(sys.modules, "paperwire.index.onnx_minilm", raising=False)
    with caplog.at_level(logging.WARNING, logger="paperwire.index.embed"):
        embedder = MiniLMEmbedder(tmp_path / "home")
    assert embedder.query_model is None and "onnxruntime" in caplog.text
    assert not (tmp_path / "home" / "models").exists()
    assert embedder.encode([QUERIES[0]]).shape == (1, 384)


SEARCH_IN_A_NEW_PROCESS = """
import json, sys
from pathlib import Path
from paperwire.index import open_index
from paperwire.store import open_store

store = open_store(Path(sys.argv[1]))
index = open_index(Path(sys.argv[1]), store)
lexical = [h.id for h in index.search(sys.argv[2], mode="lexical")]
after_lexical = {"embedder_loaded": index.embedder.loaded, "onnxruntime": "onnxruntime" in sys.modules}
hybrid = [h.id for h in index.search(sys.argv[2], mode="hybrid")]
print(json.dumps({"lexical": lexical, "hybrid": hybrid, "after_lexical": after_lexical,
                  "torch": "torch" in sys.modules, "sentence_transformers": "sentence_transformers" in sys.modules}))
"""


def test_searches_in_a_new_process_never_import_torch(seed_home: Path, tmp_path: Path) -> None:
    from paperwire.index import open_index
    from paperwire.store import open_store

    home = copy_home(seed_home, tmp_path / "home")
    assert (onnx_model_directory(home) / "model.onnx").is_file()  # exported when the index was built
    query = "a student network learns from the raw scores of a big teacher through a second output head"
    result = subprocess.run([sys.executable, "-c", SEARCH_IN_A_NEW_PROCESS, str(home), query],
                            capture_output=True, text=True, check=True, timeout=300)
    got = json.loads(result.stdout)
    assert got["after_lexical"] == {"embedder_loaded": False, "onnxruntime": False}
    assert not got["torch"] and not got["sentence_transformers"]
    assert got["lexical"] and got["hybrid"]
    # The same ranking as this process gives with the query vector from torch.
    store = open_store(home)
    try:
        index = open_index(home, store)
        minilm = index.embedder.load()
        index.embed_query = lambda text: _torch_vectors(minilm, [text])[0]  # type: ignore[method-assign,arg-type]
        # Vectors 1e-7 apart could swap two near-equal neighbours; the hits are the same papers.
        assert {h.id for h in index.search(query, mode="hybrid")} == set(got["hybrid"])
    finally:
        store.close()
