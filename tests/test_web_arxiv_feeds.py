"""/api/query through the real `arxiv` client and feedparser; the RSS/Atom feeds through feedparser."""

from __future__ import annotations

from pathlib import Path

import arxiv
import feedparser
import httpx
import pytest

from paperwire.model import make_paper

ARXIV_PAPERS = [
    make_paper(title="Attention Is All You Need", arxiv_id="1706.03762v7", source="test",
               abstract="The dominant sequence transduction models are based on complex recurrent networks. "
                        "We propose the Transformer, based solely on attention mechanisms.",
               authors=["Ashish Vaswani", "Noam Shazeer"], categories=["cs.CL", "cs.LG"],
               published="2017-06-12", updated="2023-08-02", listed_on="2017-06-13"),
    make_paper(title="Deep Residual Learning for Image Recognition", arxiv_id="1512.03385", source="test",
               abstract="Deeper neural networks are more difficult to train. We present a residual learning framework.",
               authors=["Kaiming He", "Xiangyu Zhang"], categories=["cs.CV"], published="2015-12-10",
               listed_on="2015-12-11"),
]
EXTRA_PAPERS = ARXIV_PAPERS  # added to this module's server home (the web_home and base fixtures in conftest.py)


@pytest.fixture
def client(base: str) -> arxiv.Client:
    client = arxiv.Client(page_size=50, delay_seconds=0, num_retries=0)
    client.query_url_format = base + "/api/query?{}"
    return client


def test_arxiv_client_title_and_author_search(client: arxiv.Client) -> None:
    results = list(client.results(arxiv.Search(query="ti:attention AND au:vaswani", max_results=10)))
    assert [r.get_short_id() for r in results] == ["1706.03762v7"]
    (paper,) = results
    assert paper.title == "Attention Is All You Need"
    assert [a.name for a in paper.authors] == ["Ashish Vaswani", "Noam Shazeer"]
    assert paper.primary_category == "cs.CL" and paper.categories == ["cs.CL", "cs.LG"]
    assert paper.published.date().isoformat() == "2017-06-12"
    assert paper.updated.date().isoformat() == "2023-08-02"
    assert paper.pdf_url == "https://arxiv.org/pdf/1706.03762"


def test_arxiv_client_boolean_operators(client: arxiv.Client) -> None:
    either = {r.get_short_id() for r in client.results(
        arxiv.Search(query='au:vaswani OR au:"kaiming he"'))}
    assert either == {"1706.03762v7", "1512.03385v1"}
    cats = {r.get_short_id() for r in client.results(arxiv.Search(query="cat:cs.CV"))}
    assert cats == {"1512.03385v1"}
    excluded = [r.title for r in client.results(arxiv.Search(query="abs:collapse ANDNOT ti:neural", max_results=300))]
    assert excluded and all("neural" not in t.lower() for t in excluded)
    grouped = {r.get_short_id() for r in client.results(
        arxiv.Search(query='(au:vaswani OR au:"kaiming he") AND abs:"residual learning"'))}
    assert grouped == {"1512.03385v1"}


def test_arxiv_client_id_list_and_paging(client: arxiv.Client) -> None:
    by_id = list(client.results(arxiv.Search(id_list=["1512.03385", "1706.03762v7"])))
    assert [r.title for r in by_id] == ["Deep Residual Learning for Image Recognition", "Attention Is All You Need"]
    # 'all:' over the seed corpus: more results than one page, fetched page by page without repeats
    many = [r.entry_id for r in client.results(arxiv.Search(query="all:learning", max_results=120))]
    assert len(many) == 120 == len(set(many))


def test_id_list_with_a_query_filters_and_unknown_ids_match_nothing(base: str) -> None:
    both = {"search_query": "au:vaswani", "id_list": "1512.03385,1706.03762"}
    feed = feedparser.parse(httpx.get(base + "/api/query", params=both).content)
    assert [e.title for e in feed.entries] == ["Attention Is All You Need"]
    unknown = {"search_query": "all:learning", "id_list": "none,9999.99999"}
    response = httpx.get(base + "/api/query", params=unknown)
    assert response.status_code == 200
    feed = feedparser.parse(response.content)
    assert not feed.entries and feed.feed.opensearch_totalresults == "0"


def test_arxiv_client_sort_by_submitted_date(client: arxiv.Client) -> None:
    results = list(client.results(arxiv.Search(query='au:vaswani OR au:"kaiming he"',
                                               sort_by=arxiv.SortCriterion.SubmittedDate,
                                               sort_order=arxiv.SortOrder.Ascending)))
    assert [r.get_short_id() for r in results] == ["1512.03385v1", "1706.03762v7"]


def test_feedparser_reads_the_query_endpoint(base: str) -> None:
    feed = feedparser.parse(httpx.get(base + "/api/query", params={"search_query": "all:collapse",
                                                                  "max_results": 5}).content)
    assert not feed.bozo
    assert len(feed.entries) == 5
    assert int(feed.feed.opensearch_totalresults) >= 5
    assert all("collapse" in (e.title + e.summary).lower() for e in feed.entries)


@pytest.mark.parametrize("path", ["/feeds/daily.rss", "/feeds/daily.atom", "/feeds/trending.rss",
                                  "/feeds/trending.atom", "/feeds/search.atom?q=neural+collapse",
                                  "/feeds/search.rss?q=knowledge+distillation"])
def test_feeds_parse(base: str, path: str) -> None:
    feed = feedparser.parse(httpx.get(base + path, timeout=60).content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.feed.title.startswith("paperwire")
    assert len(feed.entries) >= 5
    assert all(e.link.startswith(base + "/papers/") for e in feed.entries)
    if "search" in path:
        word = path.split("q=")[1].split("+")[0]
        assert any(word in (e.title + e.summary).lower() for e in feed.entries[:3])


def test_injection_shaped_queries_are_harmless(base: str) -> None:
    for query in ['ti:"x%\' OR 1=1 --"', "all:'); DROP TABLE papers; --", "ti:_", "ti:\\", "ti:%"]:
        response = httpx.get(base + "/api/query", params={"search_query": query, "max_results": 5})
        assert response.status_code in (200, 400)  # 400: a query the grammar rejects, said in JSON
        if response.status_code == 200:
            assert feedparser.parse(response.content).entries == []
    # LIKE wildcards are literal: "%" matches only abstracts that contain a percent sign
    entries = feedparser.parse(httpx.get(base + "/api/query", params={"search_query": "abs:%",
                                                                       "max_results": 50}).content).entries
    assert entries and all("%" in e.summary for e in entries)
    assert httpx.get(base + "/healthz").json()["papers"] > 400


def test_papers_without_a_day_sort_last_newest_first_and_first_oldest_first(store_home: Path) -> None:
    """The same order on both backends: a paper with no date sorts as the smallest (SQLite's NULLs)."""
    from paperwire.arxiv_query import parse
    from paperwire.store import open_store
    from paperwire.store.arxiv_select import select_papers

    undated = make_paper(title="Undated quillwort survey", abstract="Quillwort ferns, undated.", source="test")
    older = make_paper(title="Older quillwort survey", abstract="Quillwort ferns in 2020.", source="test",
                       arxiv_id="2001.00001", published="2020-01-02", listed_on="2020-01-03")
    newer = make_paper(title="Newer quillwort survey", abstract="Quillwort ferns in 2021.", source="test",
                       arxiv_id="2101.00001", published="2021-01-02", listed_on="2021-01-03")
    store = open_store(store_home)
    try:
        store.upsert_papers([undated, older, newer])
        tree = parse("abs:quillwort")

        def order(sort_by: str, descending: bool) -> list[str]:
            papers, total = select_papers(store, tree, None, 0, 10, sort_by, descending)
            assert total == 3
            return [p.id for p in papers]

        assert order("submittedDate", True) == [newer.id, older.id, undated.id]
        assert order("submittedDate", False) == [undated.id, older.id, newer.id]
        assert order("relevance", True) == [newer.id, older.id, undated.id]
    finally:
        store.close()
