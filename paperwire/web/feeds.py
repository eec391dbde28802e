"""XML out: the arXiv-API-compatible Atom endpoint (/api/query) and RSS/Atom feeds of the daily
list, trending and a search. Documents are built with ElementTree, which escapes all text."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from paperwire import arxiv_query
from paperwire.model import Paper
from paperwire.store.arxiv_select import select_papers
from paperwire.web.site import MAX_PAGE_SIZE, MAX_QUERY_CHARS, SearchUnavailable, Site

ATOM = "http://www.w3.org/2005/Atom"
OPENSEARCH = "http://a9.com/-/spec/opensearch/1.1/"
ARXIV = "http://arxiv.org/schemas/atom"
ET.register_namespace("", ATOM)
ET.register_namespace("opensearch", OPENSEARCH)
ET.register_namespace("arxiv", ARXIV)

MAX_RESULTS = 1000  # per request; the arxiv client asks for 100 at a time
MAX_START = 50_000
MAX_ID_LIST = 500
FEED_ITEMS = 50
_INVALID_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: str | None) -> str:
    return _INVALID_XML.sub("", value or "")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _text(text)
    return element


def _stamp(day: str | None) -> str:
    return f"{day or '1970-01-01'}T00:00:00Z"


def base_url(site: Site, request: Request) -> str:
    configured = str(site.config.get("PAPERWIRE_BASE_URL") or "").rstrip("/")
    return configured or str(request.base_url).rstrip("/")


def _xml(root: ET.Element, media_type: str) -> Response:
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return Response(body, media_type=f"{media_type}; charset=utf-8")


def paper_url(base: str, paper: Paper) -> str:
    return f"{base}/papers/{paper.id}"


def arxiv_entry(feed: ET.Element, paper: Paper, base: str) -> None:
    entry = _sub(feed, f"{{{ATOM}}}entry")
    if paper.arxiv_id:
        version = f"v{paper.version}" if paper.version else "v1"
        _sub(entry, f"{{{ATOM}}}id", f"http://arxiv.org/abs/{paper.arxiv_id}{version}")
    else:
        _sub(entry, f"{{{ATOM}}}id", paper_url(base, paper))
    published = paper.published or paper.listed_on
    _sub(entry, f"{{{ATOM}}}updated", _stamp(paper.updated or published))
    _sub(entry, f"{{{ATOM}}}published", _stamp(published))
    _sub(entry, f"{{{ATOM}}}title", paper.title)
    _sub(entry, f"{{{ATOM}}}summary", paper.abstract)
    for name in paper.authors:
        _sub(_sub(entry, f"{{{ATOM}}}author"), f"{{{ATOM}}}name", name)
    if paper.doi:
        _sub(entry, f"{{{ARXIV}}}doi", paper.doi)
    _sub(entry, f"{{{ATOM}}}link", href=paper_url(base, paper), rel="alternate", type="text/html")
    if paper.arxiv_id:
        _sub(entry, f"{{{ATOM}}}link", title="pdf", href=f"https://arxiv.org/pdf/{paper.arxiv_id}", rel="related",
             type="application/pdf")
    for url in paper.links:
        _sub(entry, f"{{{ATOM}}}link", href=url, rel="related", type="text/html")
    if paper.categories:
        _sub(entry, f"{{{ARXIV}}}primary_category", term=paper.categories[0], scheme="http://arxiv.org/schemas/atom")
    for category in paper.categories:
        _sub(entry, f"{{{ATOM}}}category", term=category, scheme="http://arxiv.org/schemas/atom")


def arxiv_feed(request: Request, base: str, title: str, papers: list[Paper], total: int, start: int,
               per_page: int) -> Response:
    feed = ET.Element(f"{{{ATOM}}}feed")
    _sub(feed, f"{{{ATOM}}}link", href=str(request.url), rel="self", type="application/atom+xml")
    _sub(feed, f"{{{ATOM}}}title", title, type="html")
    _sub(feed, f"{{{ATOM}}}id", str(request.url))
    _sub(feed, f"{{{ATOM}}}updated", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    _sub(feed, f"{{{OPENSEARCH}}}totalResults", str(total))
    _sub(feed, f"{{{OPENSEARCH}}}startIndex", str(start))
    _sub(feed, f"{{{OPENSEARCH}}}itemsPerPage", str(per_page))
    for paper in papers:
        arxiv_entry(feed, paper, base)
    return _xml(feed, "application/atom+xml")


def run_arxiv_query(site: Site, search_query: str, id_list: list[str], start: int, max_results: int,
                    sort_by: str, sort_order: str) -> tuple[list[Paper], int]:
    """Papers matching an arXiv API request, and how many match in all."""
    try:
        tree = arxiv_query.parse(search_query)
    except arxiv_query.ArxivQueryError as exc:
        raise HTTPException(400, f"search_query: {exc}") from None
    if tree is None and not id_list:
        return [], 0
    ids = None
    if id_list:
        found = site.store().get_papers(id_list)
        by_id = {p.id: p for p in found.values()}
        ids = list(dict.fromkeys(found[i].id for i in id_list if i in found))
        if tree is None:  # the id list alone: those papers, in the order asked
            return [by_id[i] for i in ids][start:start + max_results], len(ids)
    return select_papers(site.store(), tree, ids, start, max_results, sort_by, descending=sort_order != "ascending")


# ---------------------------------------------------------------- RSS / Atom feeds

def rss(base: str, title: str, link: str, description: str, papers: list[Paper]) -> Response:
    root = ET.Element("rss", {"version": "2.0"})
    channel = _sub(root, "channel")
    _sub(channel, "title", title)
    _sub(channel, "link", link)
    _sub(channel, "description", description)
    _sub(channel, "lastBuildDate", format_datetime(datetime.now(UTC)))
    for paper in papers:
        item = _sub(channel, "item")
        _sub(item, "title", paper.title)
        _sub(item, "link", paper_url(base, paper))
        _sub(item, "guid", paper_url(base, paper), isPermaLink="true")
        _sub(item, "description", paper.abstract)
        if paper.listed_on:
            day = datetime.fromisoformat(paper.listed_on).replace(tzinfo=UTC)
            _sub(item, "pubDate", format_datetime(day))
        for category in paper.categories:
            _sub(item, "category", category)
        if paper.authors:
            _sub(item, "{http://purl.org/dc/elements/1.1/}creator", ", ".join(paper.authors))
    return _xml(root, "application/rss+xml")


def atom(base: str, title: str, link: str, feed_id: str, papers: list[Paper]) -> Response:
    feed = ET.Element(f"{{{ATOM}}}feed")
    _sub(feed, f"{{{ATOM}}}title", title)
    _sub(feed, f"{{{ATOM}}}link", href=link, rel="alternate", type="text/html")
    _sub(feed, f"{{{ATOM}}}id", feed_id)
    _sub(feed, f"{{{ATOM}}}updated", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    _sub(_sub(feed, f"{{{ATOM}}}author"), f"{{{ATOM}}}name", "paperwire")
    for paper in papers:
        entry = _sub(feed, f"{{{ATOM}}}entry")
        _sub(entry, f"{{{ATOM}}}id", paper_url(base, paper))
        _sub(entry, f"{{{ATOM}}}title", paper.title)
        _sub(entry, f"{{{ATOM}}}link", href=paper_url(base, paper), rel="alternate", type="text/html")
        _sub(entry, f"{{{ATOM}}}updated", _stamp(paper.listed_on))
        _sub(entry, f"{{{ATOM}}}published", _stamp(paper.published or paper.listed_on))
        _sub(entry, f"{{{ATOM}}}summary", paper.abstract)
        for name in paper.authors:
            _sub(_sub(entry, f"{{{ATOM}}}author"), f"{{{ATOM}}}name", name)
        for category in paper.categories:
            _sub(entry, f"{{{ATOM}}}category", term=category)
    return _xml(feed, "application/atom+xml")


def build_router(site: Site) -> APIRouter:
    router = APIRouter(tags=["feeds"])

    @router.get("/api/query", summary="arXiv API compatible search (Atom 1.0)",
                responses={200: {"content": {"application/atom+xml": {}}}})
    def query(
        request: Request,
        search_query: Annotated[str, Query(max_length=arxiv_query.MAX_QUERY_CHARS)] = "",
        id_list: Annotated[str, Query(max_length=20 * MAX_ID_LIST)] = "",
        start: Annotated[int, Query(ge=0, le=MAX_START)] = 0,
        max_results: Annotated[int, Query(ge=0, le=MAX_RESULTS)] = 10,
        sortBy: Annotated[Literal["relevance", "lastUpdatedDate", "submittedDate"], Query()] = "relevance",  # noqa: N803
        sortOrder: Annotated[Literal["ascending", "descending"], Query()] = "descending",  # noqa: N803
    ) -> Response:
        ids = [i.strip() for i in id_list.split(",") if i.strip()]
        if len(ids) > MAX_ID_LIST:
            raise HTTPException(422, f"id_list holds more than {MAX_ID_LIST} ids")
        ids = [re.sub(r"v\d+$", "", i) for i in ids]
        papers, total = run_arxiv_query(site, search_query, ids, start, max_results, sortBy, sortOrder)
        title = f"paperwire query: search_query={search_query}&id_list={id_list}&start={start}"
        return arxiv_feed(request, base_url(site, request), title, papers, total, start, max_results)

    def daily(request: Request) -> tuple[str, str, list[Paper]]:
        day = site.anchor_day()
        papers = site.listings().ranked(day, day, limit=FEED_ITEMS)
        return day, f"{base_url(site, request)}/papers/date/{day}", papers

    @router.get("/feeds/daily.rss", summary="RSS 2.0 feed of the newest day's papers")
    def daily_rss(request: Request) -> Response:
        day, link, papers = daily(request)
        return rss(base_url(site, request), f"paperwire daily papers, {day}", link,
                   f"Papers listed on {day}", papers)

    @router.get("/feeds/daily.atom", summary="Atom feed of the newest day's papers")
    def daily_atom(request: Request) -> Response:
        day, link, papers = daily(request)
        return atom(base_url(site, request), f"paperwire daily papers, {day}", link,
                    f"{base_url(site, request)}/feeds/daily.atom", papers)

    def trending_list() -> list[Paper]:
        from paperwire.web.pages import trending_papers

        return [r.paper for r in trending_papers(site, limit=FEED_ITEMS)]

    @router.get("/feeds/trending.rss", summary="RSS 2.0 feed of trending papers")
    def trending_rss(request: Request) -> Response:
        base = base_url(site, request)
        return rss(base, "paperwire trending papers", f"{base}/trending", "Papers by votes with a time decay",
                   trending_list())

    @router.get("/feeds/trending.atom", summary="Atom feed of trending papers")
    def trending_atom(request: Request) -> Response:
        base = base_url(site, request)
        return atom(base, "paperwire trending papers", f"{base}/trending", f"{base}/feeds/trending.atom",
                    trending_list())

    def search_list(q: str, limit: int) -> list[Paper]:
        if not q.strip():
            raise HTTPException(422, "q: give a search query")
        try:
            return [h.paper for h in site.search(q, limit=limit)]
        except SearchUnavailable as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "10"}) from None
        except ValueError as exc:
            raise HTTPException(422, f"q: {exc}") from None

    @router.get("/feeds/search.atom", summary="Atom feed of a search")
    def search_atom(request: Request, q: Annotated[str, Query(max_length=MAX_QUERY_CHARS)] = "",
                    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20) -> Response:
        base = base_url(site, request)
        papers = search_list(q, limit)
        return atom(base, f"paperwire search: {q}", f"{base}/search?q={_quote(q)}", str(request.url), papers)

    @router.get("/feeds/search.rss", summary="RSS 2.0 feed of a search")
    def search_rss(request: Request, q: Annotated[str, Query(max_length=MAX_QUERY_CHARS)] = "",
                   limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20) -> Response:
        base = base_url(site, request)
        papers = search_list(q, limit)
        return rss(base, f"paperwire search: {q}", f"{base}/search?q={_quote(q)}", f"Papers matching {q}", papers)

    return router


def _quote(text: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(text)


__all__: list[Any] = ["build_router", "run_arxiv_query"]
