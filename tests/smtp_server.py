"""A real SMTP server (aiosmtpd) on a loopback port that records every message it accepts.

It can stall on the n-th message, before RCPT is answered or after the body has arrived, so a
test can kill the sender at a known point of the SMTP conversation."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

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
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content
                                                                                         or envelope.content)))
        if self.stall_data_at == len(self.messages):
            self.stall_data_at = None
            await self._stall()
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def smtp_server() -> Iterator[Recorder]:
    recorder = Recorder()
    recorder.port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=recorder.port)
    controller.start()
    try:
        yield recorder
    finally:
        recorder.release.set()
        controller.stop()
