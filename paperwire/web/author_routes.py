"""Author pages: /authors/{name} lists a name's papers newest first, its co-authors and the spellings
papers link to it (paperwire/store/authors.py says when two spellings count as one person)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from paperwire.index.query import QueryError, parse_query
from paperwire.store.authors import Authors, author_key
from paperwire.web.site import Site

PAGE_SIZE = 30
MAX_PAGE = 200
MAX_NAME = 200


def query_authors(query: str) -> list[str]:
    """The names a search asks for with `au:` (each links to its author page); none for a bad query."""
    try:
        return parse_query(query).fields.get("au", [])[:5]
    except QueryError:
        return []


def author_href(name: str) -> str:
    from urllib.parse import quote

    return "/authors/" + quote(name, safe="")


def build_router(site: Site) -> APIRouter:
    router = APIRouter(tags=["pages"])

    @router.get("/authors/{name:path}", summary="An author's papers, newest first, and co-authors")
    def author_page(request: Request, name: str, page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1) -> Response:
        if len(name) > MAX_NAME:
            raise HTTPException(404, f"an author's name is at most {MAX_NAME} characters")
        key = author_key(name)
        if not key:
            raise HTTPException(404, "no author name given")
        return site.shared_page(request, lambda: render(request, name, key, page))

    def load(key: str) -> dict[str, Any]:
        authors = Authors(site.store())
        group = authors.group(key)
        papers = authors.papers(group)
        names = authors.names(group)
        data: dict[str, Any] = {"group": group, "papers": [p.paper_id for p in papers], "names": names,
                                "links": authors.links(group) if len(group) > 1 else [],
                                "coauthors": authors.coauthors(group, [p.paper_id for p in papers]),
                                "surname": [] if papers else authors.by_surname(key.rsplit(" ", 1)[-1])}
        return data

    def render(request: Request, name: str, key: str, page: int) -> Response:
        from paperwire.web.pages import site_cards

        data = site.cached(("author", key), lambda: load(key))
        ids: list[str] = data["papers"]
        if not ids and not data["surname"]:
            return site.render(request, "error.html", status_code=404, status=404,
                               message=f"No papers by “{name[:80]}” here.",
                               links=[("Search for the name", f"/search?q={_au_query(name)}")])
        total = len(ids)
        pages = max(1, -(-total // PAGE_SIZE))
        if page > pages:
            raise HTTPException(404, f"there is no page {page}: the author has {pages} page{'s' if pages > 1 else ''}")
        shown = ids[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
        found = site.store().get_papers(shown)
        cards = site_cards(site, request, [found[i] for i in shown if i in found])
        display = data["names"].get(key) or name
        variants = sorted({n for k, n in data["names"].items() if k != key} - {display})
        return site.render(
            request, "author.html", name=display, key=key, cards=cards, total=total, page=page, pages=pages,
            variants=variants, links=data["links"], coauthors=data["coauthors"], surname=data["surname"],
            author_href=author_href, search_query=_au_query(display),
            # Topics the author writes in: (link, label, papers); the topics feature fills this in.
            topics=author_topics(site, ids))

    return router


def author_topics(site: Site, paper_ids: list[str], limit: int = 8) -> list[tuple[str, str, int]]:
    """(href, label, papers) of the topics an author's papers (the newest 500) fall in, most papers first;
    empty until topics are built for the home."""
    from collections import Counter

    from paperwire.web.topic_routes import paper_topic

    counts: Counter[int] = Counter()
    labels: dict[int, str] = {}
    for pid in paper_ids[:500]:
        topic = paper_topic(site, pid)
        if topic is not None:
            counts[topic.id] += 1
            labels[topic.id] = topic.label
    return [(f"/topics/{tid}", labels[tid], n) for tid, n in counts.most_common(limit)]


def _au_query(name: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(f'au:"{name}"' if " " in name else f"au:{name}")
