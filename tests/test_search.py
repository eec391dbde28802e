"""The search engine end to end on the sample corpus: modes, similar papers, the CLI contract."""

from __future__ import annotations

import calendar
import json
from pathlib import Path

import pytest
from conftest import copy_home, run_cli

from paperwire.index import QueryError, open_index
from paperwire.store import PaperNotFound, open_store


@pytest.fixture(scope="module")
def index(seed_home: Path):
    store = open_store(seed_home)
    yield open_index(seed_home, store)
    store.close()


def _title_id(index, fragment: str) -> str:
    for _, paper in index.store.iter_papers():
        if fragment.lower() in paper.title.lower():
            return paper.id
    raise AssertionError(fragment)


@pytest.mark.parametrize("mode", ["hybrid", "lexical", "semantic"])
def test_every_mode_finds_a_described_paper(index, mode: str) -> None:
    target = _title_id(index, "Neural Collapse in Deep Linear Networks")
    hits = index.search("last-layer features collapse to class means in deep linear networks with imbalanced data",
                        mode=mode, limit=10)
    assert target in [h.id for h in hits]
    assert all(h.title and h.snippet for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_natural_language_description_ranks_target_first_in_hybrid(index) -> None:
    target = _title_id(index, "Parallel Learning by Multitasking Neural Networks")
    hits = index.search("Hebbian associative network that learns several patterns at once, Hopfield variant",
                        limit=5)
    assert hits[0].id == target


def test_exclusion_and_title_field(index) -> None:
    hits = index.search("ti:grok", mode="lexical", limit=20)
    assert hits and all("grok" in h.title.lower() for h in hits)
    excluded = index.search("grokking -memorization", mode="hybrid", limit=50)
    assert all("memorization" not in (h.paper.title + " " + h.paper.abstract).lower() for h in excluded)


def test_paging_is_consistent(index) -> None:
    first = index.search("neural network", limit=10)
    second = index.search("neural network", limit=10, offset=10)
    assert len(first) == 10 and len(second) == 10
    assert not {h.id for h in first} & {h.id for h in second}


def test_hybrid_ranks_the_same_with_its_retrievers_side_by_side_or_in_turn(index, monkeypatch) -> None:
    import os
    import signal

    queries = ["grokking weight decay", "sparse attention for long documents", "diffusion model protein",
               "ti:grok", "neural network -transformer", "2502.00001"]
    def run(q: str, **options) -> list[tuple[str, float, str]]:
        return [(h.id, h.score, h.snippet) for h in index.search(q, limit=20, **options)]

    together = {q: run(q) for q in queries}
    bare = {q: run(q, snippets=False) for q in queries}
    paged = {q: run(q, offset=5) for q in queries}
    monkeypatch.setattr(index, "parallel", False)
    for q in queries:
        assert run(q) == together[q], q
        assert run(q, snippets=False) == bare[q], q
        assert run(q, offset=5) == paged[q], q
    monkeypatch.setattr(index, "parallel", True)
    read, write = os.pipe()
    child = os.fork()  # the side threads of the parent do not exist in a child: it makes its own
    if child == 0:
        signal.alarm(60)  # a hang here would end the child, and the parent reads nothing
        ok = run(queries[0]) == together[queries[0]]
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(child, 0)


@pytest.mark.parametrize("bad", ["", "   ", "x" * 10_000, "foo:bar baz"])
def test_bad_queries_raise_query_error(index, bad: str) -> None:
    with pytest.raises(QueryError):
        index.search(bad)


@pytest.mark.parametrize("bad", ["bad", "\x00", "2024-1-1", "2024-13-45", "0000-00-00", "9999-99-99", "\udcff"])
@pytest.mark.parametrize("option", ["date_from", "date_to"])
def test_bad_date_options_raise_query_error(index, bad: str, option: str) -> None:
    for mode in ("hybrid", "lexical", "semantic"):
        with pytest.raises(QueryError, match="bad date"):
            index.search("diffusion", mode=mode, **{option: bad})


def test_date_options_read_partial_days_as_the_query_syntax_does(index) -> None:
    def ids(**options) -> list[str]:
        return [h.id for h in index.search("diffusion", limit=50, mode="lexical", **options)]

    days = sorted({day[:10] for h in index.search("diffusion", limit=50, mode="lexical")
                   if (day := h.paper.published or h.paper.listed_on)})
    month = days[-1][:7]
    last = calendar.monthrange(int(month[:4]), int(month[5:]))[1]
    assert ids(date_from=month, date_to=month) == ids(date_from=f"{month}-01", date_to=f"{month}-{last}") \
        == [h.id for h in index.search(f"diffusion date:{month}", limit=50, mode="lexical")]
    assert ids(date_from=month, date_to=month)
    assert ids(date_from=" 2024 ") == ids(date_from="2024-01-01")


@pytest.mark.parametrize("odd", ['"unbalanced quote', "'; DROP TABLE papers; --", "the of and", "NEAR/3 (a OR b)*",
                                 "\udcff invalid"])
def test_odd_queries_never_crash(index, odd: str) -> None:
    hits = index.search(odd)
    assert isinstance(hits, list)
    assert index.store.count_papers() == 407


def test_similar_never_returns_the_paper_itself(index) -> None:
    target = _title_id(index, "Neural Collapse in Deep Linear Networks")
    hits = index.similar(target, limit=10)
    assert len(hits) == 10
    assert target not in [h.id for h in hits]
    # its neighbours are about the same phenomenon
    assert any("collapse" in (h.title + h.paper.abstract).lower() for h in hits[:3])


def test_similar_unknown_id(index) -> None:
    with pytest.raises(PaperNotFound):
        index.similar("pw-000000000000")


def test_cli_search_and_similar_contract(seed_home: Path, tmp_path: Path) -> None:
    home = copy_home(seed_home, tmp_path / "home")
    proc = run_cli(home, "search", "grokking and memorization with corrupted labels", "--limit", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert len(hits) == 3 and {"id", "title", "score", "snippet"} <= set(hits[0])
    proc = run_cli(home, "similar", hits[0]["id"], "--limit", "4", "--json")
    assert proc.returncode == 0, proc.stderr
    similar = json.loads(proc.stdout)
    assert len(similar) == 4 and hits[0]["id"] not in [h["id"] for h in similar]
    bad = run_cli(home, "search", "foo:bar")
    assert bad.returncode == 2 and "unknown field" in bad.stderr and "Traceback" not in bad.stderr
    missing = run_cli(home, "similar", "2401.99999")
    assert missing.returncode == 1 and "no paper" in missing.stderr
    for option, value in (("--from", "bad"), ("--until", "2024-13-45"), ("--from", "20240101x")):
        proc = run_cli(home, "search", "diffusion", option, value, "--json")
        assert proc.returncode == 2 and "bad date" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    # A query that starts with a minus (an exclusion) is the query, not an unknown option.
    proc = run_cli(home, "search", '-"neural network" grokking', "--limit", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)


def test_ingest_makes_new_papers_searchable_without_rebuild(seed_home: Path, tmp_path: Path) -> None:
    home = copy_home(seed_home, tmp_path / "home")
    manifest = json.loads((home / "index" / "manifest.json").read_text())
    snapshot = tmp_path / "new.jsonl"
    snapshot.write_text(json.dumps({
        "id": "2501.00001", "title": "Tessellated origami lattices for deployable antennas",
        "abstract": "We fold tessellated origami lattices into compact deployable antennas for small satellites.",
        "categories": "physics.app-ph", "versions": [{"version": "v1", "created": "Mon, 6 Jan 2025 10:00:00 GMT"}],
    }) + "\n")
    proc = run_cli(home, "ingest", str(snapshot), "--json")
    assert json.loads(proc.stdout)["added"] == 1
    after = json.loads((home / "index" / "manifest.json").read_text())
    assert after["rev"] > manifest["rev"] and after["papers"] == 408
    hits = json.loads(run_cli(home, "search", "folding paper patterns into satellite antennas", "--json").stdout)
    assert hits[0]["id"] == "2501.00001"
    assert run_cli(home, "search", "2501.00001", "--json", "--limit", "1").stdout.count("2501.00001") >= 1
    assert run_cli(home, "index", "verify").returncode == 0
