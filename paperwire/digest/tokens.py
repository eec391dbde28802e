"""Signed links in mails: confirm (expires) and unsubscribe (never expires: old mails must keep working).

A token carries the subscription id and a hash of its address, signed with the home's one key
(paperwire/signing.py; HMAC via itsdangerous), so a token for one address cannot touch another. A
confirm link for a change to an active subscription also carries a hash of the requested settings, so
it applies that request and no later one."""

from __future__ import annotations

import hashlib

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

CONFIRM, UNSUBSCRIBE = "confirm", "unsubscribe"
CONFIRM_MAX_AGE = 7 * 24 * 3600


def _fingerprint(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:16]


def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=f"paperwire.mail.{purpose}")


def make_token(secret: str, purpose: str, subscription_id: int, email: str, request: str | None = None) -> str:
    payload: list[int | str] = [subscription_id, _fingerprint(email)]
    if request is not None:
        payload.append(request)
    return _serializer(secret, purpose).dumps(payload)


def read_token(secret: str, purpose: str, token: str) -> tuple[int, str, str | None] | None:
    """(subscription id, address fingerprint, request hash or None), or None for a forged, mangled or
    expired token."""
    if not token or len(token) > 500:
        return None
    try:
        payload = _serializer(secret, purpose).loads(token, max_age=CONFIRM_MAX_AGE if purpose == CONFIRM else None)
    except (BadSignature, SignatureExpired):
        return None
    if (not isinstance(payload, list) or len(payload) not in (2, 3) or not isinstance(payload[0], int)
            or not all(isinstance(x, str) for x in payload[1:])):
        return None
    return payload[0], payload[1], payload[2] if len(payload) == 3 else None


def token_matches(payload: tuple[int, str, str | None] | None, subscription_id: int, email: str) -> bool:
    return payload is not None and payload[0] == subscription_id and payload[1] == _fingerprint(email)
