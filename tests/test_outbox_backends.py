"""The outbox on both backends (`store_home`): two deliveries running at once, each with its own store
connection, as two cron runs or two server nodes would, hand every mail to the SMTP server once."""

from __future__ import annotations

import threading
from pathlib import Path

from paperwire.digest.deliver import DeliveryReport, deliver
from paperwire.digest.settings import MailSettings
from paperwire.store import open_store
from paperwire.store.mail import SENT, MailStore
from tests.smtp_server import smtp_server

MAILS = 12


def test_two_deliveries_at_once_send_each_mail_once(store_home: Path) -> None:
    store = open_store(store_home)
    try:
        mail = MailStore(store)
        for n in range(MAILS):
            sub = mail.upsert_subscription(f"reader{n}@example.org", "daily")
            mail.activate(sub.id)
            message = (f"From: paperwire <digest@paperwire.test>\r\nTo: {sub.email}\r\nSubject: digest {n}\r\n"
                       f"Message-ID: <{n}@paperwire.test>\r\n\r\nPapers.\r\n").encode()
            mail.enqueue(dedupe_key=f"digest:{sub.id}:2024-01-04", subscription_id=sub.id, kind="digest",
                         recipient=sub.email, message_id=f"<{n}@paperwire.test>", message=message,
                         paper_ids=[f"2401.{n:05d}"])
    finally:
        store.close()

    reports: list[DeliveryReport] = []
    with smtp_server() as recorder:
        settings = MailSettings(host="127.0.0.1", port=recorder.port, backoff=0.01)

        def run() -> None:
            own = open_store(store_home)
            try:
                reports.append(deliver(store_home, own, settings))
            finally:
                own.close()

        runs = [threading.Thread(target=run) for _ in range(2)]
        for thread in runs:
            thread.start()
        for thread in runs:
            thread.join(timeout=120)
        received = sorted(m.message["Message-ID"] for m in recorder.messages)

    assert len(reports) == 2 and sum(r.sent for r in reports) == MAILS and not any(r.failed for r in reports)
    assert received == sorted(f"<{n}@paperwire.test>" for n in range(MAILS))  # each once
    store = open_store(store_home)
    try:
        assert MailStore(store).outbox_counts() == {SENT: MAILS}
    finally:
        store.close()
