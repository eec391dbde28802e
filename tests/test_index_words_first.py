"""Search answers from the words alone while vectors are made, a checkpoint at a time, and a kill -9
during that work loses at most one checkpoint."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import copy_home, run_cli
from web_server import serve_app

from paperwire.index import open_index
from paperwire.index.engine import index_dir
from paperwire.store import open_store


def _home_without_index(seed_home: Path, target: Path, *, keep_cache: bool = True) -> Path:
    """The sample home with its papers but no saved index (the embedding cache kept or not)."""
    home = copy_home(seed_home, target)
    directory = index_dir(home)
    for path in directory.iterdir():
        if path.name.startswith("gen-") or path.name == "manifest.json":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    if not keep_cache:
        for path in directory.glob("embeddings.sqlite3*"):
            path.unlink()
    return home


def test_words_first_then_vectors_in_checkpoints(seed_home: Path, tmp_path: Path) -> None:
    home = _home_without_index(seed_home, tmp_path / "home")
    store = open_store(home)
    try:
        index = open_index(home, store, embedder="minilm", catch_up=False)
        assert index.update_words() == store.count_papers()
        assert not index.vectors_complete and len(index.dense) == 0
        query = "sparse attention for long context language models"
        # hybrid and semantic answer from the words while there are no vectors
        lexical = [h.id for h in index.search(query, mode="lexical")]
        assert lexical and [h.id for h in index.search(query, mode="hybrid")] == lexical
        assert [h.id for h in index.search(query, mode="semantic")] == lexical
        index.save()
        report = index.verify()
        assert report.ok, report.problems  # missing vectors are a backlog, not a fault
        assert report.to_dict()["coverage"] == {"embedder": index.embedder.name, "vectors": 0,
                                                "papers": store.count_papers(), "embedders": {}}

        assert index.embed_pending(limit=100) == 100
        index.save()
        assert len(index.dense) == 100 and not index.vectors_complete
        reopened = open_index(home, store, catch_up=False)
        assert (reopened.rev, reopened.dense_rev) == (index.rev, index.dense_rev)
        assert len(reopened.dense) == 100

        while not reopened.vectors_complete:
            reopened.embed_pending(limit=150)
            reopened.save()
        assert len(reopened.dense) == store.count_papers() and reopened.verify().ok
        # once every paper has a vector, hybrid fuses again: the same ranking as an index built in one go
        whole = open_index(seed_home, open_store(seed_home, readonly=True), catch_up=False)
        assert [h.id for h in reopened.search(query)] == [h.id for h in whole.search(query)]
    finally:
        store.close()


def test_a_partial_generation_is_reported_and_removed(seed_home: Path, tmp_path: Path) -> None:
    home = copy_home(seed_home, tmp_path / "home")
    (index_dir(home) / "gen-999999" / "lexical").mkdir(parents=True)  # what a save killed midway leaves
    report = run_cli(home, "index", "verify", "--json")
    assert report.returncode == 1 and any("gen-999999" in p for p in json.loads(report.stdout)["problems"])
    repaired = run_cli(home, "index", "update", "--json")
    assert repaired.returncode == 0, repaired.stderr
    assert json.loads(repaired.stdout)["removed_partial_generations"] == ["gen-999999"]
    assert not (index_dir(home) / "gen-999999").exists()
    assert run_cli(home, "index", "verify").returncode == 0


_EMBED_IN_CHECKPOINTS = """
import sys
from pathlib import Path
from paperwire.index import open_index
from paperwire.store import open_store
home = Path(sys.argv[1])
store = open_store(home)
index = open_index(home, store, catch_up=False)
while not index.vectors_complete:
    index.embed_pending(limit=40)
    index.save()
"""


@pytest.mark.slow
def test_kill_during_vector_checkpoints_loses_at_most_one(seed_home: Path, tmp_path: Path) -> None:
    home = _home_without_index(seed_home, tmp_path / "home", keep_cache=False)
    store = open_store(home)
    index = open_index(home, store, embedder="minilm", catch_up=False)
    index.update_words()
    index.save()
    store.close()
    manifest = index_dir(home) / "manifest.json"
    proc = subprocess.Popen([sys.executable, "-c", _EMBED_IN_CHECKPOINTS, str(home)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 600
        while json.loads(manifest.read_text()).get("dense_rev", 0) < 80:  # two checkpoints saved
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.2)
        saved = json.loads(manifest.read_text())["dense_rev"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert saved < 407, "the job finished before the kill; the test proved nothing"

    verify = run_cli(home, "index", "verify", "--json")
    assert verify.returncode == 0, verify.stdout
    state = json.loads(verify.stdout)
    assert state["coverage"]["vectors"] >= saved  # every saved checkpoint is there
    assert state["coverage"]["vectors"] < state["indexed_papers"]

    resumed = run_cli(home, "index", "update", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["coverage"]["vectors"] == 407
    # the vectors equal those of an index built in one go
    store, whole_store = open_store(home), open_store(seed_home, readonly=True)
    try:
        done, whole = open_index(home, store, catch_up=False), open_index(seed_home, whole_store, catch_up=False)
        ids = whole.all_ids()
        assert np.allclose(done.paper_vectors(ids), whole.paper_vectors(ids), atol=2e-3)
    finally:
        store.close()
        whole_store.close()


def test_server_on_a_home_without_index_searches_at_once(seed_home: Path, tmp_path: Path) -> None:
    home = _home_without_index(seed_home, tmp_path / "home")
    with serve_app(home, wait_for_vectors=False) as (base, app):
        first = httpx.get(f"{base}/api/papers/search", params={"q": "diffusion models for video"}, timeout=60)
        assert first.status_code == 200 and first.json(), first.text[:300]
        page = httpx.get(f"{base}/search", params={"q": "diffusion models for video"}, timeout=60)
        assert page.status_code == 200
        site = app.state.site
        deadline = time.monotonic() + 600
        while not site.index().vectors_complete:
            assert time.monotonic() < deadline, "the vectors were never made"
            time.sleep(0.5)
        manifest = json.loads((index_dir(home) / "manifest.json").read_text())
        assert manifest["dense_rev"] == manifest["rev"]
        after = httpx.get(f"{base}/api/papers/search", params={"q": "diffusion models for video"}, timeout=60)
        assert after.status_code == 200 and after.json()
