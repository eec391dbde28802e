"""Subscribe, confirm and unsubscribe over HTTP.

GET /mail/confirm/{token} activates (the link in the confirmation mail). GET /mail/unsubscribe/{token}
shows a page with a button; POST to the same URL with `List-Unsubscribe=One-Click` unsubscribes
(RFC 8058: mail clients POST it without cookies, so the signed token is the only credential and no
CSRF token is asked for). Subscribing answers the same whatever the address's state, so the form
cannot be used to learn who subscribes; confirmation mails go out after the response.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from paperwire.digest.compose import InvalidEmail, validate_email
from paperwire.digest.deliver import deliver
from paperwire.digest.settings import MailConfigError, load_mail_settings
from paperwire.digest.subscriptions import confirm as confirm_token
from paperwire.digest.subscriptions import subscribe, subscription_for_unsubscribe, unsubscribe
from paperwire.digest.tokens import mail_secret
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

    def start_subscription(request: Request, email: str, period: str, background: BackgroundTasks) -> str:
        if period not in PERIODS:
            raise HTTPException(422, f"period: use one of {', '.join(PERIODS)}")
        try:
            email = validate_email(email)
        except InvalidEmail as exc:
            raise HTTPException(422, f"email: {exc}") from None
        client = request.client.host if request.client else "unknown"
        site.allow("subscribe", f"ip:{client}", f"email:{email.lower()}")
        user = site.current_user(request)
        linked = user is not None and (user.get("email") or "").lower() == email.lower()
        user_id = user["id"] if linked and user else None
        content = {"trending": True, "recommendations": user_id is not None, "tag": None,
                   "alerts": user_id is not None, "searches": []}
        result = subscribe(site.store(), settings(), mail_secret(site.home), email, period=period,
                           user_id=user_id, content=content)
        if result.confirmation_queued:
            background.add_task(deliver_confirmations)
        return email

    @router.get("/subscribe", summary="The subscribe form")
    def subscribe_page(request: Request) -> Response:
        return site.render(request, "mail_page.html", title="Get papers in your inbox",
                           message="A daily or weekly mail with trending papers and, when you are logged in "
                                   "with the same address, recommendations from your library.",
                           subscribe_form=True)

    @router.post("/subscribe", summary="Subscribe from the site form (sends a confirmation mail)")
    def subscribe_form(request: Request, background: BackgroundTasks,
                       email: Annotated[str, Form(max_length=300)] = "",
                       period: Annotated[str, Form(max_length=20)] = "daily",
                       csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
        site.check_csrf(request, csrf_token)
        email = start_subscription(request, email, period, background)
        return site.render(request, "mail_page.html", title="Check your inbox",
                           message=f"If {email} is not subscribed yet, a confirmation mail is on its way. "
                                   "The digest starts once you follow its link.")

    @router.post("/api/subscribe", status_code=202, summary="Subscribe an address (JSON: email, period)")
    async def subscribe_api(request: Request, background: BackgroundTasks) -> Response:
        # JSON only: a cross-site form cannot send it without a CORS preflight, which we never allow.
        if "application/json" not in request.headers.get("content-type", ""):
            raise HTTPException(415, "send JSON: {\"email\": …, \"period\": \"daily\"|\"weekly\"}")
        try:
            body = await request.json()
        except ValueError:
            raise HTTPException(422, "body is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("email"), str):
            raise HTTPException(422, "email: required")
        period = body.get("period", "daily")
        if not isinstance(period, str):
            raise HTTPException(422, f"period: use one of {', '.join(PERIODS)}")
        email = await run_in_threadpool(start_subscription, request, body["email"], period, background)
        return JSONResponse({"email": email, "status": "pending_confirmation"}, status_code=202)

    @router.get("/mail/confirm/{token}", summary="Confirm a subscription (link from the confirmation mail)")
    def confirm(request: Request, token: str) -> Response:
        sub = confirm_token(site.store(), mail_secret(site.home), token)
        if sub is None:
            raise HTTPException(400, "this confirmation link is invalid or has expired; subscribe again")
        return site.render(request, "mail_page.html", title="Subscribed",
                           message=f"{sub.email} will get the {sub.period} paperwire digest.")

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
