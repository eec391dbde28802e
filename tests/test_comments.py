"""Comments on paper pages, on the real server: safe Markdown, edit and delete own, admins hide, rate limits,
a megabyte refused with nothing written, counts on cards and in the HF-compatible JSON (HfApi), the Atom feed
(feedparser), the account export and deletion; and a <script> comment staying text in Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from conftest import copy_home
from web_server import csrf_of, serve, signed_up_client

from paperwire.model import make_paper
from paperwire.store import open_store
from paperwire.store.comments import Comments

PAPER = "2502.00051"
ABSTRACT = "A study of vellicant operators on sparse graphs, with bounds on their spectra and mixing times. " * 2
EXTRA_PAPERS = [make_paper(title="Vellicant operators on sparse graphs", abstract=ABSTRACT, arxiv_id=PAPER,
                           source="arxiv-snapshot", authors=["Mira Tal"], listed_on="2025-03-12",
                           published="2025-03-12", num_comments=2)]
CONFIG = {"PAPERWIRE_ADMINS": "root_admin", "PAPERWIRE_RATE_LIMIT_COMMENT": "4/600"}


@pytest.fixture(scope="module")
def base(web_home: Path) -> Iterator[str]:
    with serve(web_home, CONFIG) as url:
        yield url


def post_comment(client: httpx.Client, body: str, paper: str = PAPER) -> httpx.Response:
    token = csrf_of(client.get(f"/papers/{paper}").text)
    return client.post(f"/papers/{paper}/comments", data={"csrf_token": token, "body": body})


def comment_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<article class="comment[^"]*" id="c-(\d+)"', html)]


def stored(home: Path, paper: str = PAPER) -> list[Any]:
    store = open_store(home)
    try:
        return Comments(store).of_paper(paper, with_hidden=True)
    finally:
        store.close()


def test_a_comment_is_posted_and_its_markdown_rendered_safely(base: str, web_home: Path) -> None:
    ana = signed_up_client(base, "ana_c")
    body = ("**Nice** result; see [the code](https://example.org/x?a=1&b=2).\n\n"
            "<script>alert('x')</script> <img src=x onerror=alert(1)> [bad](javascript:alert(1))")
    response = post_comment(ana, body)
    assert response.status_code == 303 and re.search(r"/papers/2502\.00051#c-\d+$", response.headers["location"])
    html = httpx.get(f"{base}/papers/{PAPER}", timeout=60).text
    section = re.search(r'<section class="comments".*?</section>', html, re.S).group(0)
    assert "<strong>Nice</strong>" in section
    assert '<a href="https://example.org/x?a=1&amp;b=2" rel="nofollow ugc noopener">the code</a>' in section
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in section or "&lt;script&gt;" in section
    assert "<script>alert" not in html and "<img src=x" not in html and 'href="javascript:' not in html
    assert [c.body for c in stored(web_home)][-1] == body  # stored as typed


def test_edit_and_delete_own_but_not_others(base: str, web_home: Path) -> None:
    bo, cy = signed_up_client(base, "bo_c"), signed_up_client(base, "cy_c")
    cid = int(post_comment(bo, "First thoughts").headers["location"].rsplit("#c-", 1)[1])
    token = csrf_of(cy.get(f"/papers/{PAPER}").text)
    assert cy.post(f"/comments/{cid}/edit", data={"csrf_token": token, "body": "hijacked"}).status_code == 403
    assert cy.post(f"/comments/{cid}/delete", data={"csrf_token": token}).status_code == 403
    page = bo.get(f"/papers/{PAPER}").text
    assert f'action="/comments/{cid}/edit"' in page and f'action="/comments/{cid}/edit"' not in cy.get(
        f"/papers/{PAPER}").text
    token = csrf_of(page)
    assert bo.post(f"/comments/{cid}/edit", data={"csrf_token": token, "body": "Second _thoughts_"}).status_code == 303
    mine = next(c for c in stored(web_home) if c.id == cid)
    assert mine.body == "Second _thoughts_" and mine.edited_at
    assert "<em>thoughts</em>" in httpx.get(f"{base}/papers/{PAPER}", timeout=60).text
    assert bo.post(f"/comments/{cid}/delete", data={"csrf_token": token}).status_code == 303
    assert cid not in [c.id for c in stored(web_home)]
    assert bo.post(f"/comments/{cid}/delete", data={"csrf_token": token}).status_code == 404
    # without the form's token nothing changes
    other = int(post_comment(bo, "kept").headers["location"].rsplit("#c-", 1)[1])
    assert bo.post(f"/comments/{other}/delete", data={"csrf_token": "forged"}).status_code == 403
    assert other in [c.id for c in stored(web_home)]


def test_an_admin_hides_and_shows_a_comment(base: str, web_home: Path) -> None:
    dee = signed_up_client(base, "dee_c")
    admin = signed_up_client(base, "root_admin")
    cid = int(post_comment(dee, "Buy cheap watches").headers["location"].rsplit("#c-", 1)[1])
    token = csrf_of(dee.get(f"/papers/{PAPER}").text)
    assert dee.post(f"/comments/{cid}/hide", data={"csrf_token": token}).status_code == 403  # not an admin
    token = csrf_of(admin.get(f"/papers/{PAPER}").text)
    assert admin.post(f"/comments/{cid}/hide", data={"csrf_token": token, "hidden": "true"}).status_code == 303
    assert cid not in comment_ids(httpx.get(f"{base}/papers/{PAPER}", timeout=60).text)  # anonymous readers
    assert cid in comment_ids(dee.get(f"/papers/{PAPER}").text)  # its author still sees it, marked
    assert "hidden by an admin" in dee.get(f"/papers/{PAPER}").text
    assert cid in comment_ids(admin.get(f"/papers/{PAPER}").text)
    assert admin.post(f"/comments/{cid}/hide", data={"csrf_token": token, "hidden": "false"}).status_code == 303
    assert cid in comment_ids(httpx.get(f"{base}/papers/{PAPER}", timeout=60).text)
    admin.post(f"/comments/{cid}/hide", data={"csrf_token": token, "hidden": "true"})


def test_a_megabyte_comment_is_refused_and_nothing_is_written(base: str, web_home: Path) -> None:
    eve = signed_up_client(base, "eve_c")
    before = len(stored(web_home))
    response = post_comment(eve, "x" * 1_048_576)
    assert response.status_code == 413
    assert "Your comment is 1,048,576 characters long; the limit is 10,000. Nothing was posted." in response.text
    assert len(stored(web_home)) == before
    larger = post_comment(eve, "y" * 3_000_000)  # past what is read at all
    assert larger.status_code == 413 and "Your comment is over 2 MB; the limit is 10,000 characters." in larger.text
    assert post_comment(eve, "   \n ").status_code == 422  # empty
    assert len(stored(web_home)) == before
    # Logged out: sent to log in, nothing written.
    anonymous = httpx.Client(base_url=base, timeout=30)
    token = csrf_of(anonymous.get(f"/papers/{PAPER}").text)
    response = anonymous.post(f"/papers/{PAPER}/comments", data={"csrf_token": token, "body": "hi"})
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert len(stored(web_home)) == before
    assert post_comment(eve, "on nothing", paper="2502.99999").status_code == 404


def test_comments_are_rate_limited_per_user(base: str, web_home: Path) -> None:
    fay = signed_up_client(base, "fay_c")
    for n in range(4):
        assert post_comment(fay, f"note {n}").status_code == 303
    refused = post_comment(fay, "one too many")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert "Too many comments in a short time; try again in" in refused.text
    assert ">one too many</textarea>" in refused.text  # what was typed is kept in the box
    assert "one too many" not in [c.body for c in stored(web_home)]


def test_counts_on_cards_and_in_the_hf_json(base: str, web_home: Path) -> None:
    from huggingface_hub import HfApi

    shown = [c for c in stored(web_home) if not c.hidden]
    expected = 2 + len(shown)  # the source's two plus those written here, hidden ones left out
    api = HfApi(endpoint=base)
    assert api.paper_info(PAPER).comments == expected  # PaperInfo.comments is the JSON's numComments
    listed = {p.id: p.comments for p in api.list_daily_papers(date="2025-03-12")}
    assert listed[PAPER] == expected
    assert {p.id: p.comments for p in api.list_papers(query="vellicant")}[PAPER] == expected
    feed = httpx.get(f"{base}/papers/date/2025-03-12", timeout=60).text
    card = re.search(rf'<article class="card" id="p-{re.escape(PAPER)}".*?</article>', feed, re.S).group(0)
    assert f'<a class="comments" href="/papers/{PAPER}#comments">{expected} comments</a>' in card
    reader = signed_up_client(base, "jo_c")  # a library's cards count them too
    token = csrf_of(reader.get(f"/papers/{PAPER}").text)
    assert reader.post(f"/papers/{PAPER}/save", data={"csrf_token": token}).status_code == 303
    assert f'<a class="comments" href="/papers/{PAPER}#comments">{expected} comments</a>' in reader.get("/library").text


def test_the_atom_feed_of_a_papers_comments(base: str, web_home: Path) -> None:
    gus = signed_up_client(base, "gus_c")
    post_comment(gus, "Feed me: **bold** and <b>raw</b>")
    feed = feedparser.parse(httpx.get(f"{base}/feeds/papers/{PAPER}/comments.atom", timeout=60).content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.feed.title == "Comments on “Vellicant operators on sparse graphs”"
    shown = [c for c in stored(web_home) if not c.hidden]
    assert len(feed.entries) == len(shown)
    newest = feed.entries[0]
    assert newest.author == "gus_c" and newest.title.startswith("gus_c: Feed me:")
    assert newest.link.endswith(f"/papers/{PAPER}#c-{shown[-1].id}")
    assert "<strong>bold</strong>" in newest.content[0].value and "<b>raw</b>" not in newest.content[0].value
    assert httpx.get(f"{base}/feeds/papers/2502.99999/comments.atom", timeout=60).status_code == 404
    html = httpx.get(f"{base}/papers/{PAPER}", timeout=60).text
    assert f'href="/feeds/papers/{PAPER}/comments.atom"' in html


def test_comments_are_in_the_export_and_go_with_the_account(base: str, web_home: Path) -> None:
    hal = signed_up_client(base, "hal_c", password="quiet harbour engine 19")
    cid = int(post_comment(hal, "Mine to take away").headers["location"].rsplit("#c-", 1)[1])
    export = hal.get("/account/export.json").json()
    assert [(c["id"], c["paper_id"], c["body"]) for c in export["comments"]] == [(cid, PAPER, "Mine to take away")]
    token = csrf_of(hal.get("/account").text)
    assert hal.post("/account/delete", data={"csrf_token": token, "password": "quiet harbour engine 19"}
                    ).status_code == 303
    assert cid not in [c.id for c in stored(web_home)]


@pytest.fixture(scope="module")
def browser_base(seed_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = copy_home(seed_home, tmp_path_factory.mktemp("browser-comments") / "home")
    store = open_store(home)
    store.upsert_papers(EXTRA_PAPERS)
    store.close()
    with serve(home, CONFIG) as url:
        yield url


@pytest.mark.browser
def test_a_script_comment_stays_text_in_chromium(browser: Any, browser_base: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(browser_base + "/signup")
    page.fill("input[name=username]", "ivy_c")
    page.fill("input[name=password]", "lunar pepper cascade 81")
    page.click("form.form button[type=submit]")
    page.wait_for_url(browser_base + "/")
    page.goto(f"{browser_base}/papers/{PAPER}")
    typed = "<script>window.pwned = 1; alert('x')</script> **kept**"
    page.fill("#comment-body", typed)
    page.click("form.comment-form button[type=submit]")
    page.wait_for_url(re.compile(r".*#c-\d+$"))
    body = page.locator("article.comment .comment-body").last
    assert body.inner_text().strip() == "<script>window.pwned = 1; alert('x')</script> kept"
    assert body.locator("strong").inner_text() == "kept"
    assert body.locator("script").count() == 0
    assert page.evaluate("window.pwned === undefined") and dialogs == []
    context.close()
