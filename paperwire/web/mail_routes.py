"""Subscribe, confirm and unsubscribe over HTTP.

GET /mail/confirm/{token} activates (the link in the confirmation mail). GET /mail/unsubscribe/{token}
shows a page with a button; POST to the same URL with `List-Unsubscribe=One-Click` unsubscribes
(RFC 8058: mail clients POST it without cookies, so the signed token is the only credential and no
CSRF token is asked for). Subscribing answers the same whatever the address's state, so the form
cannot be used to learn who subscribes; confirmation mails go out after the response. A subscriber
chooses daily or weekly and what to receive (trending, recommendations from their library or one
tag, keyword alerts); changing an active subscription is confirmed by mail too.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from paperwire.digest.compose import InvalidEmail, validate_email
from paperwire.digest.deliver import deliver
from paperwire.digest.settings import MailConfigError, load_mail_settings
from paperwire.digest.subscriptions import (
    MAX_SEARCHES,
    describe_content,
    subscribe,
    subscription_content,
    subscription_for_unsubscribe,
    unsubscribe,
)
from paperwire.digest.subscriptions import confirm as confirm_token
from paperwire.digest.tokens import mail_secret
from paperwire.store.library import Library
from paperwire.store.mail import PERIODS
from paperwire.web.site import Site

ONE_CLICK = "One-Click"


def build_router(site: Site) -> APIRouter:
    router = APIRouter(tags=["mail"])

    def settings() -> Any:
        try:
            return load_mail_settings(site.home, site.config)
        except MailConfigError as exc:
            raise HTTPException(503, f"mail is not configured: {exc}") from None

    def deliver_confirmations() -> None:
        deliver(site.home, site.store(), settings(), kinds=("confirm",))

    def start_subscription(request: Request, email: str, period: str, background: BackgroundTasks,
                           wishes: dict[str, Any] | None = None) -> str:
        """Validate, rate-limit and record a subscription; `wishes` holds the content choices
        (trending, recommendations, tag, alerts, searches), defaults when None."""
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
        result = subscribe(site.store(), settings(), mail_secret(site.home), email, period=period,
                           user_id=user_id, content=content, trusted=False)
        if result.confirmation_queued:
            background.add_task(deliver_confirmations)
        return email

    def form_page(request: Request, **context: Any) -> Response:
        user = site.current_user(request)
        tags = [t for t in Library(site.store()).tags(user["id"]) if t] if user else []
        return site.render(request, "mail_page.html", subscribe_form=True, tags=tags,
                           user_email=(user or {}).get("email") or "", max_searches=MAX_SEARCHES, **context)

    @router.get("/subscribe", summary="The subscribe form")
    def subscribe_page(request: Request) -> Response:
        return form_page(request, title="Get papers in your inbox",
                         message="A daily or weekly mail with what you choose: trending papers, keyword alerts "
                                 "and, when you are logged in with the same address, recommendations from "
                                 "your library. A paper is never mailed to you twice, and a day with nothing "
                                 "new sends nothing.")

    @router.post("/subscribe", summary="Subscribe from the site form (sends a confirmation mail)")
    def subscribe_form(request: Request, background: BackgroundTasks,
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
        email = start_subscription(request, email, period, background, wishes)
        return site.render(request, "mail_page.html", title="Check your inbox",
                           message=f"A confirmation mail is on its way to {email} unless one went out minutes "
                                   "ago. Nothing starts or changes until you follow its link.")

    @router.post("/api/subscribe", status_code=202, summary="Subscribe an address (JSON: email, period)")
    async def subscribe_api(request: Request, background: BackgroundTasks) -> Response:
        # JSON only: a cross-site form cannot send it without a CORS preflight, which we never allow.
        if "application/json" not in request.headers.get("content-type", ""):
            raise HTTPException(415, "send JSON: {\"email\": …, \"period\": \"daily\"|\"weekly\"}")
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
        email = await run_in_threadpool(start_subscription, request, body["email"], period, background, wishes)
        return JSONResponse({"email": email, "status": "pending_confirmation"}, status_code=202)

    @router.get("/mail/confirm/{token}", summary="Confirm a subscription (link from the confirmation mail)")
    def confirm(request: Request, token: str) -> Response:
        sub = confirm_token(site.store(), mail_secret(site.home), token)
        if sub is None:
            raise HTTPException(400, "this confirmation link is invalid or has expired; subscribe again")
        receives = ", ".join(describe_content(sub.content))
        return site.render(request, "mail_page.html", title="Subscribed",
                           message=f"{sub.email} will get the {sub.period} paperwire digest: {receives}.")

    @router.get("/mail/unsubscribe/{token}", summary="The unsubscribe page (link from every digest)")
    def unsubscribe_page(request: Request, token: str) -> Response:
        sub = subscription_for_unsubscribe(site.store(), mail_secret(site.home), token)
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
        sub = unsubscribe(site.store(), mail_secret(site.home), token)
        if sub is None:
            raise HTTPException(400, "this unsubscribe link is invalid")
        return site.render(request, "mail_page.html", title="Unsubscribed",
                           message=f"{sub.email} gets no more paperwire mail.")

    return router
