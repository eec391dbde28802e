"""Double opt-in: subscribe (pending + a confirmation mail), confirm by signed link, unsubscribe by signed link.

What a subscription receives is its `content`: trending papers, recommendations (from the linked
user's whole library or one tag), the linked user's keyword alerts, and keyword alerts of its own.
A change asked for from the site to an active subscription is confirmed by mail like a new one:
whoever types an address into a form must not be able to change what that address receives."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paperwire.digest.compose import build_message, validate_email
from paperwire.digest.deliver import deliver
from paperwire.digest.settings import MailSettings
from paperwire.digest.tokens import CONFIRM, UNSUBSCRIBE, make_token, read_token, token_matches
from paperwire.store.library import MAX_QUERY_LENGTH, clean_tag
from paperwire.store.mail import ACTIVE, PENDING, PERIODS, QUEUED, SENT, UNSUBSCRIBED, MailStore, Subscription

# A confirmation mail at most this often per address: the subscribe form cannot be used to flood someone.
CONFIRM_RESEND_SECONDS = 600
MAX_SEARCHES = 10


class NothingToReceive(ValueError):
    def __str__(self) -> str:
        return "choose something to receive: trending papers, recommendations or keyword alerts"


@dataclass
class SubscribeResult:
    subscription: Subscription
    confirmation_queued: bool  # False: nothing to confirm, or a confirmation went out moments ago
    change_requested: bool = False  # an active subscription's change waits for the confirm link
    outbox_id: int | None = None  # the confirmation mail queued by this call


def subscription_content(*, trending: bool = True, recommendations: bool = False, tag: str | None = None,
                         alerts: bool = False, searches: list[str] | tuple[str, ...] = (),
                         linked: bool = False) -> dict[str, Any]:
    """What a subscription receives, checked. Recommendations and the library's alerts need a linked
    user; raises ValueError (NothingToReceive when nothing is left)."""
    clean_searches: list[str] = []
    for query in searches:
        query = " ".join(str(query).split())
        if len(query) > MAX_QUERY_LENGTH:
            raise ValueError(f"a keyword alert is at most {MAX_QUERY_LENGTH} characters")
        if query and query not in clean_searches:
            clean_searches.append(query)
    if len(clean_searches) > MAX_SEARCHES:
        raise ValueError(f"at most {MAX_SEARCHES} keyword alerts")
    tag = clean_tag(tag) or None
    content = {"trending": bool(trending), "recommendations": bool(recommendations and linked),
               "tag": tag if recommendations and linked else None, "alerts": bool(alerts and linked),
               "searches": clean_searches}
    if not (content["trending"] or content["recommendations"] or content["alerts"] or clean_searches):
        raise NothingToReceive()
    return content


def describe_content(content: dict[str, Any]) -> list[str]:
    """The content as short phrases for mails and pages."""
    out = []
    if content.get("recommendations"):
        tag = content.get("tag")
        out.append(f"recommendations for your “{tag}” papers" if tag else "recommendations from your library")
    if content.get("alerts"):
        out.append("new papers for your saved keyword alerts")
    out += [f"new papers for “{q}”" for q in content.get("searches") or []]
    if content.get("trending", True):
        out.append("trending papers")
    return out


def request_hash(requested: dict[str, Any] | None) -> str | None:
    if not requested:
        return None
    return hashlib.sha256(json.dumps(requested, sort_keys=True).encode()).hexdigest()[:16]


def confirm_url(settings: MailSettings, secret: str, sub: Subscription) -> str:
    token = make_token(secret, CONFIRM, sub.id, sub.email, request_hash(sub.requested))
    return settings.link(f"/mail/confirm/{token}")


def unsubscribe_url(settings: MailSettings, secret: str, sub: Subscription) -> str:
    return settings.link(f"/mail/unsubscribe/{make_token(secret, UNSUBSCRIBE, sub.id, sub.email)}")


def subscribe(store: Any, settings: MailSettings, secret: str, email: str, *, period: str = "daily",
              user_id: int | None = None, content: dict[str, Any] | None = None,
              trusted: bool = True) -> SubscribeResult:
    """Record the wish and queue the confirmation mail (delivery is the caller's next step).

    `trusted` (the operator's CLI) changes an active subscription at once; otherwise (the site, the
    API) the change waits for the confirm link mailed to the address."""
    email = validate_email(email)
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    mail = MailStore(store)
    sub = mail.upsert_subscription(email, period, user_id=user_id, content=content, apply_to_active=trusted)
    change = sub.status == ACTIVE and sub.requested is not None
    if sub.status == ACTIVE and not change:
        return SubscribeResult(sub, False)
    last = mail.last_mail_time(sub.id, "confirm")
    now = time.time()
    if last is not None and now - last < CONFIRM_RESEND_SECONDS:
        return SubscribeResult(sub, False, change)
    shown = sub.requested if change and sub.requested else {"period": sub.period, "content": sub.content}
    message_id, message = build_message(
        settings, to=sub.email, subject="Confirm the change to your paperwire digest" if change else
        "Confirm your paperwire subscription", template="confirm",
        context={"email": sub.email, "period": shown["period"], "change": change,
                 "receives": describe_content(shown.get("content") or {}),
                 "confirm_url": confirm_url(settings, secret, sub)})
    queued = mail.enqueue(dedupe_key=f"confirm:{sub.id}:{time.time_ns()}", subscription_id=sub.id, kind="confirm",
                          recipient=sub.email, message_id=message_id, message=message)
    return SubscribeResult(sub, queued is not None, change, queued)


def deliver_confirmation(home: Path, store: Any, settings: MailSettings, sub: Subscription) -> str | None:
    """Deliver the due confirmation mails and say what became of the subscriber's newest one: None
    when the SMTP server took it (or there is none), else why not, as one line such as
    "queued, not delivered: SMTP unreachable (HOST:PORT): Connection refused"."""
    report = deliver(home, store, settings, kinds=("confirm",))
    latest = MailStore(store).latest_mail(sub.id, "confirm")
    if latest is None or latest.status == SENT:
        return None
    reason = report.undelivered.get(latest.id) or latest.last_error or "not tried yet"
    if latest.status == QUEUED:
        return f"queued, not delivered: {reason}"
    return f"not delivered: {reason}"


def confirm(store: Any, secret: str, token: str) -> Subscription | None:
    """Activate the subscription a confirm link names (and apply the change it was mailed for);
    None if the link is invalid or expired."""
    payload = read_token(secret, CONFIRM, token)
    if payload is None:
        return None
    mail = MailStore(store)
    sub = mail.get(payload[0])
    if sub is None or not token_matches(payload, sub.id, sub.email) or sub.status == UNSUBSCRIBED:
        return None
    if payload[2] is not None and payload[2] == request_hash(sub.requested):
        mail.apply_request(sub.id)
    if sub.status == PENDING:
        mail.activate(sub.id)
    return mail.get(sub.id)


def subscription_for_unsubscribe(store: Any, secret: str, token: str) -> Subscription | None:
    payload = read_token(secret, UNSUBSCRIBE, token)
    if payload is None:
        return None
    sub = MailStore(store).get(payload[0])
    return sub if sub is not None and token_matches(payload, sub.id, sub.email) else None


def unsubscribe(store: Any, secret: str, token: str) -> Subscription | None:
    """Unsubscribe the address an unsubscribe link names (idempotent); None if the link is invalid."""
    sub = subscription_for_unsubscribe(store, secret, token)
    if sub is None:
        return None
    mail = MailStore(store)
    mail.unsubscribe(sub.id)
    return mail.get(sub.id)
