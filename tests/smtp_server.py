"""A real SMTP server (aiosmtpd) on a loopback port that records every message it accepts.

It can stall on the n-th message, before RCPT is answered or after the body has arrived, so a
test can kill the sender at a known point of the SMTP conversation."""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool = False  # the session was encrypted (STARTTLS or implicit TLS)
    login: str | None = None  # who authenticated, if anyone

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]

    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]

    def html(self) -> str:
        return self.message.get_body(("html",)).get_content()  # type: ignore[union-attr]


class Recorder:
    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.stall_rcpt_at: int | None = None  # stall while answering RCPT of the n-th message
        self.stall_data_at: int | None = None  # stall after the n-th message's body arrived (it counts as taken)
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.port = 0
        self.implicit_tls = False

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.rcpt_tos]

    async def _stall(self) -> None:
        self.stalled.set()
        await asyncio.get_running_loop().run_in_executor(None, self.release.wait)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.stall_rcpt_at == len(self.messages) + 1:
            self.stall_rcpt_at = None
            await self._stall()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                      bytes(envelope.original_content or envelope.content),
                                      tls=session.ssl is not None or self.implicit_tls, login=login))
        if self.stall_data_at == len(self.messages):
            self.stall_data_at = None
            await self._stall()
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files for localhost / 127.0.0.1, made with the openssl command."""
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def _authenticator(user: str, password: str) -> Any:
    def check(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == \
            (user.encode(), password.encode())
        return AuthResult(success=ok, handled=False, auth_data=auth_data)
    return check


@contextmanager
def smtp_server(*, security: str = "none", certificate: tuple[Path, Path] | None = None,
                login: tuple[str, str] | None = None) -> Iterator[Recorder]:
    """A recording server; `security` "starttls" (required) or "ssl" (implicit TLS) needs `certificate`;
    `login` (user, password) makes AUTH required."""
    recorder = Recorder()
    recorder.port = free_port()
    options: dict[str, Any] = {}
    if security != "none":
        assert certificate is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(certificate[0]), str(certificate[1]))
        if security == "starttls":
            options.update(tls_context=context, require_starttls=True)
        else:
            options.update(ssl_context=context)
            recorder.implicit_tls = True
    if login is not None:
        options.update(authenticator=_authenticator(*login), auth_required=True,
                       auth_require_tls=security == "starttls")
    controller = Controller(recorder, hostname="127.0.0.1", port=recorder.port, **options)
    controller.start()
    try:
        yield recorder
    finally:
        recorder.release.set()
        controller.stop()


def kill_when_stalled(smtp: Recorder, sender: subprocess.Popen[bytes], seconds: float) -> None:
    """kill -9 `sender` once the server holds the mail it was told to stall at (`stall_rcpt_at` or
    `stall_data_at`), then let the server go on; the sender's exit status is left for the test to check."""
    try:
        assert smtp.stalled.wait(seconds), sender.stderr.read().decode() if sender.poll() is not None and \
            sender.stderr else "no stall"
        sender.send_signal(signal.SIGKILL)
        sender.wait(30)
    finally:
        if sender.poll() is None:
            sender.kill()
        smtp.release.set()
