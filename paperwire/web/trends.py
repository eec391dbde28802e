"""GET /api/trends: papers matching each query per month or ISO week, with their share of all papers.

    /api/trends?q=diffusion&q="large language model"&by=month&from=2025-01&until=2025-12

Counts come from the lexical index (paperwire/index/trends.py); the search page draws them
(static/trends.js). A bad query, period or date is a 422 with one line saying which.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from paperwire.index.trends import BY_CHOICES, MAX_QUERIES, compute_trends
from paperwire.web.api import ApiError, encode_json
from paperwire.web.site import MAX_QUERY_CHARS, SearchUnavailable, Site

JSON = "application/json"


def build_router(site: Site) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["api"],
                       responses={422: {"model": ApiError}, 503: {"model": ApiError}})

    @router.get("/trends", summary="Matching papers per month or week, and their share of all papers")
    def trends(
        request: Request,
        q: Annotated[list[str], Query(description=f"A search query (at most {MAX_QUERY_CHARS} characters); "
                                                  f"up to {MAX_QUERIES} side by side")] = [],  # noqa: B006
        by: Annotated[str, Query(max_length=10, description=" | ".join(BY_CHOICES))] = "auto",
        date_from: Annotated[str | None, Query(alias="from", max_length=10, description="YYYY-MM-DD")] = None,
        date_to: Annotated[str | None, Query(alias="until", max_length=10, description="YYYY-MM-DD")] = None,
    ) -> Any:
        if len(q) > MAX_QUERIES:  # before any work
            raise HTTPException(422, f"{len(q)} queries; at most {MAX_QUERIES} side by side")
        for number, text in enumerate(q, 1):  # the search box's limit (the framework checks the list, not its items)
            if len(text) > MAX_QUERY_CHARS:
                where = f"query {number} is" if len(q) > 1 else "the query is"
                raise HTTPException(422, f"{where} {len(text):,} characters long; at most {MAX_QUERY_CHARS}")
        queries = tuple(q)

        def answer() -> bytes:
            try:
                index = site.index()
            except SearchUnavailable as exc:
                raise HTTPException(503, str(exc), headers={"Retry-After": "10"}) from None
            try:
                found = compute_trends(index.lexical, queries, by=by, date_from=date_from or None,
                                       date_to=date_to or None)
            except ValueError as exc:  # QueryError: what is wrong, in one line
                raise HTTPException(422, str(exc)) from None
            return encode_json(found.to_dict())

        # One answer per index revision: a chart's queries repeat as people page through results.
        index_rev = site.index_rev()
        key = ("api_trends", queries, by, date_from, date_to, index_rev)
        body = site.cached(key, answer)
        site.remember_answer(request, key, by_index=True, index_rev=index_rev, media_type=JSON)
        return Response(body, media_type=JSON)

    return router
