"""Bad input through `paperwire ingest`: one error line naming the file, the line or record and the
reason; the good records still land (none with --strict); non-zero exit. And idempotence per format."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import cli_json, run_cli

from paperwire.store import open_store

FIXTURES = Path(__file__).parent / "fixtures"
SNAPSHOT = (FIXTURES / "arxiv_snapshot.jsonl").read_bytes()  # two good records
ATOM = (FIXTURES / "arxiv_query.atom").read_bytes()
DAILY = (FIXTURES / "hf_daily_papers.json").read_bytes()


def good_file(tmp_path: Path) -> Path:
    path = tmp_path / "good.jsonl"
    path.write_bytes(SNAPSHOT)
    return path


def stored(home: Path) -> int:
    if not (home.exists() and any(home.iterdir())):
        return 0
    store = open_store(home, readonly=True)
    try:
        return store.count_papers()
    finally:
        store.close()


def _missing(tmp: Path) -> Path:
    return tmp / "absent.jsonl"


def _directory(tmp: Path) -> Path:
    (tmp / "a-dir.jsonl").mkdir()
    return tmp / "a-dir.jsonl"


def _truncated_json_line(tmp: Path) -> Path:
    lines = SNAPSHOT.splitlines()
    path = tmp / "cut.jsonl"
    path.write_bytes(lines[0] + b"\n" + lines[1][: len(lines[1]) // 2] + b"\n")
    return path


def _malformed_xml(tmp: Path) -> Path:
    path = tmp / "broken.atom"
    path.write_bytes(ATOM.replace(b"<title>The Large N Limit", b"<title>The Large N & Limit"))
    return path


def _title_without_abstract(tmp: Path) -> Path:
    records = json.loads(DAILY)
    del records[1]["paper"]["summary"]
    path = tmp / "daily.json"
    path.write_text(json.dumps(records))
    return path


def _ten_mb_line(tmp: Path) -> Path:
    lines = SNAPSHOT.splitlines()
    huge = json.dumps({"id": "2401.00001", "title": "Huge", "abstract": "x" * (10 * 1024 * 1024)}).encode()
    path = tmp / "huge.jsonl"
    path.write_bytes(b"\n".join([lines[0], huge, lines[1]]) + b"\n")
    return path


def _invalid_utf8(tmp: Path) -> Path:
    lines = SNAPSHOT.splitlines()
    path = tmp / "latin1.jsonl"
    path.write_bytes(b"\n".join([lines[0], lines[1].replace(b"Attention", b"Atten\xe7ion")]) + b"\n")
    return path


def _undetectable(tmp: Path) -> Path:
    path = tmp / "notes.dat"
    path.write_text("Meeting notes\n\nnothing that looks like papers\n")
    return path


def _malformed_bibtex(tmp: Path) -> Path:
    path = tmp / "lib.bib"
    path.write_bytes((FIXTURES / "library.bib").read_bytes().replace(
        b"{Deep Residual Learning for Image Recognition},", b"{Deep Residual Learning for Image Recognition,"))
    return path


def _invalid_json_array(tmp: Path) -> Path:
    path = tmp / "bad-array.json"
    path.write_bytes(DAILY.replace(b',{"paper":{"id":"2503.05236"', b',{"paper":{"id":2503.05236"', 1))
    return path


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _deep_json_array(tmp: Path) -> Path:
    # about 2.4 kB: an element of a daily-papers array nested 1,200 levels deep, between two good ones
    records = json.loads(DAILY)
    path = tmp / "deep.json"
    path.write_text("[" + ",".join([json.dumps(records[0]), _nested(1200), json.dumps(records[1])]) + "]")
    return path


def _deep_json_line(tmp: Path) -> Path:
    lines = SNAPSHOT.splitlines()
    deep = '{"id": "2401.00001", "title": ' + _nested(100_000) + ', "abstract": "x"}'
    path = tmp / "deep.jsonl"
    path.write_bytes(b"\n".join([lines[0], deep.encode(), lines[1]]) + b"\n")
    return path


def _gzip_bomb(tmp: Path) -> Path:
    # one good record, then 80 MB of newlines that compress about 1,000 times
    path = tmp / "bomb.jsonl.gz"
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as fh:
        fh.write(packer.compress(SNAPSHOT.splitlines()[0].replace(b"0704.0001", b"0704.0011") + b"\n"))
        for _ in range(80):
            fh.write(packer.compress(b"\n" * (1 << 20)))
        fh.write(packer.flush())
    return path


# (make the bad file, the location its error names, words of the reason, papers added in all: the good
# file's two plus the new good records of the bad file)
CASES: dict[str, tuple[Callable[[Path], Path], str, str, int]] = {
    "missing file": (_missing, "file", "no such file", 2),
    "directory": (_directory, "file", "is a directory", 2),
    "truncated JSON line": (_truncated_json_line, "line 2", "invalid JSON", 2),
    "malformed XML": (_malformed_xml, "line 61", "malformed XML", 2),
    "title with no abstract": (_title_without_abstract, "record 2 (2503.05236)", "has no abstract", 4),
    "10 MB line": (_ten_mb_line, "line 2", "exceeds the 2,097,152-byte limit", 2),
    "invalid UTF-8": (_invalid_utf8, "line 2", "invalid UTF-8", 2),
    "undetectable format": (_undetectable, "file", "cannot tell the format", 2),
    "malformed BibTeX": (_malformed_bibtex, "line 32", "malformed BibTeX entry", 3),
    "invalid JSON array": (_invalid_json_array, "line 1, column ", "invalid JSON", 3),
    "JSON nested 1,200 levels": (_deep_json_array, "record 2", "JSON nested too deeply", 4),
    "JSON line nested 100,000 levels": (_deep_json_line, "line 2", "JSON nested too deeply", 2),
    "gzip bomb": (_gzip_bomb, "file", "refused as a likely gzip bomb", 3),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_error_line_and_the_rest_lands(case: str, home: Path, tmp_path: Path) -> None:
    make, location, reason, added = CASES[case]
    bad = make(tmp_path)
    proc = run_cli(home, "ingest", str(good_file(tmp_path)), str(bad), "--json")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = json.loads(proc.stdout)
    errors = [e for e in summary["errors"] if e.startswith(f"{bad}: {location}") and reason in e]
    assert len(errors) == 1, summary["errors"]
    assert "\n" not in errors[0]
    assert summary["added"] == added
    assert stored(home) == added



def test_without_json_each_error_is_one_line_on_stderr(home: Path, tmp_path: Path) -> None:
    bad = {case: make(tmp_path) for case, (make, *_) in CASES.items()}
    proc = run_cli(home, "ingest", str(good_file(tmp_path)), *map(str, bad.values()))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    for case, path in bad.items():
        _, location, reason, _ = CASES[case]
        assert len([line for line in lines if f"{path}: {location}" in line and reason in line]) == 1, case
    assert "rejected" in proc.stdout.splitlines()[-1]


def test_strict_lands_nothing_whatever_the_error(home: Path, tmp_path: Path) -> None:
    bad = [str(make(tmp_path)) for make, *_ in CASES.values()]
    proc = run_cli(home, "ingest", "--strict", str(good_file(tmp_path)), *bad, "--json")
    assert proc.returncode == 1
    summary = json.loads(proc.stdout)
    assert summary["rolled_back"] is True and summary["added"] == 0
    assert summary["rejected"] >= len(CASES)
    assert stored(home) == 0


def test_unknown_format_value(home: Path, tmp_path: Path) -> None:
    proc = run_cli(home, "ingest", "--format", "endnote", str(good_file(tmp_path)), "--json")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "Invalid value for '--format'" in proc.stderr and "'endnote'" in proc.stderr
    assert stored(home) == 0


def test_wrong_format_forced_on_a_file(home: Path, tmp_path: Path) -> None:
    atom = tmp_path / "feed.atom"
    atom.write_bytes(ATOM)
    daily = tmp_path / "daily.json"
    daily.write_bytes(DAILY)
    proc = run_cli(home, "ingest", "--format", "hf-daily", str(atom), str(daily), "--json")
    assert proc.returncode == 1
    summary = json.loads(proc.stdout)
    assert summary["added"] == 3
    assert summary["errors"] == [f"{atom}: line 1, column 1: invalid JSON (Expecting value); later records not read"]


def _drop_root_read_override() -> list[str] | None:
    """A command prefix that runs as root without the capability to read any file, if available."""
    setpriv = shutil.which("setpriv")
    if not setpriv:
        return None
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}"]


def test_unreadable_file(home: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.jsonl"
    secret.write_bytes(SNAPSHOT)
    secret.chmod(0)
    prefix: list[str] = []
    if os.geteuid() == 0:  # root reads anything; run the command without that power
        found = _drop_root_read_override()
        if found is None:
            pytest.skip("running as root and setpriv is not installed, so no file is unreadable")
        prefix = found
    env = {**os.environ, "PAPERWIRE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([*prefix, sys.executable, "-m", "paperwire.cli", "--home", str(home), "ingest",
                           str(secret), str(good_file(tmp_path)), "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["errors"] == [f"{secret}: file: permission denied"]
    assert summary["added"] == 2


@pytest.mark.parametrize(("fixture", "fmt", "papers"), [
    ("arxiv_query.atom", "arxiv-atom", 3),
    ("arxiv_snapshot.jsonl", "arxiv-snapshot", 2),
    ("hf_daily_papers.json", "hf-daily", 3),
    ("hf_paper_info.json", "hf-daily", 1),
    ("library.bib", "bibtex", 3),
    ("library.csl.json", "csl-json", 2),
])
def test_ingesting_twice_reports_unchanged(fixture: str, fmt: str, papers: int, home: Path) -> None:
    path = str(FIXTURES / fixture)
    first = cli_json(home, "ingest", path)
    assert (first["added"], first["updated"], first["unchanged"]) == (papers, 0, 0)
    second = cli_json(home, "ingest", "--format", fmt, path)
    assert (second["added"], second["updated"], second["unchanged"]) == (0, 0, papers)
    assert second["rejected"] == first["rejected"]
    assert stored(home) == papers


def test_one_seed_page_twice(home: Path, seeds: list[Path]) -> None:
    first = cli_json(home, "ingest", str(seeds[0]))
    second = cli_json(home, "ingest", str(seeds[0]))
    assert first["added"] > 0 and second["unchanged"] == first["added"] and second["added"] == 0
