"""`paperwire index embed`: MiniLM vectors for a home indexed with the static model, newest papers first,
in checkpoints that survive kill -9, and the switch to them once every paper has one."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from conftest import run_cli

from paperwire.index import open_index
from paperwire.index.embed import (
    MINILM_NAME,
    STATIC_NAME,
    EmbeddingCache,
    load_embedder,
    text_for_embedding,
    text_key,
)
from paperwire.index.embed_job import newest_first
from paperwire.index.engine import index_dir
from paperwire.store import open_store


def _papers(home: Path) -> int:
    store = open_store(home, readonly=True)
    try:
        return store.count_papers()
    finally:
        store.close()


def _minilm_keys(home: Path) -> set[bytes]:
    cache = EmbeddingCache(index_dir(home) / "embeddings.sqlite3")
    try:
        return {bytes(k) for (k,) in cache.conn.execute("SELECT key FROM embeddings WHERE embedder = ?",
                                                         (MINILM_NAME,))}
    finally:
        cache.close()


def _text_keys(home: Path, ids: list[str]) -> list[bytes]:
    store = open_store(home, readonly=True)
    try:
        papers = store.get_papers(ids)
        return [text_key(text_for_embedding(papers[pid])) for pid in ids]
    finally:
        store.close()


def test_embed_newest_first_then_switch(static_home: Path) -> None:
    total = _papers(static_home)
    first = run_cli(static_home, "index", "embed", "--limit", "30", "--checkpoint", "10", "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["embedded"] == 30 and report["covered"] == 30 and not report["switched"]
    assert report["index_embedder"] == STATIC_NAME  # search keeps the static vectors meanwhile

    store = open_store(static_home, readonly=True)
    try:
        order = newest_first(store)
        papers = store.get_papers(order)
        dates = [papers[p].listed_on or papers[p].updated or papers[p].published or "" for p in order]
    finally:
        store.close()
    assert dates == sorted(dates, reverse=True)
    keys = _text_keys(static_home, order)
    embedded = _minilm_keys(static_home)
    assert set(keys[:30]) <= embedded  # the newest 30 went first
    assert not set(keys[-30:]) & embedded

    verify = run_cli(static_home, "index", "verify", "--json")
    assert verify.returncode == 0, verify.stdout
    coverage = json.loads(verify.stdout)["coverage"]
    assert coverage["embedder"] == STATIC_NAME
    assert coverage["embedders"][MINILM_NAME]["covered"] == 30
    text = run_cli(static_home, "index", "verify")
    assert f"({MINILM_NAME}): 30 of {total}" in text.stdout
    stats = run_cli(static_home, "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["vectors"] == {
        MINILM_NAME: {"papers": total, "covered": 30},
        STATIC_NAME: {"papers": total, "covered": total, "index": True}}
    search = run_cli(static_home, "search", "attention heads", "--json")
    assert search.returncode == 0, search.stderr

    rest = run_cli(static_home, "index", "embed", "--json")
    assert rest.returncode == 0, rest.stderr
    report = json.loads(rest.stdout)
    assert report["embedded"] == total - 30 and report["covered"] == total and report["switched"]
    assert report["index_embedder"] == MINILM_NAME
    store = open_store(static_home)
    try:
        index = open_index(static_home, store, catch_up=False)
        assert index.embedder.name == MINILM_NAME and index.verify().ok
        ids = index.all_ids()
        papers = store.get_papers(ids)
        # the vectors are MiniLM's own for each paper's text
        direct = load_embedder("minilm", static_home).encode([text_for_embedding(papers[p]) for p in ids])
        assert np.allclose(index.paper_vectors(ids), direct, atol=2e-3)
        assert index.search("attention heads", mode="semantic")
    finally:
        store.close()


def test_kill_loses_at_most_one_checkpoint(static_home: Path) -> None:
    coverage_file = index_dir(static_home) / "coverage.json"
    proc = subprocess.Popen([sys.executable, "-m", "paperwire.cli", "--home", str(static_home), "index", "embed",
                             "--checkpoint", "5", "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 600
        recorded = 0
        while recorded < 10:  # two checkpoints written
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.1)
            try:
                recorded = json.loads(coverage_file.read_text())[MINILM_NAME]["covered"]
            except (FileNotFoundError, KeyError, json.JSONDecodeError):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    kept = len(_minilm_keys(static_home))
    assert recorded <= kept < _papers(static_home), "every recorded checkpoint is kept; the job did not finish"
    manifest = json.loads((index_dir(static_home) / "manifest.json").read_text())
    assert manifest["embedder"] == STATIC_NAME  # the index was left as it was

    resumed = run_cli(static_home, "index", "embed", "--json")
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["embedded"] == _papers(static_home) - kept and report["switched"]


def test_bad_device_and_second_job(static_home: Path) -> None:
    manifest = (index_dir(static_home) / "manifest.json").read_text()
    missing_gpu = run_cli(static_home, "index", "embed", "--device", "cuda")
    assert missing_gpu.returncode == 2
    assert "no CUDA GPU" in missing_gpu.stderr and "Traceback" not in missing_gpu.stderr
    assert len(missing_gpu.stderr.strip().splitlines()) == 1
    unknown = run_cli(static_home, "index", "embed", "--device", "tpu")
    assert unknown.returncode == 2 and "unknown device 'tpu'" in unknown.stderr

    from paperwire.index.engine import vector_job

    with vector_job(index_dir(static_home)) as mine:
        assert mine
        busy = run_cli(static_home, "index", "embed")
    assert busy.returncode == 2 and "another process is making" in busy.stderr
    assert (index_dir(static_home) / "manifest.json").read_text() == manifest
    assert not _minilm_keys(static_home)
