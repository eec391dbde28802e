"""Accounts, votes, CSRF, rate limits, escaping and data export/deletion on a real server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
from web_server import csrf_of, serve, signed_up_client

from paperwire.model import make_paper
from paperwire.store import open_store

XSS_TITLE = 'Robust <script>alert("t")</script> Learning & Friends'
XSS_ABSTRACT = ('We study <img src=x onerror="alert(1)"> attacks where x < y & y > z, with $\\ell_2$ bounds '
                'and <script>document.title="owned"</script> payloads in abstracts. ' * 2)


XSS_ID = make_paper(title=XSS_TITLE, source="test").id


# added to this module's server home (the web_home and base fixtures in conftest.py)
EXTRA_PAPERS = [make_paper(title=XSS_TITLE, abstract=XSS_ABSTRACT, source="test", listed_on="2025-03-11")]


def _xss_id(base: str) -> str:
    return XSS_ID


def test_user_text_is_escaped_everywhere(base: str) -> None:
    paper_id = _xss_id(base)
    pages = [(f"/papers/{paper_id}", True), ("/search?q=robust+learning+friends&mode=lexical", True),
             ("/account", False)] + [(f"/papers/date/2025-03-11?page={n}", False) for n in range(1, 6)]
    shown = 0
    for path, must_show in pages:
        html = httpx.get(base + path, timeout=60).text
        assert "<script>alert" not in html and "<img src=x" not in html and 'document.title="owned"' not in html
        if must_show or "Robust &lt;script&gt;" in html:
            assert "Robust &lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt; Learning &amp; Friends" in html
            shown += 1
    assert shown >= 3  # the paper page, the search results and its day in the feed
    page = httpx.get(base + f"/papers/{paper_id}")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    api = httpx.get(base + f"/api/papers/{paper_id}").json()
    assert api["title"] == XSS_TITLE  # JSON carries the text as is; it is data, not markup
    assert "ℓ₂" in api["summary"]  # LaTeX fragments become readable characters


def test_search_injection_is_harmless(base: str) -> None:
    for q in ["' OR 1=1 --", '"; DROP TABLE papers; --', "title:* OR NEAR(a b)", "a AND OR NOT )(", "%_%", "\\"]:
        response = httpx.get(base + "/search", params={"q": q}, timeout=60)
        assert response.status_code in (200, 422)
        response = httpx.get(base + "/api/papers/search", params={"q": q}, timeout=60)
        assert response.status_code in (200, 422)
        if response.status_code == 422:
            assert "error" in response.json()
    assert httpx.get(base + "/healthz").json()["papers"] > 400


def test_post_without_csrf_token_is_refused(base: str) -> None:
    client = signed_up_client(base, "csrfuser")
    paper_id = _xss_id(base)
    for path, data in [(f"/papers/{paper_id}/vote", {"action": "up"}), ("/logout", {}),
                       ("/submit", {"title": "x" * 20, "abstract": "y" * 200}),
                       ("/account/delete", {"password": "correct horse battery"})]:
        response = client.post(path, data=data)
        assert response.status_code == 403, path
        response = client.post(path, data={**data, "csrf_token": "forged"})
        assert response.status_code == 403, path
    # a token from another browser (another CSRF cookie) is refused too
    other = httpx.Client(base_url=base)
    stolen = csrf_of(other.get("/signup").text)
    assert client.post(f"/papers/{paper_id}/vote", data={"csrf_token": stolen}).status_code == 403
    assert client.get("/account").status_code == 200  # still logged in: nothing happened


def test_signup_login_logout_and_cookie_flags(base: str) -> None:
    client = httpx.Client(base_url=base)
    token = csrf_of(client.get("/signup").text)
    response = client.post("/signup", data={"csrf_token": token, "username": "carol", "password": "s3cret-enough"})
    assert response.status_code == 303
    cookie = [h for h in response.headers.get_list("set-cookie") if h.startswith("pw_session=")][0].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "carol" in client.get("/account").text
    # duplicate name, short password
    other = httpx.Client(base_url=base)
    token = csrf_of(other.get("/signup").text)
    assert other.post("/signup", data={"csrf_token": token, "username": "Carol", "password": "another-pass"}
                      ).status_code == 422
    assert other.post("/signup", data={"csrf_token": token, "username": "dave", "password": "short"}).status_code == 422
    # log out, then the old cookie no longer works
    session = client.cookies.get("pw_session")
    token = csrf_of(client.get("/account").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    replay = httpx.Client(base_url=base, cookies={"pw_session": session})
    assert replay.get("/account").status_code == 303  # sent to the login page
    # log in again with the password; a wrong one is refused
    token = csrf_of(client.get("/login").text)
    assert client.post("/login", data={"csrf_token": token, "username": "carol", "password": "nope-nope"}
                       ).status_code == 401
    assert client.post("/login", data={"csrf_token": token, "username": "carol", "password": "s3cret-enough"}
                       ).status_code == 303
    assert "carol" in client.get("/account").text


def test_tampered_session_cookie_is_ignored(base: str) -> None:
    client = signed_up_client(base, "erin")
    value = client.cookies.get("pw_session")
    forged = httpx.Client(base_url=base, cookies={"pw_session": value[:-2] + ("A" if value[-2] != "A" else "B") +
                                                  value[-1]})
    assert forged.get("/account").status_code == 303


def test_one_vote_per_user_and_it_can_be_taken_back(base: str) -> None:
    paper_id = _xss_id(base)
    alice, bob = signed_up_client(base, "alice"), signed_up_client(base, "bob")
    api = httpx.Client(base_url=base)
    start = api.get(f"/api/papers/{paper_id}").json()["upvotes"]

    def vote(client: httpx.Client, action: str) -> dict:
        token = csrf_of(client.get(f"/papers/{paper_id}").text)
        response = client.post(f"/papers/{paper_id}/vote", data={"csrf_token": token, "action": action},
                               headers={"accept": "application/json"})
        assert response.status_code == 200
        return response.json()

    assert vote(alice, "up")["upvotes"] == start + 1
    assert vote(alice, "up")["upvotes"] == start + 1  # twice is still one vote
    assert vote(bob, "up")["upvotes"] == start + 2
    assert vote(alice, "down") == {"id": paper_id, "voted": False, "upvotes": start + 1}
    assert api.get(f"/api/papers/{paper_id}").json()["upvotes"] == start + 1
    # without JavaScript the form posts and redirects back
    token = csrf_of(alice.get(f"/papers/{paper_id}").text)
    response = alice.post(f"/papers/{paper_id}/vote", data={"csrf_token": token, "action": "toggle"},
                          headers={"referer": f"{base}/papers/{paper_id}"})
    assert response.status_code == 303 and response.headers["location"] == f"/papers/{paper_id}"
    assert api.get(f"/api/papers/{paper_id}").json()["upvotes"] == start + 2
    # anonymous votes are not counted
    anon = httpx.Client(base_url=base)
    token = csrf_of(anon.get(f"/papers/{paper_id}").text)
    assert anon.post(f"/papers/{paper_id}/vote", data={"csrf_token": token}).status_code == 303
    assert api.get(f"/api/papers/{paper_id}").json()["upvotes"] == start + 2


def test_submit_is_deduplicated(base: str) -> None:
    client = signed_up_client(base, "submitter")

    def submit(**fields: str) -> httpx.Response:
        token = csrf_of(client.get("/submit").text)
        return client.post("/submit", data={"csrf_token": token, **fields})

    abstract = "We perturb the last layer of trained classifiers and follow how neural collapse weakens. " * 2
    first = submit(title="Perturbation Analysis of Neural Collapse", abstract=abstract)
    assert first.status_code == 303
    target = first.headers["location"]
    again = submit(title="perturbation analysis of neural-collapse", abstract=abstract)
    assert again.headers["location"] == target  # same paper: merged by normalised title, not added
    fresh = submit(arxiv_id="2501.00001", title="An Entirely New Paper on Sparse Autoencoders",
                   abstract="We train sparse autoencoders on everything and report what we find. " * 3)
    assert fresh.headers["location"] == "/papers/2501.00001"
    by_id = submit(arxiv_id="arXiv:2501.00001v2")
    assert by_id.headers["location"] == "/papers/2501.00001"
    unknown = submit(arxiv_id="2501.99999")
    assert unknown.status_code == 422 and "Paste its title" in unknown.text
    assert submit(arxiv_id="not-an-id").status_code == 422
    hits = httpx.get(base + "/api/papers/search", params={"q": "sparse autoencoders everything", "limit": 5},
                     timeout=60).json()
    assert hits[0]["paper"]["id"] == "2501.00001"  # searchable right after the submission


def test_export_and_delete_account(base: str) -> None:
    client = signed_up_client(base, "frank")
    paper_id = _xss_id(base)
    token = csrf_of(client.get(f"/papers/{paper_id}").text)
    client.post(f"/papers/{paper_id}/vote", data={"csrf_token": token, "action": "up"})
    exported = client.get("/account/export.json")
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    data = json.loads(exported.text)
    assert data["account"]["username"] == "frank"
    assert [v["paper_id"] for v in data["votes"]] == [paper_id]
    assert "password_hash" not in exported.text
    assert httpx.get(base + "/account/export.json").status_code == 401  # not without a session
    votes_before = httpx.get(base + f"/api/papers/{paper_id}").json()["upvotes"]
    token = csrf_of(client.get("/account").text)
    assert client.post("/account/delete", data={"csrf_token": token, "password": "wrong password"}
                       ).status_code == 401
    assert client.post("/account/delete", data={"csrf_token": token, "password": "correct horse battery"}
                       ).status_code == 303
    assert client.get("/account").status_code == 303
    assert httpx.get(base + f"/api/papers/{paper_id}").json()["upvotes"] == votes_before - 1
    login = httpx.Client(base_url=base)
    token = csrf_of(login.get("/login").text)
    assert login.post("/login", data={"csrf_token": token, "username": "frank",
                                      "password": "correct horse battery"}).status_code == 401


def test_stored_passwords_are_argon2_hashes(web_home: Path, base: str) -> None:
    signed_up_client(base, "gina", password="plain text never stored")
    store = open_store(web_home)
    try:
        (stored,) = store.conn.execute("SELECT password_hash FROM users WHERE username = 'gina'").fetchone()
    finally:
        store.close()
    assert stored.startswith("$argon2id$") and "plain text" not in stored


def test_rate_limits(seeded_copy: Callable[[Path], Path], tmp_path: Path) -> None:
    home = seeded_copy(tmp_path / "home")
    limits = {"PAPERWIRE_RATE_LIMIT_LOGIN": "3/300", "PAPERWIRE_RATE_LIMIT_SIGNUP": "2/3600",
              "PAPERWIRE_RATE_LIMIT_VOTE": "4/60", "PAPERWIRE_RATE_LIMIT_SUBMIT": "2/3600"}
    with serve(home, limits) as base:
        client = httpx.Client(base_url=base)
        token = csrf_of(client.get("/login").text)
        codes = [client.post("/login", data={"csrf_token": token, "username": "nobody", "password": "x" * 8}
                             ).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        token = csrf_of(client.get("/signup").text)
        codes = [client.post("/signup", data={"csrf_token": token, "username": f"user{i}",
                                              "password": "long enough pw"}).status_code for i in range(3)]
        assert codes[:2] == [303, 303] and codes[2] == 429
        voter = httpx.Client(base_url=base, cookies=client.cookies)  # logged in as user1
        paper = httpx.get(base + "/api/daily_papers?limit=1").json()[0]["paper"]["id"]
        token = csrf_of(voter.get(f"/papers/{paper}").text)
        codes = [voter.post(f"/papers/{paper}/vote", data={"csrf_token": token},
                            headers={"accept": "application/json"}).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 200, 429]
        submits = [voter.post("/submit", data={"csrf_token": token, "arxiv_id": "2501.99999"}).status_code
                   for _ in range(3)]
        assert submits == [422, 422, 429]
