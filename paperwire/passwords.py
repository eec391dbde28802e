"""Password hashing (argon2) and the rules for new account names and passwords, used by the web
pages and by `paperwire user add` alike."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

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
