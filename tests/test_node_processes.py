"""Two nodes as separate processes on one PostgreSQL database: two `paperwire serve` processes on
loopback ports, each with its own home and search index, and `paperwire ingest` / `paperwire digest
send` run as a user would against either home. A vote through one server is seen on the other; an
ingest through one home is searchable on both; two digest runs at once, or a run killed part-way and
then the other node's, hand every mail to the SMTP server exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import fresh_database, install_static_model, run_cli
from smtp_server import Recorder, free_port, kill_when_stalled, smtp_server
from test_two_nodes import found, node_home, upvotes, write_node_papers
from web_server import TEST_LIMITS, csrf_of, signed_up_client

from paperwire.model import make_paper
from paperwire.store import open_store
from paperwire.store.mail import SENT, MailStore

# Short index refreshes, so a node follows the store within a second; the static model (distilled once
# per test run) rather than MiniLM, so the nodes start in seconds.
NODE_ENV = {**TEST_LIMITS, "PAPERWIRE_INDEX_REFRESH_SECONDS": "0.3", "PAPERWIRE_EMBEDDER": "static",
            "HF_HUB_OFFLINE": "1"}
SNAPSHOT_RECORD = {
    "id": "2405.09999", "submitter": "Nodo Dos", "authors": "Nodo Dos, Nodo Tres",
    "title": "Witness replicas for cheap majority quorums", "categories": "cs.DC", "license": None,
    "abstract": "Witness replicas vote in quorums without storing the log, so two full copies suffice.",
    "versions": [{"version": "v1", "created": "Thu, 2 May 2024 10:00:00 GMT"}], "update_date": "2024-05-02",
    "authors_parsed": [["Dos", "Nodo", ""], ["Tres", "Nodo", ""]], "comments": None, "journal-ref": None,
    "doi": None, "report-no": None}


class Node:
    """`paperwire serve` on a free loopback port, in a process of its own."""

    def __init__(self, home: Path) -> None:
        self.home, self.port = home, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **NODE_ENV, "PAPERWIRE_HOME": str(home)}
        self.log = open(home / "serve.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "paperwire.cli", "--home", str(home), "serve",
                                      "--port", str(self.port)], env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_until_searchable(self, seconds: float = 300) -> None:
        deadline = time.monotonic() + seconds
        while True:
            assert self.proc.poll() is None, (self.home / "serve.log").read_text()[-2000:]
            try:
                if httpx.get(f"{self.url}/api/papers/search", params={"q": "consensus"}, timeout=30).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the node did not start"
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
        self.log.close()


def wait_for(condition: object, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def nodes(postgres_server: str, static_model_dir: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    """Two serving nodes on a database holding three papers."""
    url = fresh_database(postgres_server)
    root = tmp_path_factory.mktemp("nodes")
    homes = node_home(root / "a", url), node_home(root / "b", url)
    for home in homes:
        install_static_model(static_model_dir, home)
    write_node_papers(homes[0])
    started = [Node(home) for home in homes]
    try:
        for node in started:
            node.wait_until_searchable()
        yield started[0], started[1]
    finally:
        for node in started:
            node.stop()


def test_a_vote_on_one_node_is_seen_on_the_other(nodes: tuple[Node, Node]) -> None:
    first, second = nodes
    assert upvotes(first.url, "2405.00002") == upvotes(second.url, "2405.00002") == 0
    voter = signed_up_client(first.url, "processvoter")
    token = csrf_of(voter.get("/papers/2405.00002").text)
    voted = voter.post("/papers/2405.00002/vote", data={"csrf_token": token, "action": "up"},
                       headers={"accept": "application/json"})
    assert voted.status_code == 200 and voted.json()["voted"] is True
    assert upvotes(second.url, "2405.00002") == 1 and upvotes(first.url, "2405.00002") == 1


def test_an_ingest_through_one_node_is_searchable_on_both(nodes: tuple[Node, Node], tmp_path: Path) -> None:
    first, second = nodes
    assert "2405.09999" not in found(first.url, "witness replicas") + found(second.url, "witness replicas")
    records = tmp_path / "snapshot.jsonl"
    records.write_text(json.dumps(SNAPSHOT_RECORD) + "\n")
    ingested = run_cli(first.home, "ingest", str(records), "--format", "arxiv-snapshot", "--json", check=True)
    assert json.loads(ingested.stdout)["added"] == 1
    for node in (first, second):  # each node's own index catches up with the shared store
        wait_for(lambda node=node: found(node.url, "witness replicas")[:1] == ["2405.09999"])


# ---------------------------------------------------------------- digests sent from two nodes

def digest_nodes(postgres_server: str, root: Path, subscribers: int) -> tuple[Path, Path, list[str]]:
    """Two node homes on a new database with papers new today and `subscribers` active daily ones."""
    url = fresh_database(postgres_server)
    homes = node_home(root / "a", url), node_home(root / "b", url)
    store = open_store(homes[0])
    try:
        store.upsert_papers([make_paper(title=f"Paper {n} on leader leases", abstract="Leases bound clock skew.",
                                        arxiv_id=f"2405.{n:05d}v1", authors=["Nodo Uno"], categories=["cs.DC"],
                                        source="test") for n in range(1, 4)])
        mail = MailStore(store)
        emails = [f"reader{n}@example.org" for n in range(subscribers)]
        for email in emails:
            mail.activate(mail.upsert_subscription(email, "daily").id)
    finally:
        store.close()
    return homes[0], homes[1], emails


def digest_send(home: Path, smtp: Recorder) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PAPERWIRE_HOME": str(home), "PAPERWIRE_SMTP_HOST": "127.0.0.1",
           "PAPERWIRE_SMTP_PORT": str(smtp.port), "PAPERWIRE_SMTP_SECURITY": "none",
           "PAPERWIRE_MAIL_FROM": "paperwire <digest@paperwire.test>", "PAPERWIRE_BASE_URL": "http://127.0.0.1:9",
           "PAPERWIRE_SMTP_BACKOFF": "0.01", "PAPERWIRE_SKIP_INDEX": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "paperwire.cli", "--home", str(home), "digest", "send",
                             "--period", "daily", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finished(proc: subprocess.Popen[bytes]) -> dict[str, object]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


def outbox_counts(home: Path) -> dict[str, int]:
    store = open_store(home)
    try:
        return MailStore(store).outbox_counts()
    finally:
        store.close()


def test_two_digest_sends_at_once_deliver_each_mail_once(postgres_server: str, tmp_path: Path) -> None:
    """The first mail's body is held at the server until every other mail has arrived: whichever run
    sent it waits for its 250 meanwhile, so the other must deliver the rest side by side with it
    (with runs taking turns it would wait too, and nothing more would arrive)."""
    first_home, second_home, emails = digest_nodes(postgres_server, tmp_path, subscribers=40)
    with smtp_server() as smtp:
        smtp.stall_data_at = 1
        started = time.monotonic()
        runs = [digest_send(first_home, smtp), digest_send(second_home, smtp)]
        try:
            wait_for(lambda: len(smtp.messages) == len(emails))
        finally:
            smtp.release.set()
        results = [finished(proc) for proc in runs]
        seconds = time.monotonic() - started
    print(f"\ntwo digest sends at once: {len(emails)} mails in {seconds:.1f} s "
          f"(sent {results[0]['sent']} + {results[1]['sent']})")
    assert sorted(r for m in smtp.messages for r in m.rcpt_tos) == sorted(emails)  # each once
    assert sorted(r["sent"] for r in results) == [1, len(emails) - 1]
    assert sorted(r["queued"] for r in results) == [0, len(emails)]  # queued by whichever ran first
    assert not any(r["failed"] or r["recovered"] or r["uncertain"] for r in results)
    assert outbox_counts(first_home) == {SENT: len(emails)}


@pytest.mark.parametrize("stall", ["rcpt", "data"])
def test_a_sender_killed_mid_run_then_the_other_node_loses_and_duplicates_nothing(postgres_server: str,
                                                                                  tmp_path: Path, stall: str) -> None:
    """The server holds the 6th mail of 30 (before answering its RCPT, or with its body taken and the
    250 not yet sent) and the sender is killed there; then the other node's run sends what is left."""
    first_home, second_home, emails = digest_nodes(postgres_server, tmp_path, subscribers=30)
    with smtp_server() as smtp:
        setattr(smtp, f"stall_{stall}_at", 6)
        killed = digest_send(first_home, smtp)
        kill_when_stalled(smtp, killed, 120)
        assert killed.returncode == -signal.SIGKILL
        before = len(smtp.messages)
        result = finished(digest_send(second_home, smtp))
    print(f"\nkilled with {before} of {len(emails)} mails at the server; the other node sent {result['sent']}, "
          f"recovered {result['recovered']}")
    assert before == (6 if stall == "data" else 5)
    assert result["queued"] == 0 and result["failed"] == 0  # everything was queued before the kill
    # The mail whose body the server took counts as sent; one killed before its body is sent again.
    assert (result["recovered"], result["sent"]) == ((1, 24) if stall == "data" else (0, 25))
    assert sorted(r for m in smtp.messages for r in m.rcpt_tos) == sorted(emails)  # none lost, none twice
    assert outbox_counts(second_home) == {SENT: len(emails)}
