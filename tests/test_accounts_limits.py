"""Accounts and their limits: password strength (site and CLI), sign-up limits that count only accounts
made, log-in limits per name and address kept in the store across server processes and restarts; on
SQLite and on PostgreSQL (`store_home`)."""

from __future__ import annotations

import multiprocessing
import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from conftest import run_cli
from web_server import csrf_of, serve

from paperwire.passwords import password_problem
from paperwire.store import open_store
from paperwire.store.rate_limits import Bucket, RateLimits, Refused

WEAK = ["password", "12345678", "aaaaaaaa", "qwertyuiop"]
STRONG = "violet tram cobbles"


def client_at(base: str, address: str = "127.0.0.1") -> httpx.Client:
    """A browser-like client whose connections come from `address` (any 127.x.y.z reaches the server)."""
    return httpx.Client(base_url=base, timeout=30, transport=httpx.HTTPTransport(local_address=address))


def post_form(client: httpx.Client, path: str, **fields: str) -> httpx.Response:
    token = csrf_of(client.get(path).text)
    return client.post(path, data={"csrf_token": token, **fields})


# ------------------------------------------------------------ passwords


def test_common_and_weak_passwords_are_refused_in_plain_words() -> None:
    for weak in WEAK:
        problem = password_problem(weak)
        assert problem and problem.startswith("That password is too easy to guess"), weak
    assert "at least 8 characters" in password_problem("abc")
    assert password_problem(STRONG) is None
    assert password_problem("correct horse battery") is None
    assert password_problem("carol1990", user_inputs=("carol",)) is not None  # the name itself helps guess


def test_user_add_uses_the_same_password_check(store_home: Path) -> None:
    refused = run_cli(store_home, "user", "add", "alice", "--password-stdin", input="12345678\n")
    assert refused.returncode == 1
    assert refused.stderr.startswith("paperwire: That password is too easy to guess") and \
        refused.stderr.count("\n") == 1
    bad_name = run_cli(store_home, "user", "add", "x", "--password-stdin", input=STRONG + "\n")
    assert bad_name.returncode != 0
    made = run_cli(store_home, "user", "add", "alice", "--password-stdin", input=STRONG + "\n")
    assert made.returncode == 0, made.stderr


# ------------------------------------------------------------ the store's counters


def test_buckets_are_taken_all_or_none_and_given_back(store_home: Path) -> None:
    store = open_store(store_home)
    try:
        limits = RateLimits(store)
        pair, name = Bucket("login", "1.2.3.4|ann", 2, 300), Bucket("login_name", "ann", 3, 300)
        assert isinstance(limits.take([pair, name], now=1000.0), list)
        assert isinstance(limits.take([pair, name], now=1010.0), list)
        refused = limits.take([pair, name], now=1020.0)
        assert isinstance(refused, Refused) and refused.bucket.action == "login"
        assert refused.retry_after == pytest.approx(280.0)  # the first hit leaves the window at 1300
        assert limits.held("login_name", "ann", 300, now=1020.0) == 2  # nothing counted when refused
        # another address has its own pair bucket, and fills the name's ceiling
        other = Bucket("login", "5.6.7.8|ann", 2, 300)
        hits = limits.take([other, name], now=1030.0)
        assert isinstance(hits, list)
        ceiling = limits.take([Bucket("login", "9.9.9.9|ann", 2, 300), name], now=1040.0)
        assert isinstance(ceiling, Refused) and ceiling.bucket.action == "login_name"
        limits.give_back(hits)  # e.g. that attempt turned out to be a successful log-in
        assert limits.held("login_name", "ann", 300, now=1040.0) == 2
        assert isinstance(limits.take([pair, name], now=1301.0), list)  # the window moved on
    finally:
        store.close()


def _take_many(home: str, n: int, queue: multiprocessing.Queue) -> None:
    store = open_store(Path(home))
    try:
        limits = RateLimits(store)
        queue.put(sum(isinstance(limits.take([Bucket("vote", "user:1", 10, 60)]), list) for _ in range(n)))
    finally:
        store.close()


def test_two_processes_share_one_limit(store_home: Path) -> None:
    open_store(store_home).close()
    queue: multiprocessing.Queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_take_many, args=(str(store_home), 20, queue)) for _ in range(2)]
    for worker in workers:
        worker.start()
    granted = [queue.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert sum(granted) == 10, granted


# ------------------------------------------------------------ on the site


def test_sign_up_counts_only_accounts_made(store_home: Path) -> None:
    limits = {"PAPERWIRE_RATE_LIMIT_SIGNUP": "2/3600", "PAPERWIRE_RATE_LIMIT_SIGNUP_FAILED": "4/3600"}
    with serve(store_home, limits) as base:
        client = client_at(base)
        assert post_form(client, "/signup", username="first", password=STRONG).status_code == 303
        for weak in WEAK[:3]:  # three typos
            typo = post_form(client_at(base), "/signup", username="second", email="second@example.org",
                             password=weak)
            assert typo.status_code == 422
            assert "too easy to guess" in typo.text
            assert 'value="second"' in typo.text and 'value="second@example.org"' in typo.text  # kept
        # the typos did not use up the accounts this address may make
        assert post_form(client_at(base), "/signup", username="second", password=STRONG).status_code == 303
        full = post_form(client_at(base), "/signup", username="third", password=STRONG)
        assert full.status_code == 429 and int(full.headers["retry-after"]) > 3000
        assert re.search(r"try again in (59|60) minutes", full.text), full.text
        assert 'value="third"' in full.text
        # refused attempts have their own limit: here another address uses it up
        other = [post_form(client_at(base, "127.0.0.2"), "/signup", username="x", password=STRONG).status_code
                 for _ in range(5)]
        assert other == [422, 422, 422, 422, 429]
        bad_email = post_form(client_at(base, "127.0.0.3"), "/signup", username="emailer", password=STRONG,
                              email="not an address")
        assert bad_email.status_code == 422 and "does not look like an email address" in bad_email.text
        assert 'value="emailer"' in bad_email.text


def test_wrong_passwords_from_one_address_do_not_lock_the_owner_out(store_home: Path) -> None:
    limits = {"PAPERWIRE_RATE_LIMIT_LOGIN": "10/300", "PAPERWIRE_RATE_LIMIT_LOGIN_NAME": "15/300"}
    with serve(store_home, limits) as base:
        owner = client_at(base, "127.0.0.2")
        assert post_form(owner, "/signup", username="victim", password=STRONG).status_code == 303
        attacker = client_at(base, "127.0.0.1")
        codes = [post_form(attacker, "/login", username="victim", password=f"guess {i}").status_code
                 for i in range(12)]
        assert codes == [401] * 10 + [429] * 2
        refused = post_form(attacker, "/login", username="victim", password="guess")
        assert "try again in 5 minutes" in refused.text and 'value="victim"' in refused.text
        # the owner, from their own address, still gets in; and successes never count
        for _ in range(3):
            assert post_form(client_at(base, "127.0.0.2"), "/login", username="victim",
                             password=STRONG).status_code == 303
        # many addresses together meet the name's ceiling (15): then the name waits for everyone
        codes = [post_form(client_at(base, "127.0.0.3"), "/login", username="victim", password="guess").status_code
                 for _ in range(6)]
        assert codes == [401] * 5 + [429]
        assert post_form(client_at(base, "127.0.0.2"), "/login", username="victim",
                         password=STRONG).status_code == 429


def test_log_in_limit_holds_across_two_servers_and_a_restart(store_home: Path) -> None:
    """Two app instances on one home (as `serve --workers 2` makes), then a fresh one after they stop."""
    limits = {"PAPERWIRE_RATE_LIMIT_LOGIN": "10/300"}
    with serve(store_home, limits) as first, serve(store_home, limits) as second:
        clients = [client_at(first), client_at(second)]
        codes = Counter(post_form(clients[i % 2], "/login", username="nobody", password="wrong guess").status_code
                        for i in range(40))
        assert codes == {401: 10, 429: 30}
    with serve(store_home, limits) as restarted:
        again = post_form(client_at(restarted), "/login", username="nobody", password="wrong guess")
        assert again.status_code == 429


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_serve_with_two_workers_lets_ten_wrong_logins_through(store_home: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PAPERWIRE_HOME": str(store_home), "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen([sys.executable, "-m", "paperwire.cli", "--home", str(store_home), "serve", "--port",
                               str(port), "--workers", "2"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/login", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        codes = Counter()
        for _ in range(40):  # a new connection each time, so both workers answer some
            with client_at(base) as client:
                codes[post_form(client, "/login", username="nobody", password="wrong guess").status_code] += 1
        assert codes == {401: 10, 429: 30}
    finally:
        server.terminate()
        server.wait(timeout=60)
