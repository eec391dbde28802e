"""The outbox on both backends (`store_home`): two deliveries running at once, each with its own store
connection, as two cron runs or two server nodes would, hand every mail to the SMTP server once. On
PostgreSQL they claim mails side by side (neither waits for the other's SMTP round trips); on SQLite
they take turns."""

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
    postgresql = (store_home / "config.toml").exists()
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

    # The first delivery stalls with the first mail's body at the server (the mail is `sending`, its
    # 250 not yet seen) while the second runs.
    reports: dict[str, DeliveryReport] = {}
    with smtp_server() as recorder:
        recorder.stall_data_at = 1
        settings = MailSettings(host="127.0.0.1", port=recorder.port, backoff=0.01)

        def run(name: str) -> None:
            own = open_store(store_home)
            try:
                reports[name] = deliver(store_home, own, settings)
            finally:
                own.close()

        first = threading.Thread(target=run, args=("first",))
        first.start()
        assert recorder.stalled.wait(60)
        second = threading.Thread(target=run, args=("second",))
        second.start()
        if postgresql:  # the second passes over the held mail and sends the rest meanwhile
            second.join(timeout=120)
            assert reports["second"].sent == MAILS - 1 and len(recorder.messages) == MAILS
        recorder.release.set()
        for thread in (first, second):
            thread.join(timeout=120)
        received = sorted(m.message["Message-ID"] for m in recorder.messages)

    # SQLite: the second waits for the first's turn and finds everything sent. Neither counts the mail
    # the first had on the wire as interrupted.
    assert (reports["first"].sent, reports["second"].sent) == ((1, MAILS - 1) if postgresql else (MAILS, 0))
    assert not any(r.failed or r.recovered or r.uncertain for r in reports.values())
    assert received == sorted(f"<{n}@paperwire.test>" for n in range(MAILS))  # each once
    store = open_store(store_home)
    try:
        assert MailStore(store).outbox_counts() == {SENT: MAILS}
    finally:
        store.close()
