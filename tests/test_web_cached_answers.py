"""Repeated anonymous GETs answered from the cache on the event loop (paperwire/web/fast_path.py): the
same answers as the routes give, each visitor's own CSRF token, and never a stale or shared answer
after a vote, a new paper or a log-in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from web_server import csrf_of, serve_app, signed_up_client

from paperwire.model import make_paper
from paperwire.store import open_store

DAY = "2025-03-11"
REVISED_DAY = "2025-02-04"  # a day of its own: the paper is on the first page of its feed
CARD = re.compile(r'<article class="card" id="p-[^"]*" data-id="([^"]+)">(.*?)</article>', re.S)
SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "referrer-policy", "content-security-policy")


def quokka_paper(version: int, title: str, abstract: str, authors: list[str]) -> Any:
    return make_paper(title=title, abstract=abstract, authors=authors, arxiv_id=f"2502.04321v{version}",
                      source="test", listed_on=REVISED_DAY, categories=["cs.LG"])


FIRST_VERSION = quokka_paper(1, "Quokka Gradients for Sparse Marsupial Attention",
                             "Quokka gradients make marsupial attention sparse. First abstract wording here.",
                             ["Ada Firstauthor"])
# added to this module's server home (the web_home fixture in conftest.py)
EXTRA_PAPERS = [FIRST_VERSION]


@pytest.fixture
def served(base_and_site: tuple[str, Any]) -> tuple[str, Any]:
    """The module's server, its index caught up and this thread up to date with the database: a
    thread's first look at changes made by others counts as a change (Site.generation), and must not
    turn the answers a test has just cached stale while it checks them."""
    site = base_and_site[1]
    site.refresh_index()
    site.generation()
    return base_and_site


@pytest.fixture(scope="module")
def base_and_site(web_home: Path) -> Iterator[tuple[str, Any]]:
    with serve_app(web_home) as (url, app):
        yield url, app.state.site


def answered_from_cache(site: Any, url: str) -> bool:
    parsed = httpx.URL(url)
    return site.cached_answer(parsed.path, parsed.query.decode()) is not None


def votes_of(page: str, paper_id: str) -> int:
    card = dict(CARD.findall(page))[paper_id]
    return int(re.search(r"data-count>(\d+)<", card).group(1))


def test_a_repeated_page_is_the_routes_answer_with_the_visitors_own_token(served: tuple[str, Any]) -> None:
    base, site = served
    path = f"/papers/date/{DAY}"
    first = httpx.get(base + path)
    assert first.status_code == 200 and answered_from_cache(site, base + path)
    visitor = httpx.Client(base_url=base)
    second = visitor.get(path)
    assert second.status_code == 200
    token_1, token_2 = csrf_of(first.text), csrf_of(second.text)
    assert token_1 != token_2 and "csrf-slot" not in second.text
    assert first.text.replace(token_1, "") == second.text.replace(token_2, "")
    for name in ("content-type", *SECURITY_HEADERS):
        assert first.headers[name] == second.headers[name], name
    for response in (first, second):  # a new visitor gets a CSRF cookie, as from the route
        cookie = response.headers["set-cookie"].lower()
        assert cookie.startswith("pw_csrf=") and "httponly" in cookie and "samesite=lax" in cookie
    # The same visitor again: the token of its cookie, no new cookie; and it works in a form.
    third = visitor.get(path)
    assert csrf_of(third.text) == token_2 and "set-cookie" not in third.headers
    form = {"username": "nobody-here", "password": "not the password", "csrf_token": token_2}
    assert visitor.post("/login", data=form).status_code == 401


def test_json_answers_repeat_exactly(served: tuple[str, Any]) -> None:
    base, site = served
    for path in (f"/api/daily_papers?date={DAY}&limit=5", "/api/papers/search?q=sparse+attention&limit=5"):
        first, second = httpx.get(base + path, timeout=60), httpx.get(base + path, timeout=60)
        assert answered_from_cache(site, base + path)
        assert first.status_code == second.status_code == 200
        assert first.content == second.content and first.json()
        assert first.headers["content-type"] == second.headers["content-type"] == "application/json"
        assert all(second.headers[name] for name in SECURITY_HEADERS)
    # trending is ranked anew each minute: never answered from the URL alone
    path = "/api/daily_papers?sort=trending&limit=5"
    assert httpx.get(base + path).status_code == 200 and not answered_from_cache(site, base + path)


def test_a_vote_shows_at_once_on_cached_pages_and_answers(served: tuple[str, Any]) -> None:
    base, site = served
    feed = f"{base}/papers/date/{DAY}"
    page = httpx.get(feed).text
    paper_id = CARD.findall(page)[0][0]
    api = f"{base}/api/daily_papers?date={DAY}&limit=100"
    before = {e["paper"]["id"]: e["paper"]["upvotes"] for e in httpx.get(api).json()}
    assert answered_from_cache(site, feed) and answered_from_cache(site, api)

    client = signed_up_client(base, "cachedvoter")
    token = csrf_of(client.get(f"/papers/{paper_id}").text)
    response = client.post(f"/papers/{paper_id}/vote", data={"csrf_token": token, "action": "up"},
                           headers={"accept": "application/json"})
    assert response.status_code == 200 and response.json()["voted"] is True

    assert not answered_from_cache(site, feed)  # the database changed: the routes answer again
    assert votes_of(httpx.get(feed).text, paper_id) == votes_of(page, paper_id) + 1
    assert {e["paper"]["id"]: e["paper"]["upvotes"] for e in httpx.get(api).json()}[paper_id] == \
        before[paper_id] + 1


def test_signed_in_readers_get_their_own_pages(served: tuple[str, Any]) -> None:
    base, site = served
    path = "/search?q=sparse+attention"
    anonymous = httpx.get(base + path, timeout=60).text
    assert answered_from_cache(site, base + path) and "Log out" not in anonymous
    client = signed_up_client(base, "cachedreader")
    own = client.get(path).text
    assert "cachedreader" in own and own != anonymous
    assert 'class="save"' in own and 'class="save"' not in anonymous


def test_a_new_paper_is_found_by_a_repeated_search(served: tuple[str, Any]) -> None:
    base, site = served
    words = "holographic lattice beekeeping"
    search_page = f"{base}/search?q=holographic+lattice+beekeeping"
    api = f"{base}/api/papers/search?q=holographic+lattice+beekeeping&limit=5"
    httpx.get(search_page, timeout=60), httpx.get(api, timeout=60)
    assert answered_from_cache(site, search_page) and answered_from_cache(site, api)

    client = signed_up_client(base, "cachedsubmitter")
    token = csrf_of(client.get("/submit").text)
    response = client.post("/submit", data={
        "csrf_token": token, "title": "Holographic Lattice Beekeeping",
        "abstract": f"We study {words} at scale, with hives on holographic lattices. " * 2})
    assert response.status_code == 303
    new_id = response.headers["location"].removeprefix("/papers/")
    assert new_id in httpx.get(search_page, timeout=60).text
    assert new_id in [e["paper"]["id"] for e in httpx.get(api, timeout=60).json()]


def test_a_revised_paper_shows_its_new_text_on_every_page(served: tuple[str, Any], web_home: Path) -> None:
    """Cards reuse the parts of a paper rendered for earlier pages (paperwire/web/card_parts.py): a new
    version of the paper must replace its title, authors and abstract everywhere at once."""
    base, site = served
    paper_id = FIRST_VERSION.id
    pages = [f"{base}/papers/date/{REVISED_DAY}", f"{base}/papers/week/2025-W06", f"{base}/search?q=quokka+marsupial",
             f"{base}/papers/{paper_id}"]
    for url in pages:
        page = httpx.get(url, timeout=60).text
        assert "Quokka Gradients for Sparse" in page and "Ada Firstauthor" in page, url
    assert "First abstract wording" in httpx.get(pages[0], timeout=60).text

    store = open_store(web_home)  # as an ingest in another process would
    try:
        result = store.upsert_papers([quokka_paper(2, "Quokka Gradients Revisited for Marsupial Attention",
                                                   "Quokka gradients, revisited: marsupial attention. Second text.",
                                                   ["Bea Secondauthor"])])
    finally:
        store.close()
    assert result.status[paper_id] == "updated"
    site.refresh_index()
    for url in pages:
        page = httpx.get(url, timeout=60).text
        assert "Quokka Gradients Revisited" in page and "Bea Secondauthor" in page, url
        assert "Quokka Gradients for Sparse" not in page and "Ada Firstauthor" not in page, url
    feed = httpx.get(pages[0], timeout=60).text
    assert "Second text" in feed and "First abstract wording" not in feed
