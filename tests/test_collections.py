"""Collections on a real server: made from a library and from paper pages, notes edited and reordered,
public / unlisted / private, the Atom feed (feedparser), the BibTeX file (read back by paperwire's BibTeX
reader and by bibtexparser), copying into another reader's library, refused requests that write
nothing, and the account export and deletion. A browser test makes one from the library in Chromium and
opens its link logged out."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import bibtexparser
import feedparser
import httpx
import pytest
from web_server import csrf_of, signed_up_client

from paperwire.model import make_paper
from paperwire.sources.bibtex import read_library_entries
from paperwire.store import open_store

# Text that BibTeX and Atom must both carry through unchanged: dashes, quotes, TeX specials, accents.
AWKWARD = make_paper(
    title='Tails -- and "Heads": 50% of $x_1$ & {braces} for Müller\'s ~ caret^ under_score',
    abstract=("We study coins -- fair and unfair -- with 50% odds & more. Ünïcode stays; \"quotes\" stay; "
              "back\\slash, hash # and tilde ~ stay; ``doubled'' quotes and ?` stay as typed, too."),
    arxiv_id="2401.09999", source="test", authors=["Jo Müller", "Research and Development Team"],
    categories=["cs.LG"], published="2024-01-18", listed_on="2024-01-18")
PLAIN = make_paper(title="A Plain Paper About Sparse Attention Kernels", abstract="Sparse attention kernels. " * 8,
                   arxiv_id="2402.01234", source="test", authors=["Ada Lovelace"], categories=["cs.CL"],
                   published="2024-02-03", listed_on="2024-02-03")
EXTRA_PAPERS = [AWKWARD, PLAIN]


def post(client: httpx.Client, path: str, data: dict[str, Any], page: str = "/collections",
         json: bool = True) -> httpx.Response:
    """A form POST with a fresh CSRF token, asking for JSON (or following the form's redirect)."""
    token = csrf_of(client.get(page).text)
    headers = {"accept": "application/json"} if json else {}
    return client.post(path, data={"csrf_token": token, **data}, headers=headers)


def save(client: httpx.Client, paper_id: str, tag: str) -> None:
    response = post(client, f"/papers/{paper_id}/save", {"tag": tag})
    assert response.status_code == 200, response.text


def api(client: httpx.Client, token: str) -> dict[str, Any]:
    response = client.get(f"/api/collections/{token}")
    assert response.status_code == 200, response.text
    return response.json()


def item_ids(client: httpx.Client, token: str) -> list[str]:
    return [i["paper"]["id"] for i in api(client, token)["items"]]


@pytest.fixture(scope="module")
def seed_ids(base: str) -> list[str]:
    """Three papers of the sample corpus."""
    found = httpx.get(f"{base}/api/daily_papers", params={"limit": 3}).json()
    return [entry["paper"]["id"] for entry in found]


def test_collection_from_the_library_with_notes_order_feed_bibtex_and_copy(base: str, seed_ids: list[str]) -> None:
    alice = signed_up_client(base, "alice_c")
    for pid in [*seed_ids, AWKWARD.id]:
        save(alice, pid, "reading")
    save(alice, PLAIN.id, "elsewhere")

    made = post(alice, "/collections", {"source": "library", "tag": "reading", "title": "  Coins &  <b>kernels</b> ",
                                        "description": "Papers\nI keep coming back to."})
    assert made.status_code == 201, made.text
    info = made.json()
    token = info["id"]
    assert len(token) >= 12 and info["title"] == "Coins & <b>kernels</b>" and info["numPapers"] == 4
    assert info["visibility"] == "public" and info["owner"] == "alice_c"
    # The tag's papers (another tag's are not in it), newest saved first.
    initial = item_ids(alice, token)
    assert sorted(initial) == sorted([*seed_ids, AWKWARD.id])

    # Notes, a move and a whole new order.
    note = "Read §3 first.\n<script>alert(1)</script>"
    assert post(alice, f"/collections/{token}/note", {"paper_id": AWKWARD.id, "note": note}).status_code == 200
    place = initial.index(AWKWARD.id)
    expected = initial[:place] + initial[place + 1:place + 2] + [AWKWARD.id] + initial[place + 2:]
    assert post(alice, f"/collections/{token}/move", {"paper_id": AWKWARD.id, "direction": "down"}).status_code == 200
    assert item_ids(alice, token) == expected
    order = [seed_ids[0], AWKWARD.id, seed_ids[1], seed_ids[2]]
    assert post(alice, f"/collections/{token}/order", {"paper_ids": "\n".join(order)}).status_code == 200
    assert item_ids(alice, token) == order
    # Added from a paper page (an arXiv URL names it), with its note.
    added = post(alice, "/collections/add", {"collection": token, "paper_ids": f"https://arxiv.org/abs/{PLAIN.id}v2",
                                             "note": "Kernels — the fast path."}, page=f"/papers/{PLAIN.id}")
    assert added.status_code == 200 and added.json()["added"] == [PLAIN.id]
    assert post(alice, f"/collections/{token}/remove", {"paper_id": seed_ids[1]}).status_code == 200
    order = [seed_ids[0], AWKWARD.id, seed_ids[2], PLAIN.id]
    items = api(alice, token)["items"]
    assert [i["paper"]["id"] for i in items] == order and [i["position"] for i in items] == [1, 2, 3, 4]
    assert items[1]["note"] == note

    # Anyone with the link: the page (the note as text), listed on /collections, on the paper's page.
    anonymous = httpx.Client(base_url=base, timeout=30)
    page = anonymous.get(f"/collections/{token}")
    assert page.status_code == 200
    assert "Read §3 first." in page.text and "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "Coins &amp; &lt;b&gt;kernels&lt;/b&gt;" in page.text
    assert 'action="/collections/' + token + '/note"' not in page.text  # no owner's controls
    assert f'href="/collections/{token}"' in anonymous.get("/collections").text
    assert f'href="/collections/{token}"' in anonymous.get(f"/papers/{PLAIN.id}").text
    assert token in [c["id"] for c in anonymous.get("/api/collections").json()]

    # The Atom feed, read by feedparser: the collection's order, notes as content, abstracts as summaries.
    feed = feedparser.parse(anonymous.get(f"/collections/{token}.atom").content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.feed.title == "Coins & <b>kernels</b>" and feed.feed.author == "alice_c"
    assert feed.feed.subtitle == "Papers\nI keep coming back to."
    assert [e.link for e in feed.entries] == [f"{base}/papers/{pid}" for pid in order]
    awkward = feed.entries[1]
    assert awkward.title == AWKWARD.title and awkward.summary == AWKWARD.abstract
    assert awkward.content[0].value == note
    assert [a.name for a in awkward.authors] == AWKWARD.authors
    assert feed.entries[3].content[0].value == "Kernels — the fast path."

    # BibTeX, read back by paperwire's own reader (as a library import would) and by bibtexparser.
    bib = anonymous.get(f"/collections/{token}.bib")
    assert bib.status_code == 200 and bib.headers["content-type"].startswith("application/x-bibtex")
    entries = list(read_library_entries(io.BytesIO(bib.content), "collection.bib"))
    assert [type(e).__name__ for e in entries] == ["LibraryEntry"] * 4, entries
    assert entries[1].arxiv_id == AWKWARD.id and entries[1].title == AWKWARD.title
    assert entries[1].authors == AWKWARD.authors and entries[1].year == 2024
    assert entries[3].arxiv_id == PLAIN.id and entries[3].title == PLAIN.title
    stored = httpx.get(f"{base}/api/papers/{seed_ids[0]}").json()
    assert entries[0].title == stored["title"] and entries[0].arxiv_id is None
    decoding = [bibtexparser.middlewares.LatexDecodingMiddleware()]
    decoded = bibtexparser.parse_string(bib.text, append_middleware=decoding)
    assert not decoded.failed_blocks
    fields = decoded.entries[1].fields_dict
    assert fields["annote"].value == note
    assert fields["abstract"].value == AWKWARD.abstract and fields["eprint"].value == AWKWARD.id
    assert len({e.key for e in decoded.entries}) == 4
    assert anonymous.get(f"/api/collections/{token}").json()["items"][1]["paper"]["title"] == AWKWARD.title

    # Another reader copies it into their library under a tag.
    bob = signed_up_client(base, "bob_c")
    copied = post(bob, f"/collections/{token}/copy", {"tag": "from alice"})
    assert copied.status_code == 200 and copied.json() == {"tag": "from alice", "papers": 4, "added": 4}
    library = bob.get("/library", params={"tag": "from alice"}).text
    assert all(f'data-id="{pid}"' in library for pid in order)


def test_unlisted_and_private_collections(base: str, seed_ids: list[str]) -> None:
    carol = signed_up_client(base, "carol_c")
    token = post(carol, "/collections", {"title": "Quiet list", "paper_ids": f"{seed_ids[0]} {PLAIN.id}",
                                         "visibility": "unlisted"}).json()["id"]
    anonymous = httpx.Client(base_url=base, timeout=30)
    # Unlisted: reachable by its URL, listed nowhere.
    assert anonymous.get(f"/collections/{token}").status_code == 200
    assert anonymous.get(f"/collections/{token}.atom").status_code == 200
    assert token not in anonymous.get("/collections").text
    assert token not in [c["id"] for c in anonymous.get("/api/collections").json()]
    assert f"/collections/{token}" not in anonymous.get(f"/papers/{PLAIN.id}").text
    assert 'name="robots" content="noindex"' in anonymous.get(f"/collections/{token}").text
    # Private: its owner only; everyone else gets the 404 of a collection that does not exist.
    assert post(carol, f"/collections/{token}/settings", {"visibility": "private"}).json()["visibility"] == "private"
    dave = signed_up_client(base, "dave_c")
    for client in (anonymous, dave):
        for path in (f"/collections/{token}", f"/collections/{token}.atom", f"/collections/{token}.bib",
                     f"/api/collections/{token}"):
            assert client.get(path).status_code == 404, path
    assert carol.get(f"/collections/{token}").status_code == 200
    assert token in [c["id"] for c in carol.get("/api/collections/mine").json()]
    assert anonymous.get("/api/collections/mine").status_code == 401


def test_refused_requests_write_nothing(base: str, seed_ids: list[str], web_home: Path) -> None:
    erin = signed_up_client(base, "erin_c")
    save(erin, seed_ids[0], "secret tag")
    public = post(erin, "/collections", {"title": "Erin's", "paper_ids": seed_ids[0]}).json()["id"]
    private = post(erin, "/collections", {"title": "Erin's drafts", "paper_ids": seed_ids[1],
                                          "visibility": "private"}).json()["id"]
    frank = signed_up_client(base, "frank_c")
    before = (api(erin, public), api(erin, private), frank.get("/api/collections/mine").json(),
              frank.get("/library").text.count("article class=\"card\""))

    def refused(client: httpx.Client, path: str, data: dict[str, Any], status: int, words: str) -> None:
        response = post(client, path, data)
        assert response.status_code == status, (path, response.text)
        assert words in response.json()["error"], response.json()

    # Another reader's private collection, or their library's tag: not there for frank.
    refused(frank, f"/collections/{private}/copy", {"tag": "x"}, 404, "no collection")
    refused(frank, "/collections/add", {"collection": private, "paper_ids": PLAIN.id}, 404, "no collection")
    refused(frank, "/collections", {"title": "Steal", "source": "library", "tag": "secret tag"}, 422,
            "your library has no tag 'secret tag'")
    # Someone else's public collection: visible, not changeable.
    refused(frank, "/collections/add", {"collection": public, "paper_ids": PLAIN.id}, 403, "only its owner")
    refused(frank, f"/collections/{public}/note", {"paper_id": seed_ids[0], "note": "mine now"}, 403, "only its owner")
    refused(frank, f"/collections/{public}/delete", {}, 403, "only its owner")
    refused(frank, f"/collections/{public}/settings", {"visibility": "private"}, 403, "only its owner")
    # Papers that are not listed here, in a list with ones that are: nothing is made.
    refused(frank, "/collections", {"title": "Mixed", "paper_ids": f"{seed_ids[0]} 2999.99999 {PLAIN.id}"}, 422,
            "no paper listed here with id '2999.99999'")
    refused(frank, "/collections", {"title": "Bad id", "paper_ids": "not-a-paper!"}, 422, "not a paper id")
    refused(frank, "/collections", {"title": "   ", "paper_ids": PLAIN.id}, 422, "needs a title")
    refused(frank, "/collections", {"title": "T" * 201, "paper_ids": PLAIN.id}, 422, "limit is 200")
    refused(frank, "/collections", {"title": "Shady", "paper_ids": PLAIN.id, "visibility": "secret"}, 422,
            "visibility must be one of")
    refused(erin, f"/collections/{public}/note", {"paper_id": seed_ids[0], "note": "n" * 2_001}, 422, "limit is 2,000")
    refused(erin, f"/collections/{public}/note", {"paper_id": PLAIN.id, "note": "x"}, 404, "not in this collection")
    refused(erin, f"/collections/{public}/order", {"paper_ids": PLAIN.id}, 422, "each paper of the collection once")
    # A 1 MB note is refused before it is read into a collection.
    huge = post(erin, f"/collections/{public}/note", {"paper_id": seed_ids[0], "note": "x" * 1_000_000})
    assert huge.status_code == 422 and "note" in huge.json()["error"]
    # Not signed in: a form POST goes to the log-in page, JSON gets a 401.
    anonymous = httpx.Client(base_url=base, timeout=30)
    assert post(anonymous, "/collections", {"title": "x", "paper_ids": PLAIN.id}, page="/login").status_code == 401
    assert post(anonymous, "/collections", {"title": "x", "paper_ids": PLAIN.id}, page="/login",
                json=False).headers["location"] == "/login?next=/collections"
    # Without the CSRF token: refused.
    assert erin.post(f"/collections/{public}/delete", headers={"accept": "application/json"}).status_code == 403

    after = (api(erin, public), api(erin, private), frank.get("/api/collections/mine").json(),
             frank.get("/library").text.count("article class=\"card\""))
    assert after == before
    store = open_store(web_home)
    try:
        titles = {r[0] for r in store.conn.execute("SELECT title FROM collections")}
    finally:
        store.close()
    assert not titles & {"Steal", "Mixed", "Bad id", "Shady"}


def test_account_export_holds_collections_and_deletion_removes_them(base: str, seed_ids: list[str],
                                                                   web_home: Path) -> None:
    gina = signed_up_client(base, "gina_c", password="tidal marble fox 77")
    made = post(gina, "/collections", {"title": "Gina's list", "paper_ids": seed_ids[2], "note": "the one"})
    token = made.json()["id"]
    export = gina.get("/account/export.json").json()
    assert [c["title"] for c in export["collections"]] == ["Gina's list"]
    assert [(i["paper_id"], i["note"]) for i in export["collection_items"]] == [(seed_ids[2], "the one")]
    assert post(gina, "/account/delete", {"password": "tidal marble fox 77"}, page="/account",
                json=False).status_code == 303
    assert httpx.get(f"{base}/collections/{token}").status_code == 404
    store = open_store(web_home)
    try:
        left = store.conn.execute("SELECT COUNT(*) FROM collections WHERE token = ?", (token,)).fetchone()[0]
        orphans = store.conn.execute("SELECT COUNT(*) FROM collection_items WHERE collection_id NOT IN "
                                     "(SELECT id FROM collections)").fetchone()[0]
    finally:
        store.close()
    assert left == 0 and orphans == 0


@pytest.mark.browser
def test_make_a_collection_from_the_library_in_chromium_and_open_its_link_logged_out(
        browser: Any, base: str, seed_ids: list[str], tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base + "/signup")
    page.fill("input[name=username]", "hana_c")
    page.fill("input[name=password]", "velvet orbit quarry lantern 42")
    page.click("form.form button[type=submit]")
    page.wait_for_url(base + "/")
    for pid in seed_ids[:2]:  # saved from the paper page, under a tag
        page.goto(f"{base}/papers/{pid}")
        actions = page.locator("article.paper .lib-actions")
        actions.locator("input[name=tag]").fill("reading group")
        actions.locator("form.lib-form", has=page.locator("input[name=tag]")).locator("button").click()
        page.wait_for_selector("article.paper .lib-actions form.save")

    page.goto(base + "/library?tag=reading+group")
    page.click("details.coll-make summary")
    form = page.locator("details.coll-make form")
    form.locator("input[name=title]").fill("Week 3: attention")
    form.locator("select[name=visibility]").select_option("unlisted")
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(re.escape(base) + r"/collections/[A-Za-z0-9_-]+$"))
    url = page.url
    assert page.locator("h1").inner_text() == "Week 3: attention"
    assert page.locator("li.coll-item").count() == 2
    first = page.locator("li.coll-item").first
    first.locator("textarea[name=note]").fill("Start here: section 2 has the <i>trick</i>.")
    first.locator("form.note-form button").click()
    page.wait_for_load_state()
    assert page.locator("li.coll-item").first.locator("p.note").inner_text() == \
        "Start here: section 2 has the <i>trick</i>."
    # Moved down from the page: the order changes.
    first_id = page.locator("li.coll-item").first.get_attribute("data-id")
    page.locator("li.coll-item").first.locator("form.inline", has=page.locator("input[value=down]")).locator(
        "button").click()
    page.wait_for_load_state()
    assert page.locator("li.coll-item").nth(1).get_attribute("data-id") == first_id
    page.screenshot(path=str(tmp_path / "collection-owner.png"), full_page=True)

    # The link, in a browser that has never logged in.
    stranger = browser.new_context(viewport={"width": 1000, "height": 800}).new_page()
    response = stranger.goto(url)
    assert response is not None and response.status == 200
    assert stranger.locator("h1").inner_text() == "Week 3: attention"
    assert stranger.locator("li.coll-item").count() == 2
    assert stranger.locator("li.coll-item").nth(1).locator("p.note").inner_text() == \
        "Start here: section 2 has the <i>trick</i>."
    assert stranger.locator("textarea[name=note]").count() == 0
    assert stranger.locator("a", has_text="Log in to copy it into your library").count() == 1
    stranger.screenshot(path=str(tmp_path / "collection-stranger.png"), full_page=True)
    feed = stranger.request.get(url + ".atom")
    assert feed.status == 200 and len(feedparser.parse(feed.body()).entries) == 2
    stranger.goto(base + "/collections")
    assert stranger.locator(f"a[href='{url.removeprefix(base)}']").count() == 0  # unlisted
    assert not errors
