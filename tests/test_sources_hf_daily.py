"""Hugging Face daily-papers JSON: fields as huggingface_hub's PaperInfo reads them, streaming, errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

from huggingface_hub.hf_api import PaperInfo

from paperwire.model import Paper
from paperwire.sources import Rejected, hf_daily, json_stream

FIXTURES = Path(__file__).parent / "fixtures"
DAILY = (FIXTURES / "hf_daily_papers.json").read_bytes()


def parse(data: bytes, name: str = "daily.json") -> list[Paper | Rejected]:
    return list(hf_daily.parse(io.BytesIO(data), name))


def test_every_field_is_mapped() -> None:
    papers = parse(DAILY)
    assert [p.id for p in papers] == ["2503.07536", "2503.05236", "2502.18934"]
    first = papers[0]
    assert first.title.startswith("LMM-R1: Empowering 3B LMMs")
    assert first.abstract.endswith("improving the baseline by 4.83% and 4.5% on average.")  # \% cleaned
    assert "4.83\\%" in first.raw_abstract
    assert first.authors == ["Yingzhe Peng", "Gongrui Zhang", "Miaosen Zhang"]
    assert first.published == "2025-03-10"  # the paper's arXiv date
    assert first.listed_on == "2025-03-11"  # the day of submittedOnDailyAt
    assert (first.upvotes, first.num_comments, first.submitted_by) == (58, 3, "akhaliq")
    assert first.links == ["https://github.com/TideDra/lmm-r1", "https://forjadeforest.github.io/LMM-R1-ProjectPage"]
    assert first.source == "hf-daily"
    second, third = papers[1], papers[2]
    assert second.authors == ["Zoë Müller", "Tomás Ñúñez"] and second.submitted_by == "zmuller"
    assert second.links == ["https://github.com/CodeGoat24/UnifiedReward"]  # found in the summary
    assert (third.version, third.listed_on, third.upvotes) == (2, "2025-03-10", 0)


def test_agrees_with_huggingface_hub_paperinfo() -> None:
    for record, paper in zip(json.loads(DAILY), parse(DAILY), strict=True):
        info = PaperInfo(**json.loads(json.dumps(record)))
        assert paper.arxiv_id == info.id.split("v")[0]
        assert paper.raw_title == info.title
        assert paper.raw_abstract == info.summary
        assert paper.authors == [a.name for a in info.authors]
        assert paper.num_comments == info.comments
        assert paper.upvotes == (info.upvotes or 0)
        assert paper.listed_on == info.submitted_at.date().isoformat()
        assert paper.published == info.published_at.date().isoformat()


def test_single_paper_info_shape() -> None:
    (paper,) = parse((FIXTURES / "hf_paper_info.json").read_bytes())
    assert (paper.id, paper.upvotes, paper.published, paper.listed_on) == ("2503.07536", 61, "2025-03-10", "2025-03-11")
    assert paper.authors[0] == "Yingzhe Peng" and paper.submitted_by == "akhaliq"
    assert paper.links == ["https://github.com/TideDra/lmm-r1"]


def test_json_lines_of_records_are_read_too() -> None:
    lines = b"\n".join(json.dumps(r).encode() for r in json.loads(DAILY))
    assert [p.id for p in parse(lines)] == ["2503.07536", "2503.05236", "2502.18934"]


def test_bad_record_is_rejected_and_the_rest_kept() -> None:
    records = json.loads(DAILY)
    records.insert(1, {"paper": {"id": "not-an-id", "title": "x", "summary": "y"}})
    records.insert(2, 42)
    records.insert(3, {"paper": {"id": "2503.00001", "title": "No summary here"}, "title": "No summary here"})
    items = parse(json.dumps(records).encode(), "d.json")
    assert [p.id for p in items if isinstance(p, Paper)] == ["2503.07536", "2503.05236", "2502.18934"]
    errors = [str(i) for i in items if isinstance(i, Rejected)]
    assert errors[0].startswith("d.json: record 2 (not-an-id): not an arXiv id")
    assert errors[1] == "d.json: record 3: record is not a JSON object"
    assert errors[2] == "d.json: record 4 (2503.00001): title 'No summary here' has no abstract"


def test_truncated_json_keeps_whole_records_and_names_line_and_column() -> None:
    pretty = json.dumps(json.loads(DAILY), indent=1).encode()
    cut = pretty[: pretty.index(b'"2502.18934v2"')]
    items = parse(cut, "cut.json")
    assert [p.id for p in items if isinstance(p, Paper)] == ["2503.07536", "2503.05236"]
    error = items[-1]
    assert isinstance(error, Rejected) and error.location.startswith("line ")
    assert "column" in error.location and "truncated" in error.reason


def test_invalid_json_names_line_and_column() -> None:
    items = parse(b'[\n  {"paper": {"id": "2503.07536"}},\n  {"paper": oops}\n]', "x.json")
    reason = "invalid JSON (Expecting value); later records not read"
    assert items[-1] == Rejected("x.json", "line 3, column 13", reason)


def test_invalid_utf8_spoils_only_its_record() -> None:
    bad = DAILY.replace("Tomás".encode(), b"Tom\xe1s")
    items = parse(bad, "u.json")
    assert [p.id for p in items if isinstance(p, Paper)] == ["2503.07536", "2502.18934"]
    assert Rejected("u.json", "record 2", "invalid UTF-8 in the record") in items


def test_oversized_record_is_skipped_without_losing_the_next() -> None:
    records = json.loads(DAILY)
    records[1]["paper"]["summary"] = "x" * (json_stream.MAX_RECORD_BYTES + 10)
    items = parse(json.dumps(records).encode(), "big.json")
    assert [p.id for p in items if isinstance(p, Paper)] == ["2503.07536", "2502.18934"]
    (error,) = [i for i in items if isinstance(i, Rejected)]
    assert error.location == "record 2" and "exceeds" in error.reason


def test_records_are_streamed_across_many_read_chunks() -> None:
    record = json.loads(DAILY)[0]
    many = []
    for n in range(1, 1201):
        copy = json.loads(json.dumps(record))
        copy["paper"]["id"] = f"2503.{n:05d}"
        many.append(copy)
    data = json.dumps(many).encode()
    assert len(data) > 20 * json_stream.CHUNK_CHARS
    ids = [p.id for p in parse(data)]
    assert ids == [f"2503.{n:05d}" for n in range(1, 1201)]


def test_non_positive_counters_and_odd_types_do_not_crash() -> None:
    record = json.loads(DAILY)[0]
    record["numComments"] = "many"
    record["paper"]["upvotes"] = -5
    record["submittedBy"] = ["not", "a", "dict"]
    record["paper"]["authors"] = [{"name": "A"}, "B", {"name": 3}, None]
    (paper,) = parse(json.dumps([record]).encode())
    assert (paper.num_comments, paper.upvotes, paper.authors) == (0, 0, ["A", "B"])
    assert paper.submitted_by == "akhaliq"  # falls back to the paper's submittedOnDailyBy


def test_thumbnail_is_the_first_image_of_media_urls_else_the_entry_thumbnail() -> None:
    first, second, _ = parse(DAILY)
    assert first.thumbnail == ("https://cdn-uploads.huggingface.co/production/uploads/6433a1b2c3d4e5f60718293a/"
                               "overview.png")
    assert second.thumbnail == "https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2503.05236.png"
    (info,) = parse((FIXTURES / "hf_paper_info.json").read_bytes())
    assert info.thumbnail == first.thumbnail  # a bare /api/papers/{id} object carries mediaUrls at the top


def test_thumbnail_skips_videos_and_what_is_not_a_web_url() -> None:
    record = json.loads(DAILY)[0]
    record["paper"]["mediaUrls"] = ["https://cdn.example.org/demo.mp4", "javascript:alert(1)//x.png",
                                    "data:image/png;base64,AAAA.png", "//cdn.example.org/no-scheme.png", 42,
                                    "https://cdn.example.org/has space.png", "HTTPS://cdn.example.org/Fig.JPG?v=2"]
    (paper,) = parse(json.dumps([record]).encode())
    assert paper.thumbnail == "HTTPS://cdn.example.org/Fig.JPG?v=2"
    record["paper"]["mediaUrls"] = ["https://cdn.example.org/demo.mp4"]
    record["thumbnail"] = "javascript:alert(1)"
    (paper,) = parse(json.dumps([record]).encode())
    assert paper.thumbnail is None
    del record["paper"]["mediaUrls"], record["thumbnail"]
    (paper,) = parse(json.dumps([record]).encode())
    assert paper.thumbnail is None
