"""Digests end to end against a real SMTP server (aiosmtpd) and the real web app on loopback ports:
subscribe, confirm by the mailed link, receive, unsubscribe by the List-Unsubscribe header, exactly
once under SIGKILL, retries and a reported failure when SMTP is down."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from paperwire.config import load_config
from paperwire.digest.compose import InvalidEmail, validate_email
from paperwire.digest.digests import DigestBuilder
from paperwire.digest.schedule import WEEKDAYS, DigestScheduler, DigestTimes, ScheduleConfigError, parse_times
from paperwire.digest.settings import MailSettings
from paperwire.digest.tokens import CONFIRM, read_token
from paperwire.ingest import ingest_paths
from paperwire.model import make_paper
from paperwire.store import open_store
from paperwire.store.mail import MailStore, Subscription
from paperwire.web.app import create_app
from tests.conftest import SEEDS, cli_json, run_cli
from tests.smtp_server import Recorder, free_port, kill_when_stalled, self_signed_certificate, smtp_server

TOMORROW = (date.today() + timedelta(days=1)).isoformat()
DAY_AFTER = (date.today() + timedelta(days=2)).isoformat()


@pytest.fixture
def smtp() -> Iterator[Recorder]:
    with smtp_server() as recorder:
        yield recorder


@pytest.fixture
def mail_home(store_home: Path) -> Path:
    """The seed pages ingested, on SQLite or on PostgreSQL (every test taking it runs on both)."""
    home = store_home
    store = open_store(home)
    try:
        ingest_paths(store, SEEDS, fmt="hf-page")
    finally:
        store.close()
    return home


def mail_env(monkeypatch: pytest.MonkeyPatch, port: int, base_url: str = "http://127.0.0.1:9") -> None:
    monkeypatch.setenv("PAPERWIRE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PAPERWIRE_SMTP_PORT", str(port))
    monkeypatch.setenv("PAPERWIRE_SMTP_SECURITY", "none")
    monkeypatch.setenv("PAPERWIRE_MAIL_FROM", "paperwire <digest@paperwire.test>")
    monkeypatch.setenv("PAPERWIRE_BASE_URL", base_url)
    monkeypatch.setenv("PAPERWIRE_SMTP_BACKOFF", "0.01")
    monkeypatch.setenv("PAPERWIRE_SKIP_INDEX", "1")


class WebServer:
    """The paperwire app served by uvicorn on a free loopback port (no search index needed for mail)."""

    def __init__(self, home: Path, config: dict[str, Any] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(home, {"PAPERWIRE_BASE_URL": self.url, **(config or {})}, start_index=False)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> WebServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "web server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def link_in(text: str, path: str) -> str:
    match = re.search(r"(http://\S+" + re.escape(path) + r"\S+)", text)
    assert match, f"no {path} link in:\n{text}"
    return match.group(1)


def activate(home: Path, *emails: str, period: str = "daily") -> None:
    store = open_store(home)
    try:
        mail = MailStore(store)
        for email in emails:
            mail.activate(mail.upsert_subscription(email, period).id)
    finally:
        store.close()


def statuses(home: Path) -> dict[str, str]:
    return {s["email"]: s["status"] for s in cli_json(home, "subscribers", "list")}


def test_subscribe_confirm_digest_unsubscribe(mail_home: Path, smtp: Recorder,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    mail_env(monkeypatch, smtp.port)
    with WebServer(mail_home) as web:
        monkeypatch.setenv("PAPERWIRE_BASE_URL", web.url)  # the links in mails point at the running server
        for email in ("alice@example.org", "bob@example.org"):
            assert cli_json(mail_home, "subscribe", email) == {
                "email": email, "period": "daily", "status": "pending", "confirmation_sent": True}
        assert statuses(mail_home) == {"alice@example.org": "pending", "bob@example.org": "pending"}
        assert [m.message["Subject"] for m in smtp.messages] == ["Confirm your paperwire subscription"] * 2

        # Nothing goes to a pending address.
        assert cli_json(mail_home, "digest", "send", "--period", "daily")["queued"] == 0

        for email in ("alice@example.org", "bob@example.org"):
            confirm = link_in(smtp.to(email)[0].text(), "/mail/confirm/")
            page = httpx.get(confirm, timeout=30)
            assert page.status_code == 200 and "Subscribed" in page.text
        assert set(statuses(mail_home).values()) == {"active"}
        assert httpx.get(web.url + "/mail/confirm/forged.token", timeout=30).status_code == 400

        result = cli_json(mail_home, "digest", "send", "--period", "daily")
        assert (result["queued"], result["sent"], result["failed"]) == (2, 2, 0)
        digest = smtp.to("alice@example.org")[-1]
        msg = digest.message
        assert msg.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        assert msg["Message-ID"].endswith("@paperwire.test>") and msg["Date"]
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        unsubscribe = re.fullmatch(r"<(\S+)>", msg["List-Unsubscribe"].strip()).group(1)
        assert unsubscribe.startswith(web.url + "/mail/unsubscribe/")
        first_titles = re.findall(r"^\* (.+)$", digest.text(), re.M)
        assert len(first_titles) >= 10

        # The same day again: already queued, nothing sent twice.
        again = cli_json(mail_home, "digest", "send", "--period", "daily")
        assert (again["queued"], again["sent"]) == (0, 0) and len(smtp.messages) == 4
        # The next day nothing is new: no mail at all.
        quiet = cli_json(mail_home, "digest", "send", "--period", "daily", "--day", TOMORROW)
        assert (quiet["queued"], quiet["sent"], quiet["nothing_new"]) == (0, 0, 2) and len(smtp.messages) == 4

        # Unsubscribe through the header link: GET shows a page, the RFC 8058 one-click POST unsubscribes.
        assert "Unsubscribe" in httpx.get(unsubscribe, timeout=30).text
        assert statuses(mail_home)["alice@example.org"] == "active"
        response = httpx.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}, timeout=30)
        assert response.status_code == 200
        assert statuses(mail_home) == {"alice@example.org": "unsubscribed", "bob@example.org": "active"}

    # A new paper arrives: bob gets it, alice nothing, and nobody gets a paper twice.
    store = open_store(mail_home)
    try:
        store.upsert_papers([make_paper(title="Sparse Mixtures of Retrieval Experts for Long Contexts",
                                        abstract="We route queries to retrieval experts.", source="test",
                                        arxiv_id="2503.99999", listed_on=DAY_AFTER)])
    finally:
        store.close()
    later = cli_json(mail_home, "digest", "send", "--period", "daily", "--day", DAY_AFTER)
    assert (later["queued"], later["sent"]) == (1, 1)
    assert len(smtp.to("alice@example.org")) == 2
    last = smtp.to("bob@example.org")[-1]
    assert re.findall(r"^\* (.+)$", last.text(), re.M) == ["Sparse Mixtures of Retrieval Experts for Long Contexts"]


@pytest.mark.parametrize("stall", ["rcpt", "data"])
def test_sigkill_during_send_delivers_each_mail_exactly_once(mail_home: Path, smtp: Recorder, stall: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    mail_env(monkeypatch, smtp.port)
    emails = [f"reader{i}@example.org" for i in range(6)]
    activate(mail_home, *emails)
    # Kill the sender while the server holds the 3rd mail: before RCPT is answered (the server never
    # gets the body) or after its body arrived (the server has it; the sender never saw the 250).
    setattr(smtp, f"stall_{stall}_at", 3)
    env = {**os.environ, "PAPERWIRE_HOME": str(mail_home)}
    proc = subprocess.Popen([sys.executable, "-m", "paperwire.cli", "--home", str(mail_home), "digest", "send",
                             "--period", "daily", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kill_when_stalled(smtp, proc, 60)
    assert proc.returncode == -signal.SIGKILL
    assert len(smtp.messages) == (2 if stall == "rcpt" else 3)

    result = cli_json(mail_home, "digest", "send", "--period", "daily")
    assert result["queued"] == 0 and result["failed"] == 0  # everything was queued before the kill
    assert result["recovered"] == (1 if stall == "data" else 0)
    assert sorted(r for m in smtp.messages for r in m.rcpt_tos) == sorted(emails)
    assert cli_json(mail_home, "digest", "send", "--period", "daily")["sent"] == 0
    assert len(smtp.messages) == 6


def test_smtp_down_retries_then_reports_and_delivers_later(mail_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()  # nothing listens here
    mail_env(monkeypatch, port)
    monkeypatch.setenv("PAPERWIRE_SMTP_RETRIES", "2")
    activate(mail_home, "a@example.org", "b@example.org")
    proc = run_cli(mail_home, "digest", "send", "--period", "daily", "--json")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert (data["queued"], data["sent"], data["failed"], data["retries"]) == (2, 0, 2, 2)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"paperwire: 2 mails not delivered: SMTP unreachable (127.0.0.1:{port})")
    assert "Traceback" not in proc.stderr

    with smtp_server() as recorder:
        monkeypatch.setenv("PAPERWIRE_SMTP_PORT", str(recorder.port))
        # Retries are due after their backoff; wait it out (a few hundredths of a second here).
        time.sleep(0.2)
        data = cli_json(mail_home, "digest", "send", "--period", "daily")
        assert (data["queued"], data["sent"], data["failed"]) == (0, 2, 0)
        assert sorted(r for m in recorder.messages for r in m.rcpt_tos) == ["a@example.org", "b@example.org"]


def test_permanent_refusal_is_reported_and_not_retried(mail_home: Path, smtp: Recorder,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    mail_env(monkeypatch, smtp.port)
    activate(mail_home, "ok@example.org", "gone@example.org")

    async def refuse(server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address.startswith("gone@"):
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    smtp.handle_RCPT = refuse  # type: ignore[method-assign]
    proc = run_cli(mail_home, "digest", "send", "--period", "daily", "--json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 1 and (data["sent"], data["failed"], data["retries"]) == (1, 1, 0)
    assert "550 no such user" in proc.stderr
    assert [m.rcpt_tos for m in smtp.messages] == [["ok@example.org"]]


BAD_ADDRESSES = ["a@example.org\r\nBcc: victim@example.org", "a@example.org\nSubject: x", "Alice <a@example.org>",
                 "a@@example.org", "a@localhost", "", "x" * 300 + "@a.org", "a..b@example.org", "a@example.org,b@c.org"]


def test_subscribe_refuses_anything_but_a_plain_address(home: Path, smtp: Recorder,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in BAD_ADDRESSES:
        with pytest.raises(InvalidEmail):
            validate_email(bad)
    assert validate_email(" first.last+tag@sub.example.org ") == "first.last+tag@sub.example.org"
    mail_env(monkeypatch, smtp.port)
    proc = run_cli(home, "subscribe", BAD_ADDRESSES[0])
    assert proc.returncode != 0 and proc.stderr.startswith("paperwire: not an email address")
    assert len(proc.stderr.strip().splitlines()) == 1 and not smtp.messages


def test_digest_html_renders_in_chromium(mail_home: Path, browser, tmp_path: Path) -> None:
    """The HTML part as a mail client would show it: escaped user text, readable layout; a screenshot is kept."""
    store = open_store(mail_home)
    try:
        store.upsert_papers([make_paper(title="<script>alert(1)</script> & Friends: O(n) attention",
                                        abstract="We show x < y & z > w for {\\em all} inputs.", source="test",
                                        authors=["Ada Lovelace", "Alan Turing"], listed_on=date.today())])
        mail = MailStore(store)
        sub = mail.upsert_subscription("reader@example.org", "daily")
        mail.activate(sub.id)
        builder = DigestBuilder(mail_home, store, MailSettings(base_url="https://papers.example.org"), "k" * 32,
                                "daily", date.today())
        digest = builder.build(mail.get(sub.id))
        _, raw = builder.render(mail.get(sub.id), digest)
    finally:
        store.close()
    msg = message_from_bytes(raw, policy=policy.default)
    html = msg.get_body(("html",)).get_content()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Friends" in html
    page_file = tmp_path / "digest.html"
    page_file.write_text(html, encoding="utf-8")
    artifacts = Path(__file__).resolve().parent.parent / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 800, "height": 1200})
    try:
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(page_file.as_uri())
        text = page.inner_text("body")
        links = page.eval_on_selector_all("a", "els => els.map(e => e.href)")
        page.screenshot(path=str(artifacts / "digest-email.png"), full_page=True)
    finally:
        page.close()
    assert not dialogs  # the title's script did not run
    assert "<script>alert(1)</script> & Friends: O(n) attention" in text
    assert "x < y & z > w" in text and "Ada Lovelace, Alan Turing" in text
    assert any(link.startswith("https://papers.example.org/mail/unsubscribe/") for link in links)
    assert sum(link.startswith("https://papers.example.org/papers/") for link in links) == len(digest.paper_ids)
    assert (artifacts / "digest-email.png").stat().st_size > 10_000


def test_mail_links_from_the_app_are_signed_with_the_key_given_to_the_app(
        mail_home: Path, smtp: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """One signing key: the PAPERWIRE_SECRET_KEY given to create_app signs the links in the mails the app
    sends, as it signs the app's cookies, not a key from the home or the environment."""
    mail_env(monkeypatch, smtp.port)
    key = "the key this app was given, and no other"
    with WebServer(mail_home, {"PAPERWIRE_SECRET_KEY": key}) as web:
        client = httpx.Client(base_url=web.url, timeout=30)
        assert client.post("/api/subscribe", json={"email": "dora@example.org"}).status_code == 202
        deadline = time.monotonic() + 30
        while not smtp.to("dora@example.org") and time.monotonic() < deadline:
            time.sleep(0.05)
        confirm = link_in(smtp.to("dora@example.org")[0].text(), "/mail/confirm/")
        assert read_token(key, CONFIRM, confirm.rsplit("/", 1)[1]) is not None
        page = client.get(confirm)
        assert page.status_code == 200 and "Subscribed" in page.text


def test_api_subscribe_and_signed_links(mail_home: Path, smtp: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    mail_env(monkeypatch, smtp.port)
    with WebServer(mail_home) as web:
        client = httpx.Client(base_url=web.url, timeout=30)
        bad = client.post("/api/subscribe", json={"email": "x@example.org\r\nBcc: y@example.org"})
        assert bad.status_code == 422 and "not an email address" in bad.json()["error"]
        assert client.post("/api/subscribe", data={"email": "x@example.org"}).status_code == 415
        ok = client.post("/api/subscribe", json={"email": "carol@example.org", "period": "weekly"})
        assert ok.status_code == 202
        deadline = time.monotonic() + 30
        while not smtp.to("carol@example.org") and time.monotonic() < deadline:
            time.sleep(0.05)
        confirm = link_in(smtp.to("carol@example.org")[0].text(), "/mail/confirm/")
        assert confirm.startswith(web.url)
        # A tampered token is refused; the real one works once and stays harmless after.
        assert client.get(confirm[:-3] + "abc").status_code == 400
        assert client.get(confirm).status_code == 200
        assert client.get(confirm).status_code == 200
        assert cli_json(mail_home, "subscribers", "list") == [
            {"email": "carol@example.org", "period": "weekly", "status": "active"}]
        # An unsubscribe token of one subscription cannot be bent to another, and needs the one-click body.
        activate(mail_home, "dave@example.org")
        assert client.post("/mail/unsubscribe/WzEsIjAwMDAwMDAwMDAwMDAwMDAiXQ.abc.def",
                           data={"List-Unsubscribe": "One-Click"}).status_code == 400
        assert statuses(mail_home)["dave@example.org"] == "active"


def confirm_mails(recorder: Recorder, email: str) -> list[str]:
    return [m.text() for m in recorder.to(email) if "Confirm" in (m.message["Subject"] or "")]


def allow_another_confirmation(home: Path, email: str) -> None:
    """Age the address's confirmation mails past the resend pause (as if ten minutes went by)."""
    store = open_store(home)
    try:
        with store.transaction():
            store.conn.execute("UPDATE outbox SET created_at = '2000-01-01T00:00:00Z' WHERE kind = 'confirm' AND "
                               "recipient = ?", (email,))
    finally:
        store.close()


def subscription(home: Path, email: str) -> Any:
    store = open_store(home)
    try:
        return MailStore(store).by_email(email)
    finally:
        store.close()


def test_subscription_choices_and_changes_confirmed_by_mail(mail_home: Path, smtp: Recorder,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    mail_env(monkeypatch, smtp.port)
    email = "erin@example.org"
    with WebServer(mail_home) as web:
        client = httpx.Client(base_url=web.url, timeout=30)
        nothing = client.post("/api/subscribe", json={"email": email, "trending": False})
        assert nothing.status_code == 422 and "choose something to receive" in nothing.json()["error"]
        ok = client.post("/api/subscribe", json={"email": email, "period": "weekly", "trending": False,
                                                 "searches": ["diffusion models", "  diffusion   models "]})
        assert ok.status_code == 202
        wait_for(lambda: confirm_mails(smtp, email))
        text = confirm_mails(smtp, email)[0]
        assert "weekly" in text and "new papers for “diffusion models”" in text and "trending papers" not in text
        first_link = link_in(text, "/mail/confirm/")
        assert "will get the weekly paperwire digest: new papers for “diffusion models”" in client.get(first_link).text
        sub = subscription(mail_home, email)
        assert (sub.status, sub.period, sub.content["searches"], sub.content["trending"]) == \
            ("active", "weekly", ["diffusion models"], False)

        # Anyone can type the address into the form: the change waits for the owner's confirmation.
        allow_another_confirmation(mail_home, email)
        assert client.post("/api/subscribe", json={"email": email, "period": "daily"}).status_code == 202
        wait_for(lambda: len(confirm_mails(smtp, email)) == 2)
        change = confirm_mails(smtp, email)[1]
        assert "asked to change" in change and "it is daily" in change and "trending papers" in change
        sub = subscription(mail_home, email)
        assert (sub.period, sub.content["trending"], sub.requested["period"]) == ("weekly", False, "daily")
        # The old link (from the first mail) does not apply the new request; the new one does, once.
        client.get(first_link)
        assert subscription(mail_home, email).period == "weekly"
        client.get(link_in(change, "/mail/confirm/"))
        sub = subscription(mail_home, email)
        assert (sub.period, sub.content["trending"], sub.requested) == ("daily", True, None)

        # From the site form, signed in with the same address: recommendations from one tag, keyword alerts.
        signup = client.get("/signup")
        token = re.search(r'name="csrf_token" value="([^"]+)"', signup.text).group(1)
        assert client.post("/signup", data={"csrf_token": token, "username": "frank", "password": "long password",
                                            "email": "frank@example.org"}).status_code == 303
        form = client.get("/subscribe").text
        assert 'name="recommendations"' in form and 'name="keywords"' in form
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        answer = client.post("/subscribe", data={
            "csrf_token": token, "email": "frank@example.org", "period": "daily", "trending": "true",
            "recommendations": "tag:ml", "alerts": "true", "keywords": "speculative decoding\n\nmixture of experts"})
        assert answer.status_code == 200 and "Check your inbox" in answer.text
        frank = subscription(mail_home, "frank@example.org")
        assert frank.user_id is not None and frank.content == {
            "trending": True, "recommendations": True, "tag": "ml", "alerts": True,
            "searches": ["speculative decoding", "mixture of experts"]}
        # Someone else's address gets no personal sections, whatever the form says.
        client.post("/subscribe", data={"csrf_token": token, "email": "gina@example.org", "recommendations": "*",
                                        "alerts": "true", "trending": "true"})
        gina = subscription(mail_home, "gina@example.org")
        assert gina.user_id is None and (gina.content["recommendations"], gina.content["alerts"]) == (False, False)


def wait_for(condition: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_mail_headers_cannot_be_injected_from_user_data(mail_home: Path) -> None:
    """Searches, tags and titles with line breaks land in the body only; the header set is fixed."""
    store = open_store(mail_home)
    try:
        store.upsert_papers([make_paper(title="Title\r\nBcc: victim@example.org", abstract="x\r\n\r\nBody",
                                        source="test", listed_on=date.today())])
        mail = MailStore(store)
        sub = mail.upsert_subscription("reader@example.org", "daily",
                                       content={"trending": True, "searches": ["q\r\nBcc: victim@example.org"]})
        mail.activate(sub.id)
        builder = DigestBuilder(mail_home, store, MailSettings(base_url="https://papers.example.org"), "k" * 32,
                                "daily", date.today())
        _, raw = builder.render(mail.get(sub.id), builder.build(mail.get(sub.id)))
        with pytest.raises(InvalidEmail):
            builder.render(Subscription(sub.id, "a@example.org\r\nBcc: v@example.org", "daily", "active", None),
                           builder.build(mail.get(sub.id)))
    finally:
        store.close()
    msg = message_from_bytes(raw, policy=policy.default)
    assert sorted(msg.keys()) == sorted(["Content-Type", "MIME-Version", "From", "To", "Subject", "Date",
                                         "Message-ID", "Auto-Submitted", "List-Unsubscribe", "List-Unsubscribe-Post",
                                         "List-Id"])
    assert "Bcc" not in raw.split(b"\r\n\r\n", 1)[0].decode()
    assert msg["To"] == "reader@example.org"


def test_cli_errors_are_one_line_with_exit_codes(mail_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mail_env(monkeypatch, free_port())
    monkeypatch.setenv("PAPERWIRE_SMTP_SECURITY", "tls-please")
    for args in (("digest", "send", "--period", "daily"), ("subscribe", "a@example.org")):
        proc = run_cli(mail_home, *args)
        assert proc.returncode == 2 and proc.stderr.strip() == \
            "paperwire: PAPERWIRE_SMTP_SECURITY: use one of none, starttls, ssl, not 'tls-please'"
    monkeypatch.setenv("PAPERWIRE_SMTP_SECURITY", "none")
    proc = run_cli(mail_home, "subscribe", "a@example.org", "--no-trending")
    assert proc.returncode == 2 and "choose something to receive" in proc.stderr
    proc = run_cli(mail_home, "subscribe", "a@example.org", "--tag", "ml")
    assert proc.returncode == 2 and proc.stderr.strip() == \
        "paperwire: --tag needs --user (recommendations learn from that user's library)"
    proc = run_cli(mail_home, "serve", "--digest-at", "25:99")
    assert proc.returncode == 2 and proc.stderr.strip() == \
        "paperwire: PAPERWIRE_DIGEST_AT: not a time of day (HH:MM): '25:99'"
    proc = run_cli(mail_home, "digest", "send", "--period", "monthly")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    # Nothing due and nobody subscribed: success, and the JSON says so.
    proc = run_cli(mail_home, "digest", "send", "--period", "weekly", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["queued"] == 0 and not proc.stderr


def test_schedule_times() -> None:
    times = parse_times({"PAPERWIRE_DIGEST_AT": "07:30", "PAPERWIRE_DIGEST_WEEKDAY": "Friday"})
    assert times == DigestTimes(dt_time(7, 30), 4)
    friday = datetime(2025, 3, 14, 7, 29)
    assert times.due(friday, {}) == []
    assert times.due(friday.replace(minute=30), {}) == ["daily", "weekly"]
    assert times.due(friday.replace(hour=9), {"daily": "2025-03-14"}) == ["weekly"]
    assert times.due(datetime(2025, 3, 15, 8), {"daily": "2025-03-14", "weekly": "2025-03-14"}) == ["daily"]
    assert parse_times({}) is None
    with pytest.raises(ScheduleConfigError):
        parse_times({"PAPERWIRE_DIGEST_AT": "07:00", "PAPERWIRE_DIGEST_WEEKDAY": "someday"})


def test_serve_sends_the_digests_on_its_schedule(mail_home: Path, smtp: Recorder,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    mail_env(monkeypatch, smtp.port)
    activate(mail_home, "sched1@example.org", "sched2@example.org")
    activate(mail_home, "weekly@example.org", period="weekly")
    monkeypatch.setenv("PAPERWIRE_DIGEST_AT", "00:00")  # due as soon as the server starts
    monkeypatch.setenv("PAPERWIRE_DIGEST_WEEKDAY", WEEKDAYS[date.today().weekday()])
    monkeypatch.setenv("PAPERWIRE_DIGEST_CHECK_SECONDS", "0.2")
    with WebServer(mail_home):
        wait_for(lambda: len(smtp.messages) >= 3)
        time.sleep(1.0)  # several more checks: nothing is sent twice
    assert sorted(r for m in smtp.messages for r in m.rcpt_tos) == \
        ["sched1@example.org", "sched2@example.org", "weekly@example.org"]
    assert all("digest" in m.message["Subject"] for m in smtp.messages)
    # A second server the same day (a restart) sends nothing again.
    with WebServer(mail_home):
        time.sleep(1.0)
    assert len(smtp.messages) == 3


def test_two_schedules_run_a_period_day_once(mail_home: Path, smtp: Recorder, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Two schedules due at once, as on two nodes (on PostgreSQL each with its own home on the shared
    database; on SQLite two processes of one home): one runs the day's digests while the other passes,
    and the other's next check finds the day done."""
    mail_env(monkeypatch, smtp.port)
    emails = ["node1@example.org", "node2@example.org", "node3@example.org"]
    activate(mail_home, *emails)
    other_home = mail_home
    if (mail_home / "config.toml").exists():  # PostgreSQL: a second node's home, same database
        other_home = tmp_path / "other-node"
        other_home.mkdir()
        (other_home / "config.toml").write_text((mail_home / "config.toml").read_text())
    times = DigestTimes(dt_time(0, 0), (date.today().weekday() + 1) % 7)  # daily only
    first, second = DigestScheduler(mail_home, load_config(mail_home), times), \
        DigestScheduler(other_home, load_config(other_home), times)
    smtp.stall_rcpt_at = 1  # the first schedule is part-way through its run when the second checks
    ran: dict[str, list[dict[str, Any]]] = {}
    running = threading.Thread(target=lambda: ran.setdefault("first", first.tick()))
    running.start()
    try:
        assert smtp.stalled.wait(60)
        # The second passes on the day; its check may still deliver due mail, so it runs beside.
        checking = threading.Thread(target=lambda: ran.setdefault("second", second.tick()))
        checking.start()
    finally:
        smtp.release.set()
    running.join(timeout=60)
    checking.join(timeout=60)
    assert [r["queued"] for r in ran["first"]] == [3] and ran["second"] == []
    assert "daily" in first.done and "daily" not in second.done
    assert second.tick() == [] and second.done["daily"] == date.today().isoformat()
    assert sorted(r for m in smtp.messages for r in m.rcpt_tos) == sorted(emails)  # each once


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # implicit TLS: aiosmtpd cannot tell
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_smtp_over_tls_with_login(store_home: Path, tmp_path: Path, security: str,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """STARTTLS and implicit TLS with a checked certificate, and AUTH, against aiosmtpd (the confirmation
    queued and delivered on either backend)."""
    home = store_home
    certificate = self_signed_certificate(tmp_path)
    with smtp_server(security=security, certificate=certificate, login=("mailer", "s3cret pass")) as recorder:
        mail_env(monkeypatch, recorder.port)
        monkeypatch.setenv("PAPERWIRE_SMTP_HOST", "localhost")
        monkeypatch.setenv("PAPERWIRE_SMTP_SECURITY", security)
        monkeypatch.setenv("PAPERWIRE_SMTP_USER", "mailer")
        monkeypatch.setenv("PAPERWIRE_SMTP_RETRIES", "0")
        # The server's certificate is not trusted until its CA is named.
        proc = run_cli(home, "subscribe", "tls@example.org")
        assert proc.returncode == 1 and "TLS certificate of SMTP server localhost" in proc.stderr
        assert "PAPERWIRE_SMTP_CA_FILE" in proc.stderr and not recorder.messages
        monkeypatch.setenv("PAPERWIRE_SMTP_CA_FILE", str(certificate[0]))
        monkeypatch.setenv("PAPERWIRE_SMTP_PASSWORD", "wrong")
        proc = run_cli(home, "digest", "send", "--period", "daily")  # delivers the queued confirmation
        assert proc.returncode == 1 and "SMTP login to localhost" in proc.stderr and "refused (535)" in proc.stderr
        monkeypatch.setenv("PAPERWIRE_SMTP_PASSWORD", "s3cret pass")
        assert cli_json(home, "digest", "send", "--period", "daily")["sent"] == 1
        [received] = recorder.messages
        assert received.rcpt_tos == ["tls@example.org"] and received.tls and received.login == "mailer"
    # STARTTLS asked of a server that does not offer it: a clear error, nothing sent in clear text.
    with smtp_server() as plain:
        monkeypatch.setenv("PAPERWIRE_SMTP_PORT", str(plain.port))
        monkeypatch.setenv("PAPERWIRE_SMTP_SECURITY", "starttls")
        proc = run_cli(home, "subscribe", "other@example.org")
        assert proc.returncode == 1 and "STARTTLS extension not supported by server" in proc.stderr
        assert not plain.messages
    monkeypatch.setenv("PAPERWIRE_SMTP_CA_FILE", str(tmp_path / "missing.pem"))
    proc = run_cli(home, "digest", "send", "--period", "daily")
    assert proc.returncode == 2 and "PAPERWIRE_SMTP_CA_FILE: no such file" in proc.stderr


def outbox_due_now(home: Path) -> None:
    """Let every queued mail's backoff run out (as if its wait went by)."""
    store = open_store(home)
    try:
        with store.transaction():
            store.conn.execute("UPDATE outbox SET next_attempt_at = 0 WHERE status = 'queued'")
    finally:
        store.close()


def test_unreachable_smtp_is_reported_by_the_site_subscribe_and_digest_send(mail_home: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()  # nothing listens here
    mail_env(monkeypatch, port)
    monkeypatch.setenv("PAPERWIRE_SMTP_RETRIES", "0")
    monkeypatch.setenv("PAPERWIRE_SMTP_BACKOFF", "60")  # a failed mail then waits two minutes before its next try
    unreachable = f"queued, not delivered: SMTP unreachable (127.0.0.1:{port})"
    with WebServer(mail_home) as web:
        client = httpx.Client(base_url=web.url, timeout=60)
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/subscribe").text).group(1)
        page = client.post("/subscribe", data={"csrf_token": token, "email": "erin@example.org", "trending": "true"})
        assert page.status_code == 200 and unreachable in page.text and "on its way" not in page.text
        # The same answer when no new confirmation was queued (one went out minutes ago): nothing to learn.
        again = client.post("/subscribe", data={"csrf_token": token, "email": "erin@example.org", "trending": "true"})
        assert unreachable in again.text
        api = client.post("/api/subscribe", json={"email": "fred@example.org"})
        assert api.status_code == 202 and api.json()["confirmation"] == "queued"
        assert api.json()["error"].startswith(unreachable)

    proc = run_cli(mail_home, "subscribe", "gina@example.org")
    assert proc.returncode == 1 and proc.stdout == ""  # never "sent" first
    assert proc.stderr.strip().splitlines() == [
        f"paperwire: confirmation mail to gina@example.org {unreachable}: Connection refused"]
    data = json.loads(run_cli(mail_home, "subscribe", "hana@example.org", "--json").stdout)
    assert data["confirmation_sent"] is False and unreachable in data["error"]

    # The four confirmations wait on their backoff: digest send says so and fails.
    proc = run_cli(mail_home, "digest", "send", "--period", "daily", "--json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 1 and (data["sent"], data["failed"], data["deferred"]) == (0, 4, 4)
    assert any("4 mails waiting until" in e and f"SMTP unreachable (127.0.0.1:{port})" in e for e in data["errors"])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paperwire: 4 mails not delivered: 4 mails waiting until")

    # Once due and the server is up, each is delivered once, and the next run is clean.
    outbox_due_now(mail_home)
    with smtp_server() as recorder:
        monkeypatch.setenv("PAPERWIRE_SMTP_PORT", str(recorder.port))
        proc = run_cli(mail_home, "digest", "send", "--period", "daily", "--json")
        data = json.loads(proc.stdout)
        assert proc.returncode == 0 and (data["sent"], data["failed"], data["deferred"]) == (4, 0, 0)
        assert sorted(r for m in recorder.messages for r in m.rcpt_tos) == [
            "erin@example.org", "fred@example.org", "gina@example.org", "hana@example.org"]
        assert cli_json(mail_home, "digest", "send", "--period", "daily")["sent"] == 0
        # A reachable server: the site says "on its way" only after the server has the mail.
        with WebServer(mail_home) as web:
            client = httpx.Client(base_url=web.url, timeout=60)
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/subscribe").text).group(1)
            page = client.post("/subscribe", data={"csrf_token": token, "email": "ivy@example.org", "trending": "true"})
            assert "on its way to ivy@example.org" in page.text and recorder.to("ivy@example.org")
    assert len(recorder.messages) == 5
