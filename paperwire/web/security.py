"""Signed session cookies, CSRF tokens and rate limits (passwords: paperwire/passwords.py; the key:
paperwire/signing.py)."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from typing import TYPE_CHECKING

from itsdangerous import BadSignature, URLSafeTimedSerializer

from paperwire.store.rate_limits import Bucket, RateLimits, Refused

if TYPE_CHECKING:
    from paperwire.store import SQLiteStore

SESSION_COOKIE = "pw_session"
CSRF_COOKIE = "pw_csrf"
SESSION_MAX_AGE = 30 * 24 * 3600


class Signer:
    """Session cookie values (a signed, timestamped session token) and CSRF tokens."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()
        self._sessions = URLSafeTimedSerializer(secret, salt="paperwire.session")

    def sign_session(self, token: str) -> str:
        return self._sessions.dumps(token)

    def unsign_session(self, value: str | None) -> str | None:
        if not value:
            return None
        try:
            token = self._sessions.loads(value, max_age=SESSION_MAX_AGE)
        except BadSignature:
            return None
        return token if isinstance(token, str) else None

    def csrf_token(self, nonce: str) -> str:
        """The form token for a browser's CSRF cookie nonce: a cross-site page can read neither."""
        return hmac.new(self._secret, b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return hmac.compare_digest(self.csrf_token(nonce), token)


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


class RateLimited(Exception):
    """An attempt over a limit; the message says what and when to try again, in plain words."""

    def __init__(self, action: str, retry_after: float) -> None:
        self.action = action
        self.retry_after = max(1, math.ceil(retry_after))
        minutes = max(1, math.ceil(retry_after / 60))
        what = _LIMIT_WORDS.get(action, f"too many {action} attempts")
        super().__init__(f"{what[0].upper()}{what[1:]}; try again in {minutes} minute{'' if minutes == 1 else 's'}.")


class Ticket:
    """The attempts one request counted, by action, so that some can be given back (a successful
    log-in does not count against the wrong-password limits)."""

    def __init__(self, limits: RateLimits, hits: dict[str, int]) -> None:
        self._limits = limits
        self._hits = hits

    def give_back(self, *actions: str) -> None:
        ids = [self._hits.pop(a) for a in actions if a in self._hits]
        self._limits.give_back(ids)


class RateLimiter:
    """Sliding-window limits per (action, key), counted in the store so that every server process
    and a restart see the same counts."""

    def __init__(self, limits: dict[str, tuple[int, float]]) -> None:
        self.limits = limits

    def take(self, store: SQLiteStore, *attempts: tuple[str, str]) -> Ticket:
        """Count one attempt for each (action, key), all or none; RateLimited when one is full."""
        buckets = [Bucket(action, key, *self.limits[action]) for action, key in attempts if action in self.limits]
        limits = RateLimits(store)
        taken = limits.take(buckets)
        if isinstance(taken, Refused):
            raise RateLimited(taken.bucket.action, taken.retry_after)
        return Ticket(limits, {b.action: hit for b, hit in zip(buckets, taken, strict=True)})


_LIMIT_WORDS = {
    "login": "too many wrong passwords for this name from here",
    "login_name": "too many wrong passwords for this name",
    "login_address": "too many wrong passwords from this address",
    "signup": "too many new accounts from this address",
    "signup_failed": "too many failed sign-ups from this address",
    "vote": "too many votes in a short time",
    "submit": "too many submissions",
    "subscribe": "too many subscription requests",
    "comment": "too many comments in a short time",
}

DEFAULT_LIMITS: dict[str, tuple[int, float]] = {
    "login": (10, 300.0),  # wrong passwords per user name and address together
    # Per name from every address: higher, so one address guessing cannot lock the owner out.
    "login_name": (100, 300.0),
    "login_address": (50, 300.0),  # per address over every name it tries
    "signup": (5, 3600.0),  # accounts made per address; refused attempts count below instead
    "signup_failed": (30, 3600.0),
    "vote": (60, 60.0),
    "submit": (10, 3600.0),
    "subscribe": (5, 3600.0),  # per address and per client: each one sends a mail
    "comment": (10, 600.0),  # new comments per user
}


def parse_limits(config: dict[str, object]) -> dict[str, tuple[int, float]]:
    """Limits from config keys such as PAPERWIRE_RATE_LIMIT_LOGIN = "10/300" (count/seconds)."""
    limits = dict(DEFAULT_LIMITS)
    for action in list(limits):
        raw = config.get(f"PAPERWIRE_RATE_LIMIT_{action.upper()}")
        if raw:
            count, _, seconds = str(raw).partition("/")
            limits[action] = (int(count), float(seconds or 60))
    return limits
