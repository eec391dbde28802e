"""Passwords, signed session cookies, CSRF tokens and rate limits."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import deque
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer

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


def load_secret(home: Path, configured: str | None = None) -> str:
    """The signing key: PAPERWIRE_SECRET_KEY if set, else a random key kept in the home (mode 0600)."""
    if configured:
        return configured
    path = home / SECRET_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        home.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key


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


class RateLimiter:
    """Sliding-window limits per (action, key), e.g. login attempts per address and per user name."""

    def __init__(self, limits: dict[str, tuple[int, float]]) -> None:
        self.limits = limits
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, action: str, key: str) -> bool:
        """Count one attempt; False (and not counted) when the window is already full."""
        if action not in self.limits:
            return True
        count, seconds = self.limits[action]
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault((action, key), deque())
            while hits and hits[0] <= now - seconds:
                hits.popleft()
            if len(hits) >= count:
                return False
            hits.append(now)
            if len(self._hits) > 100_000:  # forget idle keys so memory stays bounded
                self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > now - 3600}
            return True

    def retry_after(self, action: str) -> int:
        return int(self.limits.get(action, (0, 60))[1])


DEFAULT_LIMITS: dict[str, tuple[int, float]] = {
    "login": (10, 300.0),  # per address and per user name
    "signup": (5, 3600.0),
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
