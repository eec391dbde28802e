"""The worst submission the limits allow (a title of one 300-character word, an abstract that is mostly one
unbroken word, the longest author name and link) must not make any page wider than a phone or a desktop
screen: long words wrap instead of pushing the layout sideways. Headless Chromium, as in
test_web_browser.py."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote_plus

import httpx
import pytest
from conftest import copy_home
from web_server import csrf_of, serve, signed_up_client

from paperwire.web import submission

pytestmark = pytest.mark.browser

LONG_TITLE = "T" + "i" * (submission.TITLE_MAX - 1)
PREFIX = "We describe a finding that this single enormous word below tries to hide: "
LONG_ABSTRACT = PREFIX + "w" * (submission.ABSTRACT_MAX - len(PREFIX))
LONG_AUTHOR = "A" * submission.AUTHOR_CHARS_MAX
LONG_LINK = "https://example.org/" + "p" * (submission.LINK_CHARS_MAX - len("https://example.org/"))
WIDTHS = [390, 1280]


@pytest.fixture(scope="module")
def site(seed_home: Path, tmp_path_factory: pytest.TempPathFactory):
    """A server on a copy of the sample with the worst submission listed today (so at the top of the
    front page and in trending), saved to its submitter's library under the longest tag."""
    home = copy_home(seed_home, tmp_path_factory.mktemp("web-overflow") / "home")
    with serve(home) as base:
        client = signed_up_client(base, "widesubmitter")
        token = csrf_of(client.get("/submit").text)
        response = client.post("/submit", data={
            "csrf_token": token, "title": LONG_TITLE, "abstract": LONG_ABSTRACT, "authors": LONG_AUTHOR,
            "categories": "cs.LG", "links": LONG_LINK})
        assert response.status_code == 303, response.text[:2000]
        paper = response.headers["location"]
        token = csrf_of(client.get(paper).text)
        saved = client.post(f"{paper}/save", data={"csrf_token": token, "tag": "t" * 64})
        assert saved.status_code in (200, 303)
        voted = client.post(f"{paper}/vote", data={"csrf_token": token, "action": "up"})
        assert voted.status_code == 303
        yield base, paper, client.cookies


def test_the_worst_submission_fits_every_page(browser, site, tmp_path: Path) -> None:  # noqa: F811
    base, paper, cookies = site
    front = httpx.get(base + "/", timeout=60).text
    assert LONG_TITLE in front  # it is on the front page, so the check below is about it
    pages = ["/", "/trending", f"/search?q={quote_plus(LONG_TITLE)}", paper, "/library", "/account",
             f"/search?q={'x' * 5000}", "/submit"]
    for width in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 900}, is_mobile=width < 600,
                                      has_touch=width < 600)
        context.add_cookies([{"name": name, "value": value, "url": base} for name, value in cookies.items()])
        page = context.new_page()
        try:
            for n, path in enumerate(pages):
                page.goto(base + path)
                page.screenshot(path=str(tmp_path / f"{width}-{n}.png"), full_page=True)
                scroll = page.evaluate("document.documentElement.scrollWidth")
                assert scroll <= width, f"{path} is {scroll} px wide at {width} px"
            # the long title is on those pages, wrapped (not cut off by an overflow: hidden)
            page.goto(base + paper)
            box = page.locator("h1").first.bounding_box()
            assert box and box["width"] <= width and box["height"] > 60
        finally:
            context.close()
