"""Format auto-detection: from the name when it fits the content, else from the first 4 kB alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paperwire.sources import FORMATS, SourceError, detect_format, read_source
from paperwire.sources.base import Rejected

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = {
    "arxiv-atom": FIXTURES / "arxiv_query.atom",
    "arxiv-snapshot": FIXTURES / "arxiv_snapshot.jsonl",
    "hf-daily": FIXTURES / "hf_daily_papers.json",
    "bibtex": FIXTURES / "library.bib",
    "csl-json": FIXTURES / "library.csl.json",
}


def head_of(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(4096)


def test_every_registered_format_is_covered(seeds: list[Path]) -> None:
    assert set(SAMPLES) | {"hf-page"} <= set(FORMATS)


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_detected_from_name_and_content(fmt: str) -> None:
    assert detect_format(SAMPLES[fmt], head_of(SAMPLES[fmt])) == fmt


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
@pytest.mark.parametrize("suffix", ["", ".txt", ".json", ".xml", ".data"])
def test_detected_from_content_whatever_the_name(fmt: str, suffix: str) -> None:
    assert detect_format(Path("upload" + suffix), head_of(SAMPLES[fmt])) == fmt


def test_seed_pages_detected(seeds: list[Path]) -> None:
    for seed in seeds:
        assert detect_format(seed, head_of(seed)) == "hf-page"
        assert detect_format(Path("page.json"), head_of(seed)) == "hf-page"


def test_json_shapes_told_apart() -> None:
    daily = json.loads(SAMPLES["hf-daily"].read_text())
    single_paper = (FIXTURES / "hf_paper_info.json").read_bytes()
    csl_one_item = json.dumps(json.loads(SAMPLES["csl-json"].read_text())[0]).encode()
    snapshot_line = SAMPLES["arxiv-snapshot"].read_bytes().splitlines()[0]
    daily_lines = "\n".join(json.dumps(r) for r in daily).encode()
    cases = {single_paper: "hf-daily", daily_lines: "hf-daily", csl_one_item: "csl-json",
             snapshot_line: "arxiv-snapshot"}
    for head, fmt in cases.items():
        assert detect_format(Path("x.json"), head[:4096]) == fmt


def test_daily_papers_with_long_author_lists_still_detected() -> None:
    record = json.loads(SAMPLES["hf-daily"].read_text())[0]
    record["paper"]["authors"] = record["paper"]["authors"] * 40  # summary and title beyond 4 kB
    head = json.dumps([record]).encode()[:4096]
    assert b'"summary"' not in head
    assert detect_format(Path("daily.json"), head) == "hf-daily"


def test_undetectable_content_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot tell the format"):
        detect_format(Path("notes.json"), b'{"hello": "world"}')
    odd = tmp_path / "notes.dat"
    odd.write_text("just some text\nnothing to see\n")
    assert list(read_source(odd)) == [Rejected(str(odd), "file", "cannot tell the format; pass --format "
                                                                  f"({', '.join(FORMATS)})")]


def test_snapshot_lines_the_fast_json_parser_refuses_still_parse_or_are_rejected_clearly() -> None:
    from paperwire.sources import arxiv_snapshot

    good = {"id": "2401.00001", "title": "A title", "abstract": "An abstract.",
            "versions": [{"version": "v1", "created": "Mon, 1 Jan 2024 10:00:00 GMT"}]}
    lines = [
        (1, json.dumps({**good, "score": float("nan")})),  # NaN: accepted by the standard parser
        (2, json.dumps({**good, "id": "2401.00002", "size": 2**70})),  # an integer beyond 64 bits
        (3, json.dumps({**good, "id": "2401.00003", "title": "bad \ud800 text"})),  # lone surrogate escape
        (4, '{"id": "2401.00004", "title": '),
        # a superscript digit is a digit to str.isdigit but not to int(): the version label is ignored
        (5, json.dumps({**good, "id": "2401.00005", "versions": [{"version": "v\u00b2", "created": "x"}]})),
    ]
    items = list(arxiv_snapshot.parse_lines(lines, "s.jsonl"))
    assert [getattr(i, "id", None) for i in items[:2]] == ["2401.00001", "2401.00002"]
    assert items[4].id == "2401.00005" and items[4].version is None
    assert isinstance(items[2], Rejected) and "not valid Unicode" in items[2].reason
    assert isinstance(items[3], Rejected) and items[3].location == "line 4" and "invalid JSON" in items[3].reason
