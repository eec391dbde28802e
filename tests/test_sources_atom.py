"""arXiv API Atom responses: every documented field, API errors, broken XML, feedparser as a library."""

from __future__ import annotations

import io
from pathlib import Path

import feedparser

from paperwire.model import Paper
from paperwire.sources import Rejected, arxiv_atom, parse_stream

FIXTURES = Path(__file__).parent / "fixtures"
QUERY = (FIXTURES / "arxiv_query.atom").read_bytes()


def parse(data: bytes, name: str = "feed.atom") -> list[Paper | Rejected]:
    return list(arxiv_atom.parse(io.BytesIO(data), name))


def test_every_field_of_an_entry_is_mapped() -> None:
    papers = parse(QUERY)
    assert all(isinstance(p, Paper) for p in papers) and len(papers) == 3
    first = papers[0]
    assert (first.id, first.arxiv_id, first.version) == ("1706.03762", "1706.03762", 7)
    assert first.title == "Attention Is All You Need"
    assert first.abstract.startswith("The dominant sequence transduction models are based on complex recurrent or "
                                     "convolutional")  # line breaks of the feed collapsed
    assert first.abstract.endswith("including ensembles by over 2 BLEU.")
    assert first.authors[0] == "Ashish Vaswani" and first.authors[-1] == "Illia Polosukhin" and len(first.authors) == 8
    assert first.categories == ["cs.CL", "cs.LG"]  # primary first, no duplicates
    assert (first.published, first.updated) == ("2017-06-12", "2023-08-02")
    assert first.links == ["https://github.com/tensorflow/tensor2tensor"]  # from arxiv:comment
    assert first.source == "arxiv-atom" and first.doi is None and first.listed_on is None


def test_old_style_id_doi_and_doi_link() -> None:
    paper = parse(QUERY)[1]
    assert (paper.id, paper.version) == ("hep-th/9711200", 3)
    assert paper.doi == "10.1023/a:1026654312961"
    assert paper.categories == ["hep-th"]
    assert paper.authors == ["Juan M. Maldacena"]
    assert paper.abstract.startswith("We show that the large N limit")
    assert paper.raw_abstract.startswith("We show that the large $N$ limit")


def test_doi_comes_from_the_doi_link_when_arxiv_doi_is_missing() -> None:
    data = QUERY.replace(b"<arxiv:doi xmlns:arxiv=\"http://arxiv.org/schemas/atom\">10.1023/A:1026654312961</arxiv:doi>",
                         b"")
    assert b"arxiv:doi" not in data.split(b"hep-th/9711200v3")[1].split(b"</entry>")[0]
    assert parse(data)[1].doi == "10.1023/a:1026654312961"


def test_latex_and_markup_cleaned_raw_kept() -> None:
    paper = parse(QUERY)[2]
    assert paper.title == "Sparse ℓ₂ Attention with O(n log n) Cost: Scaling Long-Context Models"
    assert "99% of dense accuracy & halves memory for sequences of length > 10⁶" in paper.abstract
    assert paper.raw_title.startswith("Sparse $\\ell_2$ Attention with $\\mathcal{O}(n \\log n)$")
    assert paper.authors == ["Zoë Müller", "José Ñúñez"]
    assert paper.categories == ["cs.LG", "cs.CL", "stat.ML"]
    assert paper.links == ["https://sparse-l2.github.io/"]


def test_api_error_entry_is_rejected() -> None:
    items = parse((FIXTURES / "arxiv_error.atom").read_bytes(), "err.atom")
    assert items == [Rejected("err.atom", "entry 1", "arXiv API error: incorrect id format for 1234.12345")]


def test_empty_result_page_yields_nothing() -> None:
    head, _, _ = QUERY.partition(b"<entry>")
    assert parse(head + b"</feed>\n") == []


def test_malformed_xml_keeps_the_entries_before_the_error() -> None:
    broken = QUERY.replace(b"<title>The Large N Limit", b"<title>The Large N & Limit")
    line = broken[: broken.index(b"N & Limit")].count(b"\n") + 1
    items = parse(broken, "broken.atom")
    assert [type(i) for i in items] == [Paper, Rejected]
    assert items[0].id == "1706.03762"
    error = items[1]
    assert error.file == "broken.atom" and error.location == f"line {line}"
    assert "malformed XML" in error.reason and "after 1 good entries" in error.reason
    assert "2 later entries not read" in error.reason


def test_truncated_response_keeps_complete_entries() -> None:
    cut = QUERY[: QUERY.index(b"<title>Sparse")]
    items = parse(cut, "cut.atom")
    assert [p.id for p in items if isinstance(p, Paper)] == ["1706.03762", "hep-th/9711200"]
    assert isinstance(items[-1], Rejected) and "malformed XML" in items[-1].reason


def test_invalid_utf8_names_the_line() -> None:
    bad = QUERY.replace("Zoë".encode(), b"Zo\xeb")
    line = bad[: bad.index(b"Zo\xeb")].count(b"\n") + 1
    items = parse(bad, "bad.atom")
    assert [p.id for p in items if isinstance(p, Paper)] == ["1706.03762", "hep-th/9711200"]
    reason = "invalid UTF-8 after 2 good entries; 1 later entries not read"
    assert items[-1] == Rejected("bad.atom", f"line {line}", reason)


def test_not_a_feed() -> None:
    assert parse(b"<html><body>503 Service Unavailable</body></html>") == [
        Rejected("feed.atom", "file", "not an Atom feed")]


def test_entries_to_items_reads_a_feed_parsed_elsewhere() -> None:
    # a harvester parses an HTTP body itself and hands the feed over
    feed = feedparser.parse(io.BytesIO(QUERY))
    assert [p.id for p in arxiv_atom.entries_to_items(feed, "http://export.arxiv.org/api/query")] == [
        "1706.03762", "hep-th/9711200", "2503.07536"]
    via_registry = list(parse_stream(io.BytesIO(QUERY), "response", "arxiv-atom"))
    assert via_registry == parse(QUERY, "response")
