"""Comments on paper pages: signed-in users write, edit and delete their own; admins (the user names in
PAPERWIRE_ADMINS, comma-separated) hide and show any; new comments are rate limited (COMMENT, per user);
each paper has an Atom feed of its comments at /feeds/papers/{id}/comments.atom.

Every POST takes the CSRF token and redirects back to the paper page; a refused comment comes back on
the page with the reason and what was typed, and nothing is written."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from paperwire.store.comments import MAX_BODY, Comment, CommentError, Comments
from paperwire.web.comment_text import comment_html, comment_plain
from paperwire.web.security import RateLimited
from paperwire.web.site import Site

FEED_ITEMS = 50
# Bytes a posted field may carry before reading stops; the limit writers meet is MAX_BODY, checked after
# reading so that the page can say how long the comment was (a megabyte of text is read, refused, not stored).
FORM_CEILING = 2_000_000


# The form the comment POSTs read themselves (to say how long an overlong comment was), for the OpenAPI description.
_COMMENT_FORM = {"requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {
    "type": "object", "properties": {"csrf_token": {"type": "string"}, "body": {"type": "string"}}}}}}}


@dataclass(frozen=True)
class ShownComment:
    """A comment as one reader sees it on a paper page."""

    id: int
    author: str
    html: Markup
    body: str
    created_at: str
    edited_at: str | None
    hidden: bool
    own: bool  # the reader wrote it: edit and delete
    moderate: bool  # the reader is an admin: hide or show


def admins(site: Site) -> set[str]:
    return {n.strip().lower() for n in str(site.config.get("PAPERWIRE_ADMINS", "")).split(",") if n.strip()}


def is_admin(site: Site, user: dict[str, Any] | None) -> bool:
    return bool(user) and str(user["username"]).lower() in admins(site)  # type: ignore[index]


def comment_counts(site: Site, paper_ids: list[str]) -> dict[str, int]:
    """Comments written here per paper (hidden ones left out)."""
    return Comments(site.store()).counts(paper_ids) if paper_ids else {}


def thread_for(site: Site, paper_id: str, user: dict[str, Any] | None) -> list[ShownComment]:
    """A paper's comments for this reader, oldest first: hidden ones only for their author and admins."""
    admin = is_admin(site, user)
    me = user["id"] if user else None
    shown = []
    for c in Comments(site.store()).of_paper(paper_id, with_hidden=user is not None):
        if c.hidden and not (admin or c.user_id == me):
            continue
        shown.append(ShownComment(c.id, c.author, comment_html(c.body), c.body, c.created_at, c.edited_at, c.hidden,
                                  c.user_id == me, admin))
    return shown


def build_router(site: Site) -> APIRouter:
    router = APIRouter(tags=["comments"])
    # The paper page (pages.py) shows the thread through these, rendered inside its template.
    site.templates.globals["comment_thread"] = lambda paper_id, user: thread_for(site, paper_id, user)
    site.templates.globals["comment_limit"] = MAX_BODY

    def paper_or_404(paper_id: str) -> Any:
        from paperwire.web.pages import _paper_or_404

        return _paper_or_404(site, paper_id)

    def own_or_403(request: Request, comment_id: int, *, moderate: bool = False) -> tuple[Comment, dict[str, Any]]:
        user = site.require_user(request)
        comment = Comments(site.store()).get(comment_id)
        if comment is None:
            raise HTTPException(404, f"there is no comment {comment_id}")
        allowed = is_admin(site, user) if moderate else comment.user_id == user["id"]
        if not allowed:
            raise HTTPException(403, "only an admin may hide comments" if moderate else
                                "you can change only your own comments")
        return comment, user

    def back(comment: Comment | None, paper_id: str, notice: str) -> Response:
        anchor = f"#c-{comment.id}" if comment else "#comments"
        return site.notice(RedirectResponse(f"/papers/{paper_id}{anchor}", status_code=303), notice)

    def refused(request: Request, paper_id: str, status: int, message: str, body: str,
                headers: dict[str, str] | None = None) -> Response:
        """The paper page again, the reason above the form and what was typed in it (cut to the limit)."""
        from paperwire.web.library_routes import library_cards

        paper = paper_or_404(paper_id)
        card = library_cards(site, site.require_user(request)["id"], [paper])[0]
        response = site.render(request, "paper.html", status_code=status, card=card, similar=[],
                               similar_note="Similar papers are left out of this page.",
                               comment_error=message, comment_draft=body[:MAX_BODY])
        response.headers.update(headers or {})
        return response

    async def read_form(request: Request) -> dict[str, str] | None:
        """The posted fields, or None when one is over FORM_CEILING (then nothing is read further)."""
        try:
            form = await request.form(max_fields=10, max_part_size=FORM_CEILING)
        except StarletteHTTPException as exc:  # what Starlette raises for a field past the ceiling
            if exc.status_code == 400:
                return None
            raise
        return {k: v for k, v in form.items() if isinstance(v, str)}

    def too_long(request: Request, paper_id: str) -> Response:
        return refused(request, paper_id, 413, f"Your comment is over {FORM_CEILING // 1_000_000} MB; the limit is "
                       f"{MAX_BODY:,} characters. Nothing was posted.", "")

    @router.post("/papers/{paper_id:path}/comments", summary="Comment on a paper (signed in)",
                 openapi_extra=_COMMENT_FORM)
    async def add_comment(request: Request, paper_id: str) -> Response:
        form = await read_form(request)
        if form is None:
            return await run_in_threadpool(lambda: too_long(request, paper_id))
        return await run_in_threadpool(add_comment_now, request, paper_id, form.get("csrf_token", ""),
                                       form.get("body", ""))

    def add_comment_now(request: Request, paper_id: str, csrf_token: str, body: str) -> Response:
        site.check_csrf(request, csrf_token)
        user = site.current_user(request)
        paper = paper_or_404(paper_id)
        if user is None:
            return RedirectResponse(f"/login?next=/papers/{paper.id}%23comments", status_code=303)
        if len(body) > MAX_BODY:  # refused before it counts against the rate limit
            return refused(request, paper.id, 413, f"Your comment is {len(body):,} characters long; the limit is "
                           f"{MAX_BODY:,}. Nothing was posted.", body)
        try:
            ticket = site.take(("comment", f"user:{user['id']}"))
        except RateLimited as exc:
            return refused(request, paper.id, 429, str(exc), body, {"Retry-After": str(exc.retry_after)})
        try:
            comment = Comments(site.store()).add(paper.id, user["id"], body)
        except CommentError as exc:
            ticket.give_back("comment")
            return refused(request, paper.id, 422, f"{str(exc)[:1].upper()}{str(exc)[1:]}.", body)
        return back(comment, paper.id, "Your comment is posted.")

    @router.post("/comments/{comment_id}/edit", summary="Edit your comment",
                 openapi_extra=_COMMENT_FORM)
    async def edit_comment(request: Request, comment_id: int) -> Response:
        form = await read_form(request)
        return await run_in_threadpool(edit_comment_now, request, comment_id, form)

    def edit_comment_now(request: Request, comment_id: int, form: dict[str, str] | None) -> Response:
        if form is None:  # nothing will change: the refusal needs no token
            comment, _ = own_or_403(request, comment_id)
            return too_long(request, comment.paper_id)
        site.check_csrf(request, form.get("csrf_token", ""))
        comment, _ = own_or_403(request, comment_id)
        body = form.get("body", "")
        try:
            Comments(site.store()).edit(comment, body)
        except CommentError as exc:
            return refused(request, comment.paper_id, 413 if len(body) > MAX_BODY else 422,
                           f"{str(exc)[:1].upper()}{str(exc)[1:]}: the comment was not changed.", body)
        return back(comment, comment.paper_id, "Your comment is changed.")

    @router.post("/comments/{comment_id}/delete", summary="Delete your comment")
    def delete_comment(request: Request, comment_id: int,
                       csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
        site.check_csrf(request, csrf_token)
        comment, _ = own_or_403(request, comment_id)
        Comments(site.store()).delete(comment)
        return back(None, comment.paper_id, "Your comment is deleted.")

    @router.post("/comments/{comment_id}/hide", summary="Hide or show a comment (admins)")
    def hide_comment(request: Request, comment_id: int, csrf_token: Annotated[str, Form(max_length=200)] = "",
                     hidden: Annotated[str, Form(pattern="^(true|false)$")] = "true") -> Response:
        site.check_csrf(request, csrf_token)
        comment, _ = own_or_403(request, comment_id, moderate=True)
        Comments(site.store()).set_hidden(comment, hidden == "true")
        return back(comment, comment.paper_id, "The comment is hidden." if hidden == "true" else
                    "The comment is shown again.")

    @router.get("/feeds/papers/{paper_id:path}/comments.atom", summary="Atom feed of a paper's comments")
    def comments_feed(request: Request, paper_id: str) -> Response:
        from paperwire.web.feeds import ATOM, _stamp, _sub, _xml, base_url

        paper = paper_or_404(paper_id)

        def build() -> bytes:
            base = base_url(site, request)
            page = f"{base}/papers/{paper.id}"
            comments = Comments(site.store()).newest_of_paper(paper.id, FEED_ITEMS)
            feed = ET.Element(f"{{{ATOM}}}feed")
            _sub(feed, f"{{{ATOM}}}title", f"Comments on “{paper.title}”")
            _sub(feed, f"{{{ATOM}}}id", f"{page}#comments")
            _sub(feed, f"{{{ATOM}}}link", href=f"{page}#comments", rel="alternate", type="text/html")
            _sub(feed, f"{{{ATOM}}}link", href=str(request.url), rel="self", type="application/atom+xml")
            newest = max((c.edited_at or c.created_at for c in comments), default=None)
            _sub(feed, f"{{{ATOM}}}updated", newest or _stamp(paper.listed_on or paper.published))
            for c in comments:
                entry = _sub(feed, f"{{{ATOM}}}entry")
                _sub(entry, f"{{{ATOM}}}id", f"{page}#c-{c.id}")
                _sub(entry, f"{{{ATOM}}}title", f"{c.author}: {comment_plain(c.body)}")
                _sub(_sub(entry, f"{{{ATOM}}}author"), f"{{{ATOM}}}name", c.author)
                _sub(entry, f"{{{ATOM}}}published", c.created_at)
                _sub(entry, f"{{{ATOM}}}updated", c.edited_at or c.created_at)
                _sub(entry, f"{{{ATOM}}}link", href=f"{page}#c-{c.id}", rel="alternate", type="text/html")
                _sub(entry, f"{{{ATOM}}}content", str(comment_html(c.body)), type="html")
            return _xml(feed, "application/atom+xml").body

        body = site.cached(("comments_feed", paper.id, base_url(site, request)), build)
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    return router
