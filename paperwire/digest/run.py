"""The two things cron (or `serve`) does: queue today's digests, then deliver the outbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from paperwire.digest.deliver import DeliveryReport, deliver
from paperwire.digest.digests import DigestBuilder, EnqueueReport
from paperwire.digest.settings import MailSettings
from paperwire.signing import signing_secret


@dataclass
class DigestRunReport:
    enqueue: EnqueueReport
    delivery: DeliveryReport

    def to_dict(self) -> dict[str, Any]:
        d = self.delivery
        return {"queued": self.enqueue.queued, "sent": d.sent, "failed": d.failed,
                "already_queued": self.enqueue.already_queued, "nothing_new": self.enqueue.nothing_new,
                "subscribers": self.enqueue.subscribers, "new_papers": self.enqueue.candidates,
                "uncertain": d.uncertain, "recovered": d.recovered, "retries": d.retries, "deferred": d.deferred,
                "errors": d.errors[:10]}


def send_digests(home: Path, store: Any, settings: MailSettings, period: str, *, day: date | None = None,
                 index: Any = None, advance: Callable[[int], None] | None = None,
                 on_total: Callable[[int], None] | None = None,
                 config: dict[str, Any] | None = None) -> DigestRunReport:
    """Queue one digest per active subscriber for the period day (idempotent), then deliver everything due.
    `config`: the configuration in force when it is not just the home's (a server's, with its overrides),
    so its links are signed with the key the server checks."""
    secret = signing_secret(home, config)
    # One run of a period at a time, on any node: the period day's window is fixed once.
    with store.exclusive(f"digest-{period}"):
        builder = DigestBuilder(home, store, settings, secret, period, day or date.today(), index=index)
        subs = builder.mail.subscriptions(period=period, status="active")
        if on_total:
            on_total(len(subs))
        queued = builder.enqueue_all(subs, advance)
    return DigestRunReport(queued, deliver(home, store, settings))
