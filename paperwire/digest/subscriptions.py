"""Double opt-in: subscribe (pending + a confirmation mail), confirm by signed link, unsubscribe by signed link."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from paperwire.digest.compose import build_message, validate_email
from paperwire.digest.settings import MailSettings
from paperwire.digest.tokens import CONFIRM, UNSUBSCRIBE, make_token, read_token, token_matches
from paperwire.store.mail import ACTIVE, PERIODS, UNSUBSCRIBED, MailStore, Subscription

# A confirmation mail at most this often per address: the subscribe form cannot be used to flood someone.
CONFIRM_RESEND_SECONDS = 600


@dataclass
class SubscribeResult:
    subscription: Subscription
    confirmation_queued: bool  # False: already active, or a confirmation went out moments ago


def confirm_url(settings: MailSettings, secret: str, sub: Subscription) -> str:
    return settings.link(f"/mail/confirm/{make_token(secret, CONFIRM, sub.id, sub.email)}")


def unsubscribe_url(settings: MailSettings, secret: str, sub: Subscription) -> str:
    return settings.link(f"/mail/unsubscribe/{make_token(secret, UNSUBSCRIBE, sub.id, sub.email)}")


def subscribe(store: Any, settings: MailSettings, secret: str, email: str, *, period: str = "daily",
              user_id: int | None = None, content: dict[str, Any] | None = None) -> SubscribeResult:
    """Record the wish and queue the confirmation mail (delivery is the caller's next step)."""
    email = validate_email(email)
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    mail = MailStore(store)
    sub = mail.upsert_subscription(email, period, user_id=user_id, content=content)
    if sub.status == ACTIVE:
        return SubscribeResult(sub, False)
    last = mail.last_mail_time(sub.id, "confirm")
    now = time.time()
    if last is not None and now - last < CONFIRM_RESEND_SECONDS:
        return SubscribeResult(sub, False)
    message_id, message = build_message(
        settings, to=sub.email, subject="Confirm your paperwire subscription", template="confirm",
        context={"email": sub.email, "period": sub.period, "confirm_url": confirm_url(settings, secret, sub)})
    queued = mail.enqueue(dedupe_key=f"confirm:{sub.id}:{int(now)}", subscription_id=sub.id, kind="confirm",
                          recipient=sub.email, message_id=message_id, message=message)
    return SubscribeResult(sub, queued is not None)


def confirm(store: Any, secret: str, token: str) -> Subscription | None:
    """Activate the subscription a confirm link names; None if the link is invalid or expired."""
    payload = read_token(secret, CONFIRM, token)
    if payload is None:
        return None
    mail = MailStore(store)
    sub = mail.get(payload[0])
    if sub is None or not token_matches(payload, sub.id, sub.email) or sub.status == UNSUBSCRIBED:
        return None
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

