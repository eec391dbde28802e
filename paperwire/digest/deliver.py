"""Deliver the outbox over SMTP, exactly once as far as SMTP allows.

Each mail goes through MAIL FROM, RCPT TO and DATA. Only when the server has answered DATA with
354 ("send the body") is the row committed as `sending`; then the body and its final dot are
written and, on the server's 250, the row is committed as `sent`.

The crash window: a process killed after the body reached the server but before `sent` was
committed cannot know whether the server took the mail. SMTP gives no way to ask. We count such a
`sending` row as delivered (never send it again) because:
  * a kill before `sending` (connecting, MAIL, RCPT, waiting for 354) leaves the row `queued`:
    the server cannot have the message, so the next run sends it;
  * between committing `sending` and the server reading the final dot there is only the write of
    already-built bytes (microseconds on an idle machine, milliseconds on a loaded one: a kill timed
    at random on a machine at load 20 lost one mail in about 11 runs), while after the dot the
    server owns the mail. Re-sending would duplicate in the common case to save the rare one.
The same rule applies when the connection drops while we wait for the reply to the body.
Such mails are reported as "uncertain". The Message-ID is fixed when the mail is queued, so a
receiving system that de-duplicates by Message-ID sees the same id in any case.

Temporary failures (no connection, 4xx) retry with exponential backoff within the run and stay
queued for the next run; permanent ones (5xx) and mails past max_attempts are marked failed.
A mail still waiting on its backoff when a run starts is not tried, but it is reported (`deferred`)
and counted as not delivered: a run never says all is well while mail sits in the outbox.
Overlapping cron runs or server nodes never send a mail twice: each attempt is made under the
mail's claim (paperwire/store/mail.py). On PostgreSQL runs go side by side, each passing over the
mails another one holds; on SQLite one run delivers at a time (a lock file beside the database).
"""

from __future__ import annotations

import re
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from paperwire.digest.settings import MailSettings
from paperwire.store.mail import QUEUED, MailStore, OutboxItem

_LEADING_DOT = re.compile(rb"(?m)^\.")


class TemporaryFailure(Exception):
    """Try again later (no connection, 4xx)."""


class Unreachable(TemporaryFailure):
    """No SMTP session could be opened."""


class NoConnection(Unreachable):
    """Nothing answered at the SMTP server's address (refused, timed out, no such host)."""


class PermanentFailure(Exception):
    """The server refused this mail for good (5xx)."""


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0  # not delivered in this run (still queued for retry, or failed for good)
    failed_for_good: int = 0
    uncertain: int = 0  # handed over, reply lost: counted as sent, never re-sent
    recovered: int = 0  # left `sending` by a killed run: counted as sent
    retries: int = 0
    deferred: int = 0  # still queued, waiting on the backoff of an earlier failure: not tried (in `failed` too)
    errors: list[str] = field(default_factory=list)
    undelivered: dict[int, str] = field(default_factory=dict)  # outbox id -> why it is not delivered

    def summary(self) -> str:
        first = self.errors[0] if self.errors else "unknown error"
        return f"{self.failed} mail{'s' if self.failed != 1 else ''} not delivered: {first}"


def connect(settings: MailSettings) -> smtplib.SMTP:
    """An SMTP session ready for MAIL FROM; raises TemporaryFailure or PermanentFailure."""
    try:
        if settings.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                                  context=settings.tls_context())
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        smtp.ehlo()
        if settings.security == "starttls":
            smtp.starttls(context=settings.tls_context())
            smtp.ehlo()
        if settings.user:
            smtp.login(settings.user, settings.password or "")
        return smtp
    except smtplib.SMTPAuthenticationError as exc:
        raise Unreachable(f"SMTP login to {settings.describe()} refused ({exc.smtp_code})") from None
    except ssl.SSLCertVerificationError as exc:
        raise Unreachable(f"the TLS certificate of SMTP server {settings.describe()} is not trusted "
                          f"({exc.verify_message}); PAPERWIRE_SMTP_CA_FILE can name the CA to trust") from None
    except smtplib.SMTPNotSupportedError as exc:  # no STARTTLS or no AUTH where the settings ask for it
        raise Unreachable(f"SMTP server {settings.describe()}: {str(exc).rstrip('.')}") from None
    except (OSError, smtplib.SMTPException) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise NoConnection(f"SMTP unreachable ({settings.describe()}): {reason}") from None


def probe(settings: MailSettings) -> str | None:
    """Whether an SMTP session can be opened now: None, or why not (one line)."""
    try:
        smtp = connect(settings)
    except (TemporaryFailure, PermanentFailure) as exc:
        return str(exc)
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()
    return None


def _check(code: int, reply: bytes, what: str, ok: tuple[int, ...]) -> None:
    if code in ok:
        return
    text = f"{what}: {code} {reply.decode('utf-8', 'replace')[:200]}"
    if 500 <= code < 600:
        raise PermanentFailure(text)
    raise TemporaryFailure(text)


def _data_bytes(message: bytes) -> bytes:
    """The DATA payload: CRLF line ends, leading dots doubled, the terminating dot line."""
    body = message.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    body = _LEADING_DOT.sub(b"..", body)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def send_one(smtp: smtplib.SMTP, settings: MailSettings, mail: MailStore, item: OutboxItem) -> str:
    """One mail over an open session, under its claim (`MailStore.claim`): 'sent', 'uncertain' or
    'skipped'; raises on failure."""
    try:
        _check(*smtp.mail(settings.from_address), "MAIL FROM", (250,))
        _check(*smtp.rcpt(item.recipient), f"RCPT TO {item.recipient}", (250, 251))
        _check(*smtp.docmd("DATA"), "DATA", (354,))
    except (OSError, smtplib.SMTPException) as exc:
        raise TemporaryFailure(f"SMTP session to {settings.describe()} lost ({exc})") from None
    if not mail.mark_sending(item.id):
        smtp.close()  # the server drops a transaction whose body never ends
        return "skipped"
    try:
        smtp.send(_data_bytes(item.message))
        code, reply = smtp.getreply()
    except (OSError, smtplib.SMTPException):
        mail.mark_sent(item.id)  # handed over, reply lost: see the module docstring
        return "uncertain"
    if code == 250:
        mail.mark_sent(item.id)
        return "sent"
    text = f"message body: {code} {reply.decode('utf-8', 'replace')[:200]}"
    if 500 <= code < 600:
        raise PermanentFailure(text)
    raise TemporaryFailure(text)


def deliver(home: Path, store: object, settings: MailSettings, *, kinds: tuple[str, ...] | None = None,
            sleep: Callable[[float], None] = time.sleep) -> DeliveryReport:
    """Send every due mail in the outbox (all kinds, or only `kinds`)."""
    mail = MailStore(store)  # type: ignore[arg-type]
    report = DeliveryReport()
    with mail.delivery_run():
        report.recovered = mail.recover_interrupted()
        now = time.time()
        items = mail.due(now, kinds=kinds)
        waiting, due_at, last_error = mail.waiting(now, kinds=kinds)
        smtp: smtplib.SMTP | None = None
        try:
            for position, item in enumerate(items):
                smtp, unreachable = _deliver_with_retries(item, settings, mail, report, sleep, smtp, due_by=now)
                if unreachable:
                    # The rest would fail the same way: leave them queued for the next run.
                    rest = items[position + 1:]
                    report.failed += len(rest)
                    report.undelivered.update({other.id: report.errors[-1] for other in rest})
                    break
        finally:
            if smtp is not None:
                try:
                    smtp.quit()
                except (OSError, smtplib.SMTPException):
                    smtp.close()
    if waiting:
        report.deferred = waiting
        report.failed += waiting
        when = datetime.fromtimestamp(due_at, UTC).strftime("%H:%M:%S UTC")
        report.errors.append(f"{waiting} mail{'s' if waiting != 1 else ''} waiting until {when} to retry "
                             f"({last_error or 'an earlier attempt failed'})")
    return report


def _deliver_with_retries(item: OutboxItem, settings: MailSettings, mail: MailStore, report: DeliveryReport,
                          sleep: Callable[[float], None], smtp: smtplib.SMTP | None, *,
                          due_by: float) -> tuple[smtplib.SMTP | None, bool]:
    """Deliver one mail: (session to reuse, whether the server was unreachable). Each attempt holds the
    mail's claim; a mail another delivery holds, or one no longer queued, is left to it."""
    for attempt in range(settings.retries + 1):
        # The first attempt only while the mail is still due (another run may have tried it since it
        # was listed); retries of this run's own attempts come before their backoff is up.
        with mail.claim(item.id, due_by=due_by if attempt == 0 else None) as held:
            if not held:
                return smtp, False
            try:
                if smtp is None:
                    smtp = connect(settings)
                outcome = send_one(smtp, settings, mail, item)
                if outcome in ("sent", "uncertain"):
                    report.sent += 1
                if outcome == "uncertain":
                    report.uncertain += 1
                if outcome != "sent":
                    smtp = _drop(smtp)
                return smtp, False
            except PermanentFailure as exc:
                mail.mark_failed(item.id, str(exc))
                report.failed += 1
                report.failed_for_good += 1
                report.errors.append(str(exc))
                report.undelivered[item.id] = str(exc)
                return _reset(smtp), False
            except TemporaryFailure as exc:
                smtp = _drop(smtp)
                # Each try counts once: mark_sending already counted a try that reached the body.
                mail.mark_retry(item.id, str(exc), time.time() + settings.backoff * 2 ** (attempt + 1),
                                counted=mail.status(item.id) != QUEUED)
                if attempt == settings.retries:
                    report.failed += 1
                    report.errors.append(str(exc))
                    report.undelivered[item.id] = str(exc)
                    attempts = mail.attempts(item.id)
                    if attempts >= settings.max_attempts:
                        mail.mark_failed(item.id, f"{exc} (gave up after {attempts} attempts)")
                        report.failed_for_good += 1
                    return None, isinstance(exc, Unreachable)
        report.retries += 1
        sleep(settings.backoff * 2 ** attempt)  # not holding the claim
    return smtp, False


def _drop(smtp: smtplib.SMTP | None) -> None:
    """Close a session that may be mid-transaction (the server discards an unfinished one)."""
    if smtp is not None:
        try:
            smtp.close()
        except OSError:
            pass
    return None


def _reset(smtp: smtplib.SMTP | None) -> smtplib.SMTP | None:
    """After a refused mail, RSET so the session can carry the next one."""
    if smtp is None:
        return None
    try:
        smtp.rset()
        return smtp
    except (OSError, smtplib.SMTPException):
        return _drop(smtp)
