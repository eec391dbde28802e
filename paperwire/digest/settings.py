"""SMTP and link settings from the environment or HOME/config.toml (same keys)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from paperwire.config import load_config

SECURITY_MODES = ("none", "starttls", "ssl")
_DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}


class MailConfigError(ValueError):
    """A mail setting that cannot work; the message names the setting."""


@dataclass(frozen=True)
class MailSettings:
    host: str = "localhost"
    port: int = 25
    user: str | None = None
    password: str | None = None
    security: str = "none"
    mail_from: str = "paperwire <paperwire@localhost>"
    base_url: str = "http://127.0.0.1:8000"
    timeout: float = 30.0
    retries: int = 3  # extra attempts within one run, with exponential backoff
    backoff: float = 2.0  # seconds before the first retry
    max_attempts: int = 8  # across runs; then the mail is reported failed for good
    ca_file: str | None = None  # trust this CA (PEM) for STARTTLS/SSL, e.g. a relay with an internal CA

    def tls_context(self) -> ssl.SSLContext:
        """Certificate and host name checked, against the system's CAs or `ca_file`."""
        return ssl.create_default_context(cafile=self.ca_file)

    @property
    def from_address(self) -> str:
        return parseaddr(self.mail_from)[1]

    @property
    def domain(self) -> str:
        return self.from_address.rpartition("@")[2] or "localhost"

    def link(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def describe(self) -> str:
        return f"{self.host}:{self.port}"


def _number(config: dict[str, Any], key: str, default: float, kind: type = int) -> Any:
    value = config.get(key)
    if value in (None, ""):
        return default
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise MailConfigError(f"{key}: not a number: {str(value)[:40]!r}") from None
    if number < 0:
        raise MailConfigError(f"{key}: must not be negative")
    return number


def load_mail_settings(home: Path, config: dict[str, Any] | None = None) -> MailSettings:
    """Settings from PAPERWIRE_SMTP_* / PAPERWIRE_MAIL_FROM / PAPERWIRE_BASE_URL; raises MailConfigError."""
    config = load_config(home) if config is None else config
    security = str(config.get("PAPERWIRE_SMTP_SECURITY") or "none").lower()
    if security not in SECURITY_MODES:
        raise MailConfigError(f"PAPERWIRE_SMTP_SECURITY: use one of {', '.join(SECURITY_MODES)}, not {security!r}")
    port = _number(config, "PAPERWIRE_SMTP_PORT", _DEFAULT_PORTS[security])
    if not 0 < port < 65536:
        raise MailConfigError(f"PAPERWIRE_SMTP_PORT: {port} is not a port")
    mail_from = str(config.get("PAPERWIRE_MAIL_FROM") or MailSettings.mail_from)
    name, address = parseaddr(mail_from)
    try:
        Address(display_name=name, addr_spec=address)
    except (ValueError, IndexError):
        raise MailConfigError(f"PAPERWIRE_MAIL_FROM: not an address: {mail_from[:80]!r}") from None
    if "@" not in address or "\n" in mail_from or "\r" in mail_from:
        raise MailConfigError(f"PAPERWIRE_MAIL_FROM: not an address: {mail_from[:80]!r}")
    base_url = str(config.get("PAPERWIRE_BASE_URL") or MailSettings.base_url)
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MailConfigError(f"PAPERWIRE_BASE_URL: not an http(s) URL: {base_url[:80]!r}")
    ca_file = str(config.get("PAPERWIRE_SMTP_CA_FILE") or "") or None
    if ca_file and not Path(ca_file).is_file():
        raise MailConfigError(f"PAPERWIRE_SMTP_CA_FILE: no such file: {ca_file[:200]!r}")
    return MailSettings(
        host=str(config.get("PAPERWIRE_SMTP_HOST") or "localhost"),
        port=port,
        user=str(config["PAPERWIRE_SMTP_USER"]) if config.get("PAPERWIRE_SMTP_USER") else None,
        password=str(config["PAPERWIRE_SMTP_PASSWORD"]) if config.get("PAPERWIRE_SMTP_PASSWORD") else None,
        security=security,
        mail_from=mail_from,
        base_url=base_url.rstrip("/"),
        timeout=_number(config, "PAPERWIRE_SMTP_TIMEOUT", 30.0, float),
        retries=_number(config, "PAPERWIRE_SMTP_RETRIES", 3),
        backoff=_number(config, "PAPERWIRE_SMTP_BACKOFF", 2.0, float),
        max_attempts=max(1, _number(config, "PAPERWIRE_SMTP_MAX_ATTEMPTS", 8)),
        ca_file=ca_file,
    )
