"""Mails as bytes: multipart text + HTML from jinja2 templates, built with the email package.

Nothing a user typed goes into a header unchecked: the recipient is validated at subscribe time
and again here, subjects are fixed text, and the email package refuses CR/LF in any header."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from paperwire.digest.settings import MailSettings
from paperwire.model import Paper

MAX_EMAIL_LENGTH = 254
# Deliberately narrower than RFC 5322: ASCII, no quoting, no comments, a dotted domain.
_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
ABSTRACT_CHARS = 320


class InvalidEmail(ValueError):
    pass


def validate_email(text: str) -> str:
    """The address, stripped; raises InvalidEmail (one line) for anything that is not a plain address."""
    value = (text or "").strip()
    if not value or len(value) > MAX_EMAIL_LENGTH or not _EMAIL_RE.match(value) or ".." in value:
        raise InvalidEmail(f"not an email address: {value[:80]!r}")
    return value


@lru_cache(maxsize=1)
def templates() -> Environment:
    env = Environment(loader=PackageLoader("paperwire", "digest/templates"),
                      autoescape=select_autoescape(["html"], default_for_string=False, default=False),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["short"] = short_text
    return env


def short_text(text: str, limit: int = ABSTRACT_CHARS) -> str:
    """The start of a text, cut at a word boundary."""
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:.") + " …"


@dataclass
class DigestItem:
    paper: Paper
    url: str
    why: str = ""

    @property
    def authors(self) -> str:
        names = self.paper.authors
        return ", ".join(names[:6]) + (" et al." if len(names) > 6 else "")


@dataclass
class DigestSection:
    title: str
    items: list[DigestItem] = field(default_factory=list)


def build_message(settings: MailSettings, *, to: str, subject: str, template: str, context: dict[str, Any],
                  unsubscribe_url: str | None = None, now: datetime | None = None) -> tuple[str, bytes]:
    """(Message-ID, RFC 5322 bytes with CRLF line ends) for one mail."""
    to = validate_email(to)
    env = templates()
    values = {**context, "base_url": settings.base_url, "unsubscribe_url": unsubscribe_url}
    text = env.get_template(template + ".txt").render(values)
    html = env.get_template(template + ".html").render(values)
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = settings.mail_from
    msg["To"] = Address(addr_spec=to)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    message_id = make_msgid(idstring="paperwire", domain=settings.domain)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    if unsubscribe_url:
        # RFC 8058: a mail client may POST "List-Unsubscribe=One-Click" to this URL.
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg["List-Id"] = f"paperwire digest <digest.{settings.domain}>"
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    return message_id, msg.as_bytes()
