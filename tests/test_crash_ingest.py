"""kill -9 during a bulk ingest loses nothing committed and leaves no half batch behind."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cli_json

from paperwire.ingest import BATCH_SIZE
from paperwire.store import database_path

RECORDS = 200_000
BENCH = Path(__file__).resolve().parent.parent / "bench"


def load_snapshot_generator():
    spec = importlib.util.spec_from_file_location("paperwire_bench_snapshot", BENCH / "snapshot.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # worker processes find the chunk function by module name
    spec.loader.exec_module(module)
    return module


def committed_papers(db: Path) -> int:
    """COUNT(*) through a read-only connection, as an outside observer; 0 before the schema exists."""
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT COUNT(*) FROM papers").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:  # no papers table yet, or the writer holds a lock for a moment
        return 0


@pytest.mark.slow
def test_sigkill_mid_ingest_keeps_whole_batches_and_rerun_completes(tmp_path: Path, home: Path) -> None:
    snapshot = load_snapshot_generator()
    path = tmp_path / "snapshot.jsonl"
    snapshot.write_snapshot(path, RECORDS, seed=7)
    expected_ids = {snapshot.arxiv_id(i) for i in range(RECORDS)}
    assert len(expected_ids) == RECORDS

    db = database_path(home)
    env = {**os.environ, "PAPERWIRE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "paperwire.cli", "--home", str(home), "ingest", str(path),
                             "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while committed_papers(db) == 0:
            assert proc.poll() is None, f"ingest ended before it was killed: {proc.communicate()}"
            assert time.monotonic() < deadline, "no batch committed within 300 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()
    papers = cli_json(home, "stats")["papers"]
    print(f"killed after {papers} of {RECORDS} records were committed")
    assert 0 < papers < RECORDS
    assert papers % BATCH_SIZE == 0, f"{papers} is not a whole number of {BATCH_SIZE}-record batches"

    rerun = subprocess.run([sys.executable, "-m", "paperwire.cli", "--home", str(home), "ingest", str(path),
                            "--json"], env=env, capture_output=True, text=True, timeout=1200)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["rejected"] == 0 and summary["errors"] == []
    assert summary["unchanged"] == papers, "everything committed before the kill is there, unchanged"
    assert summary["added"] + summary["unchanged"] == RECORDS and summary["updated"] == 0

    assert cli_json(home, "stats")["papers"] == RECORDS
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        ids = [row[0] for row in conn.execute("SELECT id FROM papers")]
        revs = conn.execute("SELECT COUNT(DISTINCT rev), MIN(rev), MAX(rev) FROM papers").fetchone()
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    assert len(ids) == len(set(ids)) == RECORDS
    assert set(ids) == expected_ids
    assert revs == (RECORDS, 1, RECORDS), "revs stay dense and unique across the crash"
