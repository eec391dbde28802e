"""Answers repeated anonymous GETs on the event loop, from the site's cache of finished answers.

A cached feed page, search page, paper page or JSON answer costs little to send, but going through the
framework (routing, parameter validation, a hop to a worker thread and back) cost about as much again,
and on a busy server the hop queued cheap answers behind expensive ones. What is answered here is
exactly what the route would answer: the same cache entry, checked against the same database
generation, day and index revision (Site.remember_answer, Site.cached_answer); anything else, including
every request that carries a session or notice cookie, goes to the routes as before.
"""

from __future__ import annotations

from fastapi.responses import Response
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from paperwire.web.security import SESSION_COOKIE
from paperwire.web.site import NOTICE_COOKIE, Site


class CachedAnswers:
    """Plain ASGI middleware in front of the routes."""

    def __init__(self, app: ASGIApp, site: Site) -> None:
        self.app = app
        self.site = site

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            response = self.answer(scope)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def answer(self, scope: Scope) -> Response | None:
        request = Request(scope)
        url = request.url  # as the routes saw it
        found = self.site.cached_answer(url.path, url.query)
        if found is None:
            return None
        body, answer = found
        if not answer.page:
            return Response(body, media_type=answer.media_type)
        cookies = request.cookies
        if SESSION_COOKIE in cookies or NOTICE_COOKIE in cookies:  # built per visitor by the route
            return None
        return self.site.shared_answer(request, body)
