"""`paperwire migrate --to postgresql://…`: a seeded home with users and everything they attach to papers,
copied into a real PostgreSQL database and compared table by table; search and stats through the CLI
on the copy; a target that holds data, a newer schema, bad URLs; a copy killed with SIGKILL part-way and
run again."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import zlib
from pathlib import Path

import psycopg
import pytest
from conftest import copy_home, fresh_database, run_cli

from paperwire.model import make_paper
from paperwire.passwords import hash_password
from paperwire.store import database_path, open_store
from paperwire.store.accounts import Accounts
from paperwire.store.collections import Collections
from paperwire.store.comments import Comments
from paperwire.store.copy_to_postgres import (
    BATCH_ROWS_ENV,
    COPY_LOCK,
    KILL_AT_BATCH_ENV,
    PROGRESS_TABLE,
    schema_tables,
)
from paperwire.store.digest_windows import DigestWindows
from paperwire.store.harvest_state import HarvestState, HarvestStates
from paperwire.store.library import Library
from paperwire.store.mail import MailStore
from paperwire.store.postgres import PostgresStore
from paperwire.store.rate_limits import Bucket, RateLimits

ABSTRACT = "We measure how a sparse quorvex estimator recovers signals from few noisy samples. " * 2


def _fill(home: Path) -> None:
    """Rows in every table the migrations create, with the shapes real use leaves (aliases, spellings of
    one author, JSON, bytes, floats, NULLs, text beyond ASCII)."""
    store = open_store(home)
    try:
        # a paper known by title first, then by its arXiv id: an alias, and two spellings of one author
        store.upsert_papers([make_paper(title="Quorvex estimators for sparse recovery", abstract=ABSTRACT,
                                        authors=["J. Smith", "Ada Quill"], source="hf-daily", listed_on="2024-05-02")])
        store.upsert_papers([make_paper(title="Quorvex estimators for sparse recovery", abstract=ABSTRACT,
                                        arxiv_id="2405.01234v2", authors=["John Smith", "Ada Quill"],
                                        source="arxiv-snapshot", listed_on="2024-05-02"),
                             make_paper(title="Über Quorvex-Schätzer", abstract="Zusammenfassung: ünïcödé " * 3,
                                        arxiv_id="2405.04321v1", authors=["Zoë Ærnsdóttir"], source="arxiv-snapshot",
                                        listed_on="2024-05-03")])
        ids = store.paper_ids()
        accounts = Accounts(store)
        ada = accounts.create_user("ada", hash_password("ada-password-1"), "ada@example.org")
        bo = accounts.create_user("Bo", hash_password("bo-password-1"))
        accounts.create_session(ada)
        for paper_id in ids[:5]:
            accounts.set_vote(ada, paper_id, True)
        accounts.set_vote(bo, ids[0], True)
        accounts.record_submission(bo, "2405.01234", "added")
        library = Library(store)
        library.save(ada, ids[:4])
        library.save(ada, ids[2:6], tag="reading group")
        library.mark(ada, ids[7], "read")
        library.mark(ada, ids[8], "not_relevant")
        library.add_search(ada, "sparse recovery")
        mail = MailStore(store)
        subscription = mail.upsert_subscription("ada@example.org", "daily", user_id=ada,
                                                content={"recommendations": True, "alerts": ["sparse"]})
        mail.activate(subscription.id)
        mail.upsert_subscription("nobody@example.org", "weekly")
        outbox_id = mail.enqueue(dedupe_key="digest:1:2024-05-03", subscription_id=subscription.id, kind="digest",
                                 recipient="ada@example.org", message_id="<1@example.org>",
                                 message=zlib.compress(b"Subject: papers\r\n\r\nhello"), paper_ids=ids[:3])
        assert outbox_id is not None
        mail.mark_retry(outbox_id, "421 try later", 1714700000.25)
        RateLimits(store).take([Bucket("login", "ada", 5, 60.0)], now=1714700000.5)
        comments = Comments(store)
        comments.add(ids[0], ada, "A *fine* paper — see §2.")
        comment = comments.add(ids[1], bo, "Spam")
        comments.set_hidden(comment, True)
        Collections(store).create(ada, "Sparse things", description="For the group", visibility="unlisted",
                                  items=[(ids[3], "start here"), (ids[1], "")])
        HarvestStates(store).save("harvest:arxiv:cs", HarvestState(endpoint="http://127.0.0.1:1/oai",
                                                                  set_spec="cs", token="abc", pages=3))
        DigestWindows(store).fix("daily", "2024-05-03", "2024-05-03")
    finally:
        store.close()


@pytest.fixture(scope="module")
def full_home(seed_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = copy_home(seed_home, tmp_path_factory.mktemp("migrate") / "home")
    _fill(home)
    run_cli(home, "index", "update", check=True)  # both backends then search one index, caught up
    return home


@pytest.fixture(scope="module")
def server(postgres_server: str) -> str:
    return postgres_server


def sqlite_rows(home: Path, table: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{database_path(home)}?mode=ro", uri=True)
    try:
        return sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
    finally:
        conn.close()


def postgres_rows(url: str, table: str, columns: list[str]) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return sorted(conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall(), key=repr)


def columns_of(home: Path, table: str) -> list[str]:
    conn = sqlite3.connect(f"file:{database_path(home)}?mode=ro", uri=True)
    try:
        return [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
    finally:
        conn.close()


def assert_same_store(home: Path, url: str) -> None:
    """Every table of the schema holds the same rows on both sides (compared here, not by the copy's
    own checksums)."""
    for table in schema_tables():
        expected = sqlite_rows(home, table)
        assert postgres_rows(url, table, columns_of(home, table)) == expected, table


def migrate(home: Path, url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`paperwire --home HOME migrate --to URL ARGS…` in a subprocess, with extra environment (test hooks)."""
    return subprocess.run([sys.executable, "-m", "paperwire.cli", "--home", str(home), "migrate", "--to", url, *args],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})


def test_every_table_is_copied_and_the_copy_answers_as_the_home(full_home: Path, server: str) -> None:
    for table in schema_tables():  # the home uses every table, so the comparison below covers each
        assert sqlite_rows(full_home, table), f"the test home has no {table} rows: add some in _fill"
    url = fresh_database(server)
    proc = migrate(full_home, url, "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no terminal: no progress drawn
    summary = json.loads(proc.stdout)
    assert summary["verified"] is True and summary["resumed"] is False
    assert list(summary["tables"]) == schema_tables()
    assert summary["tables"]["papers"] == len(sqlite_rows(full_home, "papers"))
    assert summary["rows"] == summary["copied"] == sum(summary["tables"].values())
    assert_same_store(full_home, url)

    # search and stats through the CLI give the same answers on the copy as on the SQLite home
    for query in ("sparse recovery quorvex", "diffusion models for video"):
        on_sqlite = run_cli(full_home, "search", query, "--json", check=True)
        on_postgres = run_cli(full_home, "--database-url", url, "search", query, "--json", check=True)
        assert json.loads(on_postgres.stdout) == json.loads(on_sqlite.stdout), query
        assert json.loads(on_sqlite.stdout)
    stats = {}
    for name, args in (("sqlite", ()), ("postgresql", ("--database-url", url))):
        data = json.loads(run_cli(full_home, *args, "stats", "--json", check=True).stdout)
        stats[name] = {k: v for k, v in data.items() if k not in ("database", "backend")}
    assert stats["postgresql"] == stats["sqlite"]
    # a home whose config points at the copy uses it
    node = full_home.parent / "node"
    node.mkdir()
    (node / "config.toml").write_text(f"PAPERWIRE_DATABASE_URL = {json.dumps(url)}\n")
    on_node = json.loads(run_cli(node, "stats", "--json", check=True).stdout)
    assert on_node["backend"] == "postgresql" and on_node["papers"] == stats["sqlite"]["papers"]

    # new rows on the copy take ids after the copied ones (the sequences were moved past them)
    store = PostgresStore(url)
    try:
        accounts = Accounts(store)
        users_before = max(r[0] for r in sqlite_rows(full_home, "users"))
        assert accounts.create_user("cy", hash_password("cy-password-1")) == users_before + 1
        comment = Comments(store).add(store.paper_ids()[0], users_before + 1, "after the move")
        assert comment.id == max(r[0] for r in sqlite_rows(full_home, "comments")) + 1
        assert store.max_rev() == max(r[1] for r in sqlite_rows(full_home, "papers"))
    finally:
        store.close()

    # run again into the finished copy: nothing to copy, verified again... and now it differs (a user
    # was added there), which is a one-line error
    again = migrate(full_home, url)
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1 and "table users" in again.stderr, again.stderr


def test_a_copy_killed_part_way_resumes_to_an_identical_copy(full_home: Path, server: str) -> None:
    url = fresh_database(server)
    tiny = {BATCH_ROWS_ENV: "50"}
    first = migrate(full_home, url, "--json", env={**tiny, KILL_AT_BATCH_ENV: "5"})  # in the papers
    assert first.returncode == -signal.SIGKILL
    with psycopg.connect(url) as conn:
        # whole batches only: four committed, the fifth rolled back with the process
        assert conn.execute("SELECT COUNT(*) FROM papers").fetchone()[0] == 200
        assert conn.execute(f"SELECT rows, done FROM {PROGRESS_TABLE} WHERE table_name = 'papers'").fetchone() \
            == (200, False)
    papers = len(sqlite_rows(full_home, "papers"))
    # the second run goes on from there and is killed again after the papers, in a later table
    second = migrate(full_home, url, "--json", env={**tiny, KILL_AT_BATCH_ENV: str(-(-(papers - 200) // 50) + 2)})
    assert second.returncode == -signal.SIGKILL
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM papers").fetchone()[0] == papers
        done = dict(conn.execute(f"SELECT table_name, done FROM {PROGRESS_TABLE}").fetchall())
    assert done["papers"] and not all(done.values())
    third = migrate(full_home, url, "--json", env=tiny)
    assert third.returncode == 0, third.stderr
    summary = json.loads(third.stdout)
    assert summary["resumed"] is True and summary["verified"] is True
    assert summary["copied"] < summary["rows"]
    assert_same_store(full_home, url)

    # a row changed in the copy (same count, other content) fails the checksum: one line, exit 1
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE paper_aliases SET paper_id = paper_id || 'x'")
    changed = migrate(full_home, url)
    assert changed.returncode == 1
    assert changed.stderr.count("\n") == 1, changed.stderr
    assert "table paper_aliases" in changed.stderr and "checksums differ" in changed.stderr


def test_a_target_holding_data_is_refused_unless_forced(full_home: Path, server: str) -> None:
    url = fresh_database(server)
    store = PostgresStore(url)
    try:
        store.upsert_papers([make_paper(title="Already here", abstract=ABSTRACT, arxiv_id="2301.00001v1",
                                        source="test")])
    finally:
        store.close()
    refused = migrate(full_home, url)
    assert refused.returncode == 1
    assert refused.stderr.strip().count("\n") == 0
    assert "not empty (table papers has rows)" in refused.stderr and "--force" in refused.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT id FROM papers").fetchall() == [("2301.00001",)]

    forced = migrate(full_home, url, "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert_same_store(full_home, url)

    # a copy of another home is data too
    other = copy_home(full_home, full_home.parent / "other-home")
    assert migrate(other, url).returncode == 1
    assert migrate(other, url, "--force").returncode == 0


def test_newer_schema_and_bad_urls_are_one_line_errors(full_home: Path, server: str) -> None:
    url = fresh_database(server)
    with psycopg.connect(url, autocommit=True) as conn:  # a copy into this database in progress elsewhere
        conn.execute("SELECT pg_advisory_lock(%s)", (COPY_LOCK,))
        busy = migrate(full_home, url)
    assert busy.returncode == 1
    assert busy.stderr.count("\n") == 1 and "another `paperwire migrate` is copying" in busy.stderr, busy.stderr

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations(name) VALUES ('9999_from_the_future')")
    newer = migrate(full_home, url)
    assert newer.returncode == 1
    assert newer.stderr.count("\n") == 1 and "newer paperwire" in newer.stderr, newer.stderr

    wrong = migrate(full_home, "mysql://root@localhost/papers")
    assert wrong.returncode == 2
    assert wrong.stderr.count("\n") == 1 and "postgresql://" in wrong.stderr

    away = migrate(full_home, "postgresql://ada:s3cret-pw@127.0.0.1:1/papers")
    assert away.returncode == 1
    assert away.stderr.count("\n") == 1 and "cannot connect" in away.stderr
    assert "s3cret-pw" not in away.stderr and "ada:***@127.0.0.1:1" in away.stderr

    missing = run_cli(full_home.parent / "no-such-home", "migrate", "--to", url)
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1 and "no SQLite database" in missing.stderr
