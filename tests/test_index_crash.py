"""A SIGKILL during an index update leaves a state that `index verify` detects and a re-run repairs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import copy_home, run_cli


def _snapshot(path: Path, count: int) -> Path:
    with open(path, "w") as fh:
        for i in range(count):
            fh.write(json.dumps({
                "id": f"2502.{i:05d}",
                "title": f"Synthetic study number {i} of sparse spectral operators",
                "abstract": f"We analyse operator family {i} with spectral sparsity {i % 17} and report bounds "
                            f"for regime {i % 5} under noise level {i % 11}.",
                "categories": "math.NA",
                "versions": [{"version": "v1", "created": "Tue, 4 Feb 2025 09:00:00 GMT"}],
            }) + "\n")
    return path


@pytest.mark.slow
def test_sigkill_during_index_update_is_detected_and_repaired(seed_home: Path, tmp_path: Path) -> None:
    home = copy_home(seed_home, tmp_path / "home")
    snapshot = _snapshot(tmp_path / "more.jsonl", 400)
    # Store the papers without touching the index: the index is now behind the store.
    env = {**os.environ, "PAPERWIRE_HOME": str(home), "HF_HUB_OFFLINE": "1", "PAPERWIRE_SKIP_INDEX": "1"}
    subprocess.run([sys.executable, "-m", "paperwire.cli", "ingest", str(snapshot), "--json"], env=env, check=True,
                   capture_output=True)
    behind = run_cli(home, "index", "verify", "--json")
    assert behind.returncode == 1 and json.loads(behind.stdout)["index_rev"] < json.loads(behind.stdout)["store_rev"]

    killed = 0
    for delay in (1.0, 2.0, 3.0, 5.0):
        proc = subprocess.Popen([sys.executable, "-m", "paperwire.cli", "--home", str(home), "index", "update"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        report = run_cli(home, "index", "verify", "--json")
        assert "Traceback" not in report.stderr
        state = json.loads(report.stdout)
        if report.returncode == 0:
            break
        assert state["problems"], state  # a stale index is always reported, never silently accepted
    assert killed >= 1, "the update finished before any kill; the test proved nothing"

    repaired = run_cli(home, "index", "update", "--json")
    assert repaired.returncode == 0, repaired.stderr
    final = run_cli(home, "index", "verify", "--json")
    assert final.returncode == 0, final.stdout
    assert json.loads(final.stdout)["indexed_papers"] == 807
    hits = json.loads(run_cli(home, "search", "spectral sparsity operator family 123", "--json").stdout)
    assert "2502.00123" in [h["id"] for h in hits]
