"""Subscribe, confirm and unsubscribe over HTTP.

GET /mail/confirm/{token} activates (the link in the confirmation mail). GET /mail/unsubscribe/{token}
shows a page with a button; POST to the same URL with `List-Unsubscribe=One-Click` unsubscribes
(RFC 8058: mail clients POST it without cookies, so the signed token is the only credential and no
CSRF token is asked for). Subscribing answers the same whatever the address's state, so the form
cannot be used to learn who subscribes. The confirmation mail is handed to the SMTP server before the
answer (one try, no waiting on backoff), so the answer can say when it is only queued because the
server cannot be reached; when nothing was queued the server is only probed, for the same answer. A subscriber
chooses daily or weekly and what to receive (trending, recommendations from their library or one
tag, keyword alerts); changing an active subscription is confirmed by mail too.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from paperwire.digest.compose import InvalidEmail, validate_email
from paperwire.digest.deliver import probe
from paperwire.digest.settings import MailConfigError, load_mail_settings
from paperwire.digest.subscriptions import (
    MAX_SEARCHES,
    deliver_confirmation,
    describe_content,
    subscribe,
    subscription_content,
    subscription_for_unsubscribe,
    unsubscribe,
)
from paperwire.digest.subscriptions import confirm as confirm_token
from paperwire.store.library import Library
from paperwire.store.mail import PERIODS
from paperwire.web.site import Site

ONE_CLICK = "One-Click"
SMTP_TIMEOUT = 10.0  # seconds a subscribe request waits for the SMTP server at most


def build_router(site: Site) -> APIRouter:
    router = APIRouter(tags=["mail"])

    def settings() -> Any:
        try:
            return load_mail_settings(site.home, site.config)
        except MailConfigError as exc:
            raise HTTPException(503, f"mail is not configured: {exc}") from None

    def start_subscription(request: Request, email: str, period: str,
                           wishes: dict[str, Any] | None = None) -> tuple[str, str | None]:
        """Validate, rate-limit and record a subscription and deliver its confirmation mail; `wishes`
        holds the content choices (trending, recommendations, tag, alerts, searches), defaults when None.
        Returns the address and None, or why the confirmation mail is not delivered."""
        if period not in PERIODS:
            raise HTTPException(422, f"period: use one of {', '.join(PERIODS)}")
        try:
            email = validate_email(email)
        except InvalidEmail as exc:
            raise HTTPException(422, f"email: {exc}") from None
        user = site.current_user(request)
        # Personal sections only for the signed-in user's own address.
        linked = user is not None and (user.get("email") or "").lower() == email.lower()
        user_id = user["id"] if linked and user else None
        wishes = wishes if wishes is not None else {"trending": True, "recommendations": linked, "alerts": linked}
        try:
            content = subscription_content(linked=linked, **wishes)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        client = request.client.host if request.client else "unknown"
        site.allow("subscribe", f"ip:{client}", f"email:{email.lower()}")
        mail = settings()
        result = subscribe(site.store(), mail, site.secret, email, period=period,
                           user_id=user_id, content=content, trusted=False)
        # One try within the request; a mail that fails waits in the outbox for `digest send`.
        quick = dataclasses.replace(mail, retries=0, timeout=min(mail.timeout, SMTP_TIMEOUT))
        if result.confirmation_queued:
            return email, deliver_confirmation(site.home, site.store(), quick, result.subscription)
        problem = probe(quick)
        return email, f"queued, not delivered: {problem}" if problem else None

    def form_page(request: Request, status_code: int = 200, **context: Any) -> Response:
        user = site.current_user(request)
        tags = [t for t in Library(site.store()).tags(user["id"]) if t] if user else []
        user_email = (user or {}).get("email") or ""
        form = {"email": user_email, "period": "daily", "trending": True, "recommendations": "*", "alerts": True,
                "keywords": ""} | context.pop("form", {})
        return site.render(request, "mail_page.html", status_code=status_code, subscribe_form=True, tags=tags,
                           user_email=user_email, max_searches=MAX_SEARCHES, form=form, **context)

    @router.get("/subscribe", summary="The subscribe form")
    def subscribe_page(request: Request) -> Response:
        return form_page(request, title="Get papers in your inbox",
                         message="A daily or weekly mail with what you choose: trending papers, keyword alerts "
                                 "and, when you are logged in with the same address, recommendations from "
                                 "your library. A paper is never mailed to you twice, and a day with nothing "
                                 "new sends nothing.")

    @router.post("/subscribe", summary="Subscribe from the site form (sends a confirmation mail)")
    def subscribe_form(request: Request,
                       email: Annotated[str, Form(max_length=300)] = "",
                       period: Annotated[str, Form(max_length=20)] = "daily",
                       trending: Annotated[bool, Form()] = False,
                       recommendations: Annotated[str, Form(max_length=80)] = "",
                       alerts: Annotated[bool, Form()] = False,
                       keywords: Annotated[str, Form(max_length=4000)] = "",
                       csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
        site.check_csrf(request, csrf_token)
        # recommendations: "" (none), "*" (the whole library) or "tag:NAME" (one tag)
        wishes = {"trending": trending, "recommendations": bool(recommendations),
                  "tag": recommendations[4:] if recommendations.startswith("tag:") else None,
                  "alerts": alerts, "searches": [k for k in keywords.splitlines() if k.strip()]}
        try:
            email, problem = start_subscription(request, email, period, wishes)
        except HTTPException as exc:
            if exc.status_code != 422:
                raise
            form = {"email": email, "period": period, "trending": trending, "recommendations": recommendations,
                    "alerts": alerts, "keywords": keywords}
            return form_page(request, status_code=422, title="Get papers in your inbox", message="",
                             error=str(exc.detail), form=form)
        if problem:
            return site.render(request, "mail_page.html", title="Confirmation mail not sent yet", problem=True,
                               message=f"Your subscription for {email} is recorded and its confirmation mail is "
                                       f"{problem}. It is sent when the mail server can be reached again; "
                                       "nothing starts until you follow its link.")
        return site.render(request, "mail_page.html", title="Check your inbox",
                           message=f"A confirmation mail is on its way to {email} unless one went out minutes "
                                   "ago. Nothing starts or changes until you follow its link.")

    @router.post("/api/subscribe", status_code=202, summary="Subscribe an address (JSON: email, period)")
    async def subscribe_api(request: Request) -> Response:
        # JSON only: a cross-site form cannot send it without a CORS preflight, which we never allow.
        # The media type itself, not a substring: "text/plain; application/json" is a simple request
        # that a cross-site page can send without a preflight.
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            raise HTTPException(415, "send JSON (Content-Type: application/json): "
                                     "{\"email\": …, \"period\": \"daily\"|\"weekly\"}")
        try:
            body = await request.json()
        except ValueError:
            raise HTTPException(422, "body is not JSON") from None
        except RecursionError:  # the standard decoder recurses once per level of nesting
            raise HTTPException(400, "body: JSON nested too deeply") from None
        if not isinstance(body, dict) or not isinstance(body.get("email"), str):
            raise HTTPException(422, "email: required")
        period = body.get("period", "daily")
        if not isinstance(period, str):
            raise HTTPException(422, f"period: use one of {', '.join(PERIODS)}")
        wishes = None
        if any(key in body for key in ("trending", "recommendations", "tag", "alerts", "searches")):
            searches, tag = body.get("searches", []), body.get("tag")
            if not isinstance(searches, list) or not all(isinstance(q, str) for q in searches):
                raise HTTPException(422, "searches: a list of strings")
            if tag is not None and not isinstance(tag, str):
                raise HTTPException(422, "tag: a string")
            wishes = {"trending": bool(body.get("trending", True)), "recommendations":
                      bool(body.get("recommendations", False)), "tag": tag,
                      "alerts": bool(body.get("alerts", False)), "searches": searches[:100]}
        email, problem = await run_in_threadpool(start_subscription, request, body["email"], period, wishes)
        answer = {"email": email, "status": "pending_confirmation", "confirmation": "queued" if problem else "sent"}
        return JSONResponse(answer | ({"error": problem} if problem else {}), status_code=202)

    @router.get("/mail/confirm/{token}", summary="Confirm a subscription (link from the confirmation mail)")
    def confirm(request: Request, token: str) -> Response:
        sub = confirm_token(site.store(), site.secret, token)
        if sub is None:
            raise HTTPException(400, "this confirmation link is invalid or has expired; subscribe again")
        receives = ", ".join(describe_content(sub.content))
        return site.render(request, "mail_page.html", title="Subscribed",
                           message=f"{sub.email} will get the {sub.period} paperwire digest: {receives}.")

    @router.get("/mail/unsubscribe/{token}", summary="The unsubscribe page (link from every digest)")
    def unsubscribe_page(request: Request, token: str) -> Response:
        sub = subscription_for_unsubscribe(site.store(), site.secret, token)
        if sub is None:
            raise HTTPException(400, "this unsubscribe link is invalid")
        if sub.status == "unsubscribed":
            return site.render(request, "mail_page.html", title="Unsubscribed",
                               message=f"{sub.email} gets no more paperwire mail.")
        return site.render(request, "mail_page.html", title="Unsubscribe", email=sub.email,
                           message=f"Stop the {sub.period} paperwire digest to {sub.email}?",
                           unsubscribe_action=request.url.path)

    @router.post("/mail/unsubscribe/{token}", summary="Unsubscribe (RFC 8058 one-click POST)")
    def unsubscribe_post(request: Request, token: str,
                         one_click: Annotated[str, Form(alias="List-Unsubscribe", max_length=50)] = "") -> Response:
        if one_click != ONE_CLICK:
            raise HTTPException(400, "expected List-Unsubscribe=One-Click")
        sub = unsubscribe(site.store(), site.secret, token)
        if sub is None:
            raise HTTPException(400, "this unsubscribe link is invalid")
        return site.render(request, "mail_page.html", title="Unsubscribed",
                           message=f"{sub.email} gets no more paperwire mail.")

    return router
