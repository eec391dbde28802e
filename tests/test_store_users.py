"""What users attach to papers, on SQLite and on PostgreSQL (every test takes `store_home`): accounts,
sessions, votes and submissions; libraries, marks and saved searches; subscriptions, the outbox and
sent items; rate limits; digest windows; the arXiv API's selections; DOI lookups; the change token."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from conftest import fresh_database

from paperwire import arxiv_query
from paperwire.model import make_paper
from paperwire.store import open_store
from paperwire.store.accounts import Accounts, UsernameTaken
from paperwire.store.arxiv_select import select_papers
from paperwire.store.digest_windows import DigestWindows
from paperwire.store.library import NOT_RELEVANT, READ, Library
from paperwire.store.mail import ACTIVE, SENDING, SENT, MailStore
from paperwire.store.postgres import PostgresStore
from paperwire.store.rate_limits import Bucket, RateLimits, Refused


def papers() -> list:
    return [
        make_paper(title="Sparse attention for long documents", abstract="We sparsify attention.",
                   arxiv_id="2401.00001v1", authors=["Ada Lovelace"], categories=["cs.CL"], listed_on="2024-01-03",
                   published="2024-01-02", doi="10.1000/ABC.1", source="test"),
        make_paper(title="Graph kernels at scale", abstract="Kernels on graphs, with attention to cost.",
                   arxiv_id="2401.00002v1", authors=["Alan Turing"], categories=["cs.LG", "stat.ML"],
                   listed_on="2024-01-04", published="2024-01-03", source="test"),
        make_paper(title="A capture known by its title", abstract="Only a title and this.", source="hf-page",
                   listed_on="2024-01-04"),
    ]


@pytest.fixture
def store(store_home: Path):  # noqa: ANN201 - either backend's store
    opened = open_store(store_home)
    opened.upsert_papers(papers())
    yield opened
    opened.close()


def test_accounts_sessions_votes_and_submissions(store) -> None:  # noqa: ANN001
    accounts = Accounts(store)
    ada = accounts.create_user("ada", "hash-1", "Ada@Example.org")
    bob = accounts.create_user("bob", "hash-2")
    assert ada != bob and accounts.user_by_name("ada")["email"] == "Ada@Example.org"
    with pytest.raises(UsernameTaken):
        accounts.create_user("ADA", "hash-3")  # names are unique whatever their case
    assert accounts.user_by_name("bob")["id"] == bob  # the refused insert left the connection usable

    token = accounts.create_session(ada)
    assert accounts.session_user(token)["username"] == "ada"
    accounts.end_session(token)
    assert accounts.session_user(token) is None

    title_only = papers()[2].id
    accounts.set_vote(ada, "2401.00001", True)
    accounts.set_vote(bob, "2401.00001", True)
    accounts.set_vote(bob, title_only, True)
    accounts.set_vote(bob, title_only, True)  # twice is once
    assert accounts.has_voted(ada, "2401.00001") and not accounts.has_voted(ada, title_only)
    votes = accounts.local_votes(["2401.00001", title_only, "2401.00002"])
    assert votes == {"2401.00001": 2, title_only: 1} and all(type(n) is int for n in votes.values())
    assert accounts.voted_among(bob, ["2401.00001", "2401.00002", title_only]) == {"2401.00001", title_only}
    accounts.set_vote(bob, "2401.00001", False)
    assert accounts.local_votes(["2401.00001"]) == {"2401.00001": 1}

    accounts.record_submission(ada, "2401.00002", "added")
    assert [s[:2] for s in accounts.recent_submissions(ada)] == [("2401.00002", "added")]

    Library(store).save(ada, ["2401.00002"], tag="graphs")
    MailStore(store).upsert_subscription("ADA@example.org", "daily", user_id=ada)
    exported = accounts.export_user(ada)
    assert [v["paper_id"] for v in exported["votes"]] == ["2401.00001"]
    assert [row["paper_id"] for row in exported["library_items"]] == ["2401.00002"]
    assert [row["email"] for row in exported["subscriptions"]] == ["ADA@example.org"]
    accounts.delete_user(ada)
    assert accounts.user_by_id(ada) is None and accounts.local_votes(["2401.00001"]) == {}
    assert Library(store).saved(ada) == []


def test_library_marks_and_saved_searches(store) -> None:  # noqa: ANN001
    uid = Accounts(store).create_user("cy", "hash")
    library = Library(store)
    assert library.user("CY").id == uid  # by name, whatever its case
    assert library.save(uid, ["2401.00001", "2401.00002"], tag="reading") == 2
    assert library.save(uid, ["2401.00001", "2401.00002"], tag="reading") == 0  # already there
    assert library.save(uid, ["2401.00001"]) == 1
    assert set(library.saved(uid)) == {"2401.00001", "2401.00002"}
    assert library.tags(uid) == {"": 1, "reading": 2}
    assert library.tags_of(uid, ["2401.00001"]) == {"2401.00001": ["", "reading"]}
    library.unsave(uid, "2401.00001", tag="reading")
    assert library.saved(uid, "reading") == ["2401.00002"]
    library.mark(uid, "2401.00002", READ)
    library.mark(uid, "2401.00002", READ)
    library.mark(uid, "2401.00001", NOT_RELEVANT)
    assert library.marked(uid, READ) == ["2401.00002"] and library.marked(uid, NOT_RELEVANT) == ["2401.00001"]
    library.mark(uid, "2401.00002", READ, on=False)
    assert library.marked(uid, READ) == []
    library.add_search(uid, "graph kernels")
    library.add_search(uid, "graph kernels")
    library.add_search(uid, "attention")
    assert library.searches(uid) == ["graph kernels", "attention"]
    library.remove_search(uid, "graph kernels")
    assert library.searches(uid) == ["attention"]


def test_subscriptions_outbox_and_sent_items(store) -> None:  # noqa: ANN001
    mail = MailStore(store)
    sub = mail.upsert_subscription("dora@example.org", "weekly", content={"trending": True})
    assert mail.by_email("DORA@example.org").id == sub.id  # addresses compare without case
    assert mail.activate(sub.id) and not mail.activate(sub.id)
    assert [s.email for s in mail.subscriptions(period="weekly", status=ACTIVE)] == ["dora@example.org"]

    first = mail.enqueue(dedupe_key="digest:1:2024-W01", subscription_id=sub.id, kind="digest",
                         recipient=sub.email, message_id="<1@test>", message=b"Subject: one\r\n\r\nbody",
                         paper_ids=["2401.00001", "2401.00002"])
    again = mail.enqueue(dedupe_key="digest:1:2024-W01", subscription_id=sub.id, kind="digest",
                         recipient=sub.email, message_id="<2@test>", message=b"Subject: two\r\n\r\nbody")
    assert first and again is None
    assert mail.sent_papers(sub.id) == {"2401.00001", "2401.00002"}
    [due] = mail.due(time.time() + 1)
    assert (due.id, due.message) == (first, b"Subject: one\r\n\r\nbody")
    assert mail.mark_sending(first) and not mail.mark_sending(first)  # one sender claims it
    assert mail.status(first) == SENDING and mail.recover_interrupted() == 1 and mail.status(first) == SENT
    assert mail.outbox_counts() == {SENT: 1}
    assert mail.last_mail_time(sub.id, "digest") == pytest.approx(time.time(), abs=3600)

    queued = mail.enqueue(dedupe_key="digest:1:2024-W02", subscription_id=sub.id, kind="digest",
                          recipient=sub.email, message_id="<3@test>", message=b"x", paper_ids=["2401.00003"])
    assert mail.unsubscribe(sub.id)
    assert mail.status(queued) == "failed" and "2401.00003" not in mail.sent_papers(sub.id)


def test_rate_limits_count_all_or_none(store) -> None:  # noqa: ANN001
    limits = RateLimits(store)
    now = 1_000_000.0
    login = Bucket("login", "ada|1.2.3.4", 2, 60)
    address = Bucket("login_address", "1.2.3.4", 3, 60)
    first = limits.take([login, address], now)
    assert isinstance(first, list) and len(first) == 2
    assert isinstance(limits.take([login, address], now + 1), list)
    refused = limits.take([login, address], now + 2)
    assert isinstance(refused, Refused) and refused.bucket == login and refused.retry_after == pytest.approx(58)
    assert limits.held("login_address", "1.2.3.4", 60, now + 2) == 2  # the refused attempt counted nowhere
    limits.give_back(first)
    assert limits.held("login", "ada|1.2.3.4", 60, now + 2) == 1
    assert isinstance(limits.take([login], now + 61), list)  # the window moved on


def test_digest_windows_are_fixed_by_the_first_run(store) -> None:  # noqa: ANN001
    windows = DigestWindows(store)
    first = windows.fix("daily", "2024-01-04", "2024-01-04")
    assert first.from_rev is None and first.to_rev == store.max_rev()
    assert set(windows.new_paper_ids(first, "2024-01-03", "2024-01-04")) == {p.id for p in papers()}
    store.upsert_papers([make_paper(title="Written after the first run", abstract="Late.", source="test",
                                    arxiv_id="2401.00009v1", listed_on="2024-01-04")])
    assert windows.fix("daily", "2024-01-04", "2024-01-04") == first  # a re-run sees the same window
    later = windows.fix("daily", "2024-01-05", "2024-01-05")
    assert (later.from_rev, later.to_rev) == (first.to_rev, store.max_rev())
    assert windows.new_paper_ids(later, "2024-01-04", "2024-01-05") == ["2401.00009"]


def test_arxiv_api_selections_and_doi_lookups(store) -> None:  # noqa: ANN001
    def ids(query: str, **kw: object) -> tuple[list[str], int]:
        found, total = select_papers(store, arxiv_query.parse(query), kw.get("ids"), 0, 10,  # type: ignore[arg-type]
                                     str(kw.get("sort", "relevance")), descending=True)
        return [p.id for p in found], total

    assert ids("ti:attention") == (["2401.00001"], 1)
    assert ids("all:attention") == (["2401.00001", "2401.00002"], 2)  # the title match ranks first
    assert ids("cat:stat.ML") == (["2401.00002"], 1) and ids("cat:cs") == (["2401.00002", "2401.00001"], 2)
    assert ids("au:turing ANDNOT ti:attention") == (["2401.00002"], 1)
    assert ids("all:attention", ids=["2401.00002"]) == (["2401.00002"], 1)
    assert ids("cat:cs", sort="submittedDate") == (["2401.00002", "2401.00001"], 2)
    assert ids("jr:anything") == ([], 0)
    assert ids('all:"100%_"') == ([], 0)  # wildcards in user text match only themselves
    assert store.ids_by_doi(["10.1000/abc.1", "10.1000/none"]) == {"10.1000/abc.1": "2401.00001"}


def test_the_change_token_moves_with_writes_from_any_connection(store_home: Path, store) -> None:  # noqa: ANN001
    token = store.change_token()
    assert store.change_token() == token  # reading changes nothing
    other = open_store(store_home)
    try:
        Accounts(other).create_user("eve", "hash")
    finally:
        other.close()
    assert store.change_token() != token


def test_the_change_token_on_postgresql_ignores_log_writes_that_change_no_data(postgres_server: str) -> None:
    """The server writes its log on its own (checkpoints, snapshots of running transactions for replicas):
    that is no change to the data, and must not throw away every node's page caches."""
    url = fresh_database(postgres_server)
    store = PostgresStore(url)
    try:
        store.upsert_papers(papers())
        token = store.change_token()
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("CHECKPOINT")
            admin.execute("SELECT pg_log_standby_snapshot()")
        assert store.change_token() == token
        Accounts(store).create_user("ivy", "hash")
        assert store.change_token() != token
    finally:
        store.close()
