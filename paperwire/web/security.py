"""Passwords, signed session cookies, CSRF tokens and rate limits."""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from zxcvbn import zxcvbn

from paperwire.store.rate_limits import Bucket, RateLimits, Refused

if TYPE_CHECKING:
    from paperwire.store import SQLiteStore

SESSION_COOKIE = "pw_session"
CSRF_COOKIE = "pw_csrf"
SESSION_MAX_AGE = 30 * 24 * 3600
SECRET_FILE = "secret_key"

_hasher = PasswordHasher()
# Verifying against this keeps a login for an unknown name as slow as one with a wrong password.
_DUMMY_HASH = _hasher.hash("not a password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,31}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
MIN_STRENGTH = 2  # zxcvbn's score 0-4: 2 is "somewhat guessable", beyond ten million guesses
_STRENGTH_CHARS = 72  # zxcvbn refuses longer input; the first 72 characters decide anyway


def username_problem(username: str) -> str | None:
    """Why a new account's name is refused (one plain sentence), or None."""
    if not USERNAME_RE.fullmatch(username):
        return "Choose a name of 2–32 letters, digits, '.', '_' or '-', starting with a letter or digit."
    return None


def password_problem(password: str, *, user_inputs: tuple[str, ...] = ()) -> str | None:
    """Why a new password is refused (one plain sentence), or None when it is good enough: at least
    MIN_PASSWORD characters and hard enough to guess (zxcvbn: common passwords, words, dates,
    keyboard runs, repeats, and the user's own name or address)."""
    if len(password) < MIN_PASSWORD:
        return f"Choose a password of at least {MIN_PASSWORD} characters."
    if len(password) > MAX_PASSWORD:
        return f"Choose a password of at most {MAX_PASSWORD} characters."
    result = zxcvbn(password[:_STRENGTH_CHARS], user_inputs=[u for u in user_inputs if u])
    if result["score"] >= MIN_STRENGTH:
        return None
    feedback = result.get("feedback") or {}
    warning = (feedback.get("warning") or "").rstrip(".")
    advice = " ".join(feedback.get("suggestions") or []) or "Use a few uncommon words together."
    why = f": {warning[0].lower()}{warning[1:]}" if warning else ""
    return f"That password is too easy to guess{why}. {advice}"


def load_secret(home: Path, configured: str | None = None) -> str:
    """The signing key: PAPERWIRE_SECRET_KEY if set, else a random key kept in the home (mode 0600)."""
    if configured:
        return configured
    path = home / SECRET_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    home.mkdir(parents=True, exist_ok=True)
    # Written whole under another name, then linked into place: the worker processes of one
    # `serve --workers N` start together, and each must read the one key that wins, never half of it.
    draft = home / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48))
    try:
        os.link(draft, path)
    except FileExistsError:
        pass  # another process was first: use its key
    finally:
        draft.unlink()
    return path.read_text().strip()


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
