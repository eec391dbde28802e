"""The home's signing key: one key for session cookies, CSRF tokens and the links in mails, whoever
signs them (the web app, a digest run from cron, the CLI)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from paperwire.config import load_config

SECRET_FILE = "secret_key"


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


def signing_secret(home: Path, config: Mapping[str, Any] | None = None) -> str:
    """The key everything of this home signs with. `config` is the configuration in force (an app's
    own, with what it was given on top of config.toml and the environment); without it, the home's."""
    settings = load_config(home) if config is None else config
    return load_secret(home, str(settings.get("PAPERWIRE_SECRET_KEY") or "") or None)
