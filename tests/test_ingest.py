"""The ingest pipeline and its CLI contract: counts, idempotence, batches, --strict; on SQLite and on
PostgreSQL (`store_home`: the CLI finds the database in the home's config)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import cli_json, run_cli

from paperwire.ingest import IngestSummary, ingest_items, ingest_paths
from paperwire.model import make_paper
from paperwire.sources import Rejected, read_source
from paperwire.store import open_store


def snapshot_line(number: int, version: int = 1, **changes: object) -> str:
    record = {
        "id": f"2402.{number:05d}", "submitter": "A. Author", "authors": "A. Author, B. Writer",
        "title": f"A study of thing {number}", "comments": None, "journal-ref": None, "doi": None,
        "categories": "cs.LG stat.ML", "license": None,
        "abstract": f"  We study thing {number} in depth.\nIt works, version {version}.\n",
        "versions": [{"version": f"v{v}", "created": f"Mon, {v} Feb 2024 10:00:00 GMT"} for v in range(1, version + 1)],
        "update_date": f"2024-02-0{version}", "authors_parsed": [["Author", "A.", ""], ["Writer", "B.", ""]],
    }
    record.update(changes)
    return json.dumps(record)


def write_snapshot(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_seed_pages_ingest_idempotently_through_the_cli(store_home: Path, seeds: list[Path]) -> None:
    first = cli_json(store_home, "ingest", *map(str, seeds))
    assert first == {"added": 407, "updated": 0, "unchanged": 0, "rejected": 0, "errors": []}
    second = cli_json(store_home, "ingest", *map(str, seeds))
    assert second == {"added": 0, "updated": 0, "unchanged": 407, "rejected": 0, "errors": []}
    stats = cli_json(store_home, "stats")
    assert stats["papers"] == 407
    store = open_store(store_home, readonly=True)
    days = dict(store.listing_days())
    assert days.keys() == {"2025-03-11", "2025-03-20", "2025-04-23"}
    # The capture without a day line: its papers found on no dated page are listed on no day (not today).
    dated: set[str] = set()
    undated: set[str] = set()
    for seed in seeds:
        for item in read_source(seed, "hf-page"):
            (undated if item.listed_on is None else dated).add(item.id)
    assert undated - dated and sum(days.values()) == 407 - len(undated - dated)
    assert all(store.get_paper(pid).listed_on is None for pid in undated - dated)
    assert store.integrity_check() == "ok"


def test_snapshot_ingest_and_a_newer_version(store_home: Path, tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "a.jsonl", [snapshot_line(i) for i in range(1, 6)])
    assert cli_json(store_home, "ingest", str(path))["added"] == 5
    revised = write_snapshot(tmp_path / "b.jsonl", [snapshot_line(2, 2, title="Thing 2, revised")]
                             + [snapshot_line(i) for i in (1, 3)])
    summary = cli_json(store_home, "ingest", str(revised))
    assert (summary["added"], summary["updated"], summary["unchanged"]) == (0, 1, 2)
    paper = cli_json(store_home, "show", "arXiv:2402.00002v1")
    assert (paper["title"], paper["version"], paper["published"], paper["listed_on"]) == \
        ("Thing 2, revised", 2, "2024-02-01", "2024-02-01")
    assert paper["abstract"] == "We study thing 2 in depth. It works, version 2."


def test_bad_lines_are_reported_and_the_rest_lands(store_home: Path, tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "mixed.jsonl", [snapshot_line(1), '{"id": "2402.00002", "title": "cut',
                                                     snapshot_line(3, abstract=""), snapshot_line(4)])
    proc = run_cli(store_home, "ingest", str(path), "--json")
    assert proc.returncode != 0
    summary = json.loads(proc.stdout)
    assert (summary["added"], summary["rejected"]) == (2, 2)
    assert summary["errors"][0].startswith(f"{path}: line 2: invalid JSON")
    assert summary["errors"][1].startswith(f"{path}: line 3: ") and "no abstract" in summary["errors"][1]
    assert cli_json(store_home, "stats")["papers"] == 2


def test_strict_rolls_back_everything(store_home: Path, tmp_path: Path) -> None:
    cli_json(store_home, "ingest", str(write_snapshot(tmp_path / "base.jsonl", [snapshot_line(100)])))
    lines = [snapshot_line(i) for i in range(1, 30)] + ["not json"] + [snapshot_line(100, 2)]
    path = write_snapshot(tmp_path / "bad.jsonl", lines)
    proc = run_cli(store_home, "ingest", "--strict", str(path), "--json")
    assert proc.returncode != 0
    summary = json.loads(proc.stdout)
    assert summary["rolled_back"] is True and summary["rejected"] == 1
    assert summary["added"] == summary["updated"] == 0
    store = open_store(store_home, readonly=True)
    assert store.paper_ids() == ["2402.00100"]
    assert store.get_paper("2402.00100").version == 1
    human = run_cli(store_home, "ingest", "--strict", str(path))
    assert "rolled back" in human.stdout and "line 30" in human.stderr
    clean = write_snapshot(tmp_path / "good.jsonl", lines[:29])
    assert cli_json(store_home, "ingest", "--strict", str(clean))["added"] == 29


def test_each_batch_commits_on_its_own(store_home: Path, tmp_path: Path) -> None:
    store = open_store(store_home)
    committed: list[int] = []

    def items():
        for i in range(1, 26):
            yield make_paper(title=f"T {i}", abstract="A", arxiv_id=f"2402.{i:05d}", source="t")
            if i == 25:
                raise KeyboardInterrupt  # the process dies part-way through the fifth batch

    def on_batch(summary: IngestSummary) -> None:
        committed.append(open_store(store_home, readonly=True).count_papers())  # another connection sees it

    try:
        ingest_items(store, items(), batch_size=6, on_batch=on_batch)
    except KeyboardInterrupt:
        pass
    assert committed == [6, 12, 18, 24]
    assert store.count_papers() == 24


def test_a_paper_is_counted_once_per_run(store_home: Path, tmp_path: Path) -> None:
    first = write_snapshot(tmp_path / "one.jsonl", [snapshot_line(i) for i in range(1, 4)])
    second = write_snapshot(tmp_path / "two.jsonl", [snapshot_line(2, 2), snapshot_line(4)])
    store = open_store(store_home)
    summary = ingest_paths(store, [first, second], batch_size=2)
    assert (summary.added, summary.updated, summary.unchanged) == (4, 0, 0)
    assert store.get_paper("2402.00002").version == 2
    again = ingest_paths(store, [first, second], batch_size=2)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 4)


def test_rejections_reported_with_a_cap(store_home: Path) -> None:
    store = open_store(store_home)
    items = [Rejected("f", f"line {i}", "bad") for i in range(1, 1200)]
    summary = ingest_items(store, items)
    assert summary.rejected == 1199
    assert len(summary.errors) == 1001 and summary.errors[0] == "f: line 1: bad"


def test_missing_file_and_unknown_format_are_one_line_errors(store_home: Path, tmp_path: Path) -> None:
    odd = tmp_path / "notes.xyz"
    odd.write_text("just some words\n")
    proc = run_cli(store_home, "ingest", str(tmp_path / "absent.jsonl"), str(odd))
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert any("absent.jsonl" in line and "no such file" in line for line in lines)
    assert any("notes.xyz" in line and "format" in line for line in lines)
    assert "Traceback" not in proc.stderr
