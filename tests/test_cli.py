"""The command line's rough edges, through the real `paperwire` process: what `show` prints, read-only
commands on a home that does not exist, `serve` on a busy port, ingest progress on a terminal only, and
what a small ingest into an indexed home loads."""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_json, copy_home, run_cli

FIXTURES = Path(__file__).parent / "fixtures"
SNAPSHOT = FIXTURES / "arxiv_snapshot.jsonl"


def test_show_leaves_out_what_is_unknown_and_decodes_latex(home: Path, tmp_path: Path) -> None:
    # a capture without its day line: the paper is on no day's feed
    capture = tmp_path / "page.txt"
    capture.write_text("new\nSubscribe\n\nLearning Without a Day Line\n\n" + "An abstract long enough. " * 8 + "\n")
    bib = tmp_path / "refs.bib"
    bib.write_text('@misc{k, title = {A Na\\"ive {\\em Bayes} Baseline}, author = {M{\\"u}ller, Jo},\n'
                   '  abstract = {We revisit na\\"{\\i}ve classifiers.}, eprint = {2401.04321}}\n')
    snapshot = tmp_path / "arxiv.jsonl"  # arXiv metadata writes accents in TeX too
    record = {"id": "2401.05555", "title": 'On Na\\"ive Sets', "authors": 'J. M\\"uller and P. Erd\\H{o}s',
              "abstract": 'Sets, na\\"{\\i}vely.', "categories": "math.LO"}
    snapshot.write_text(json.dumps(record) + "\n")
    run_cli(home, "ingest", str(capture), str(bib), str(snapshot), check=True)
    captured = cli_json(home, "search", "Learning Without a Day Line", "--mode", "lexical")[0]  # type: ignore[index]
    shown = run_cli(home, "show", captured["id"], check=True).stdout
    assert "None" not in shown and "not listed on a day" in shown
    assert shown.splitlines()[0] == "Learning Without a Day Line"
    bibtex = run_cli(home, "show", "2401.04321", check=True).stdout
    assert bibtex.splitlines()[:2] == ["A Naïve Bayes Baseline", "Jo Müller"]
    assert "We revisit naïve classifiers." in bibtex and "\\" not in bibtex and "None" not in bibtex
    arxiv = run_cli(home, "show", "2401.05555", check=True).stdout
    assert arxiv.splitlines()[:2] == ["On Naïve Sets", "J. Müller, P. Erdős"] and "Sets, naïvely." in arxiv


READ_ONLY = [
    ["stats"], ["stats", "--json"], ["show", "2401.00001"], ["export"], ["search", "attention"],
    ["similar", "2401.00001"], ["index", "verify"], ["index", "update"], ["library", "list", "someone"],
    ["recommend", "--user", "someone"],
]


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_read_only_commands_on_a_missing_home_create_nothing(args: list[str], tmp_path: Path) -> None:
    home = tmp_path / "no-such-home"
    proc = run_cli(home, *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.strip()]  # one line
    assert str(home) in proc.stderr and "does not exist" in proc.stderr and proc.stdout == ""
    assert not home.exists()


def test_a_home_without_a_database_gets_none(tmp_path: Path) -> None:
    home = tmp_path / "empty"
    home.mkdir()
    proc = run_cli(home, "stats")
    assert proc.returncode == 2 and "has no paperwire database" in proc.stderr
    assert list(home.iterdir()) == []


def test_serve_on_a_busy_port_is_one_line_and_no_serving_claim(home: Path) -> None:
    run_cli(home, "ingest", str(SNAPSHOT), check=True)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_cli(home, "serve", "--port", str(port), timeout=120)
        workers = run_cli(home, "serve", "--port", str(port), "--workers", "2", timeout=120)
    for result in (proc, workers):
        assert result.returncode == 1
        assert result.stderr == f"paperwire: port {port} on 127.0.0.1 is in use\n"
        assert "serving" not in result.stdout


def run_on_terminal(home: Path, *args: str, timeout: float = 300) -> tuple[int, str]:
    """Run `paperwire --home HOME ARGS…` with stdout and stderr on a pseudo-terminal; (status, output)."""
    leader, follower = pty.openpty()
    env = {**os.environ, "PAPERWIRE_HOME": str(home), "HF_HUB_OFFLINE": "1", "TERM": "xterm-256color",
           "COLUMNS": "200"}
    env.pop("TQDM_DISABLE", None)
    proc = subprocess.Popen([sys.executable, "-m", "paperwire.cli", "--home", str(home), *args],
                            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], timeout)
        if not ready:
            proc.kill()
            raise AssertionError(f"paperwire {' '.join(args)} printed nothing for {timeout} s")
        try:
            data = os.read(leader, 65536)
        except OSError:  # the other end closed: the process has exited
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=timeout), b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture
def many_records(tmp_path: Path) -> Path:
    """A snapshot file large enough that an ingest takes a moment (and shows a rate)."""
    template = json.loads(SNAPSHOT.read_text().splitlines()[0])
    path = tmp_path / "many.jsonl"
    with open(path, "w") as fh:
        for n in range(30_000):
            fh.write(json.dumps({**template, "id": f"0801.{n:05d}", "title": f"Paper number {n}"}) + "\n")
    return path


def test_ingest_shows_progress_on_a_terminal_only(home: Path, tmp_path: Path, many_records: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERWIRE_SKIP_INDEX", "1")
    status, output = run_on_terminal(home, "ingest", str(many_records))
    assert status == 0, output
    assert "30,000 records" in output and "/s)" in output and "ingest" in output
    assert "30000 added, 0 updated" in output
    # quiet with --json, and when stdout is not a terminal
    status, output = run_on_terminal(tmp_path / "other", "ingest", str(many_records), "--json")
    assert status == 0 and "records" not in output and json.loads(output)["added"] == 30_000
    piped = run_cli(tmp_path / "third", "ingest", str(many_records))
    assert piped.returncode == 0 and "records" not in piped.stdout + piped.stderr


def test_a_few_papers_into_an_indexed_home_never_load_torch(seed_home: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    home = copy_home(seed_home, tmp_path / "home")
    papers = tmp_path / "five.jsonl"
    template = json.loads(SNAPSHOT.read_text().splitlines()[0])
    papers.write_text("".join(json.dumps({**template, "id": f"2402.0000{n}", "title": f"Sparse graph attention {n}",
                                          "abstract": f"We study sparse attention over graphs, variant {n}."}) + "\n"
                              for n in range(5)))
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")  # every import of the process and its children, on stderr
    proc = run_cli(home, "ingest", str(papers), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["added"] == 5
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "paperwire.index.onnx_minilm" in imported  # the papers were embedded, through the graph
    assert "torch" not in imported and "sentence_transformers" not in imported
    monkeypatch.delenv("PYTHONPROFILEIMPORTTIME")
    report = cli_json(home, "index", "verify")
    assert report["ok"] and report["coverage"]["vectors"] == report["store_papers"]  # type: ignore[index]


@pytest.mark.slow
def test_distilling_the_static_model_draws_no_progress_under_json(home: Path) -> None:
    run_cli(home, "ingest", str(SNAPSHOT), check=True)
    proc = run_cli(home, "index", "rebuild", "--embedder", "static", "--json", timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["embedder"].startswith("static:")
    assert "Encoding tokens" not in proc.stderr and "%|" not in proc.stderr, proc.stderr[-2000:]
