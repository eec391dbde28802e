"""The JSON API, shaped like the Hugging Face Papers endpoints that `huggingface_hub.HfApi` calls:
GET /api/papers/search, /api/papers/{id}, /api/daily_papers (and /papers/{id}.md in pages.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from paperwire.model import Paper
from paperwire.web.comment_routes import comment_counts
from paperwire.web.periods import BadPeriod, Period, day_period, month_period, week_period
from paperwire.web.site import MAX_PAGE_SIZE, MAX_QUERY_CHARS, SearchUnavailable, Site
from paperwire.web.views import iso_datetime

DAILY_DEFAULT_LIMIT = 50
JSON = "application/json"
MAX_PAGE_NUMBER = 1000


class Author(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: str = Field(alias="_id")
    name: str
    hidden: bool = False


class Submitter(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: str = Field(alias="_id")
    user: str
    name: str
    fullname: str
    avatarUrl: str = ""
    type: str = "user"


class PaperOut(BaseModel):
    """A paper as GET /api/papers/{id} returns it."""

    model_config = ConfigDict(populate_by_name=True)
    id: str
    title: str
    summary: str
    authors: list[Author]
    publishedAt: str | None = None
    submittedOnDailyAt: str | None = None
    submittedOnDailyBy: Submitter | None = None
    upvotes: int
    discussionId: str
    numComments: int = 0
    projectPage: str | None = None
    githubRepo: str | None = None
    categories: list[str] = []
    arxivId: str | None = None
    links: list[str] = []
    mediaUrls: list[str] | None = None


class PaperCore(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: str
    title: str
    summary: str
    authors: list[Author]
    publishedAt: str | None = None
    upvotes: int
    discussionId: str
    projectPage: str | None = None
    githubRepo: str | None = None
    mediaUrls: list[str] | None = None


class DailyPaper(BaseModel):
    """One entry of GET /api/daily_papers and /api/papers/search."""

    model_config = ConfigDict(populate_by_name=True)
    paper: PaperCore
    publishedAt: str | None = None
    title: str
    summary: str
    numComments: int = 0
    submittedBy: Submitter | None = None
    isAuthorParticipating: bool = False
    thumbnail: str | None = None


class ApiError(BaseModel):
    error: str


ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ApiError}, 422: {"model": ApiError}}


def _authors(paper: Paper) -> list[dict[str, Any]]:
    return [{"_id": f"{paper.id}-author-{i}", "name": name, "hidden": False} for i, name in enumerate(paper.authors)]


def _submitter(paper: Paper) -> dict[str, Any] | None:
    if not paper.submitted_by:
        return None
    name = paper.submitted_by
    return {"_id": f"user-{name}", "user": name, "name": name, "fullname": name, "avatarUrl": "", "type": "user"}


def _link(paper: Paper, hosts: tuple[str, ...]) -> str | None:
    for url in paper.links:
        if any(h in url.lower() for h in hosts):
            return url
    return None


def _project_page(paper: Paper) -> str | None:
    for url in paper.links:
        if "github.com" not in url.lower():
            return url
    return None


def paper_core(paper: Paper, votes: int) -> dict[str, Any]:
    core = {
        "id": paper.id, "title": paper.title, "summary": paper.abstract, "authors": _authors(paper),
        "publishedAt": iso_datetime(paper.published or paper.listed_on), "upvotes": votes,
        "discussionId": paper.id, "projectPage": _project_page(paper), "githubRepo": _link(paper, ("github.com",)),
    }
    if paper.thumbnail:  # as the Hub does: the key only when the paper has media
        core["mediaUrls"] = [paper.thumbnail]
    return core


def paper_json(paper: Paper, votes: int, comments: int = 0) -> dict[str, Any]:
    """`comments`: written here (numComments adds the source's count)."""
    return {**paper_core(paper, votes), "submittedOnDailyAt": iso_datetime(paper.listed_on),
            "submittedOnDailyBy": _submitter(paper), "numComments": paper.num_comments + comments,
            "categories": paper.categories, "arxivId": paper.arxiv_id, "links": paper.links}


def daily_json(paper: Paper, votes: int, comments: int = 0) -> dict[str, Any]:
    entry = {"paper": paper_core(paper, votes), "publishedAt": iso_datetime(paper.listed_on), "title": paper.title,
             "summary": paper.abstract, "numComments": paper.num_comments + comments,
             "submittedBy": _submitter(paper),
             "isAuthorParticipating": False}
    if paper.thumbnail:  # HfApi.list_daily_papers keeps an entry's unknown keys: PaperInfo.thumbnail
        entry["thumbnail"] = paper.thumbnail
    return entry


def encode_json(data: Any) -> bytes:
    """Compact UTF-8 JSON; orjson writes it several times faster than the standard encoder, which
    remains for what orjson refuses (a lone surrogate from undecodable input, written as an escape)."""
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, separators=(",", ":")).encode()


def json_response(data: Any) -> Response:
    """The answer as built (already in the documented shape): response_model stays for the OpenAPI
    description, and validating it again on every request would only cost time."""
    return Response(encode_json(data), media_type=JSON)


def build_router(site: Site) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["api"], responses=ERRORS)

    def votes_of(papers: list[Paper]) -> dict[str, int]:
        local = site.accounts().local_votes([p.id for p in papers])
        return {p.id: p.upvotes + local.get(p.id, 0) for p in papers}

    @router.get("/papers/search", response_model=list[DailyPaper], summary="Search papers (hybrid by default)")
    def search(
        request: Request,
        q: Annotated[str, Query(max_length=MAX_QUERY_CHARS, description="Search query")] = "",
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
        mode: Annotated[Literal["hybrid", "lexical", "semantic"], Query()] = "hybrid",
    ) -> Any:
        def answer() -> bytes:
            if not q.strip():
                papers = site.listings().newest(limit=limit)
            else:
                try:
                    papers = [h.paper for h in site.search(q, limit=limit, mode=mode, snippets=False)]
                except SearchUnavailable as exc:
                    raise HTTPException(503, str(exc), headers={"Retry-After": "10"}) from None
                except ValueError as exc:
                    raise HTTPException(422, str(exc)) from None
            votes, comments = votes_of(papers), comment_counts(site, [p.id for p in papers])
            return encode_json([daily_json(p, votes[p.id], comments.get(p.id, 0)) for p in papers])

        # One encoding per database generation and index revision: searches repeat.
        by_index = bool(q.strip())
        index_rev = site.index_rev() if by_index else None
        key = ("api_search", q, limit, mode, index_rev)
        body = site.cached(key, answer)
        site.remember_answer(request, key, by_index=by_index, index_rev=index_rev, media_type=JSON)
        return Response(body, media_type=JSON)

    @router.get("/daily_papers", response_model=list[DailyPaper], summary="Papers by listing day, week or month")
    def daily_papers(
        request: Request,
        date: Annotated[str | None, Query(max_length=10, description="YYYY-MM-DD")] = None,
        week: Annotated[str | None, Query(max_length=8, description="YYYY-Www")] = None,
        month: Annotated[str | None, Query(max_length=7, description="YYYY-MM")] = None,
        submitter: Annotated[str | None, Query(max_length=64)] = None,
        sort: Annotated[Literal["publishedAt", "trending"], Query()] = "publishedAt",
        p: Annotated[int, Query(ge=0, le=MAX_PAGE_NUMBER)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DAILY_DEFAULT_LIMIT,
    ) -> Any:
        given = [x for x in (date, week, month) if x]
        if len(given) > 1:
            raise HTTPException(422, "give at most one of date, week and month")
        try:
            period = (day_period(date) if date else week_period(week) if week else
                      month_period(month) if month else None)
        except BadPeriod as exc:
            raise HTTPException(422, str(exc)) from None
        key = ("daily_papers", period.kind if period else None, period.key if period else None, submitter, sort,
               p, limit)
        if sort == "trending":  # ranked anew each minute
            key += (datetime.now(UTC).replace(second=0, microsecond=0),)
        # One encoding per database generation: the same answer for every caller until something changes.
        body = site.cached(key, lambda: encode_json(daily(period, submitter, sort, p * limit, limit)))
        if sort != "trending":  # (ranked anew each minute: not answered from the URL alone)
            site.remember_answer(request, key, media_type=JSON)
        return Response(body, media_type=JSON)

    def daily(period: Period | None, submitter: str | None, sort: str, offset: int, limit: int) -> list[dict[str, Any]]:
        listings = site.listings()
        if sort == "trending":
            from paperwire.web.pages import trending_papers

            if period is None:
                papers = [r.paper for r in trending_papers(site, limit=limit, offset=offset)]
            else:
                papers = listings.ranked(period.first, period.last, limit=limit, offset=offset, submitter=submitter)
        elif period is None:
            papers = listings.newest(limit=limit, offset=offset, submitter=submitter)
        else:
            papers = listings.ranked(period.first, period.last, limit=limit, offset=offset, submitter=submitter,
                                     order="newest")
        if submitter and sort == "trending" and period is None:
            papers = [x for x in papers if x.submitted_by == submitter]
        votes, comments = votes_of(papers), comment_counts(site, [x.id for x in papers])
        return [daily_json(x, votes[x.id], comments.get(x.id, 0)) for x in papers]

    @router.get("/papers/{paper_id:path}", response_model=PaperOut, summary="One paper by arXiv or paperwire id")
    def paper_info(paper_id: Annotated[str, Field(max_length=200)], request: Request) -> Any:
        from paperwire.web.pages import _paper_or_404

        if len(paper_id) > 200:
            raise HTTPException(422, "paper id too long")
        paper = _paper_or_404(site, paper_id)
        return json_response(paper_json(paper, votes_of([paper])[paper.id],
                                        comment_counts(site, [paper.id]).get(paper.id, 0)))

    return router
