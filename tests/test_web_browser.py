"""The site in headless Chromium (Debian's, driven by Playwright): feed, days, search, paper, sign-up, vote."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import copy_home
from web_server import serve

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def base(seed_home: Path, tmp_path_factory: pytest.TempPathFactory):
    home = copy_home(seed_home, tmp_path_factory.mktemp("web-browser") / "home")
    with serve(home) as url:
        yield url


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, errors


def test_feed_days_search_and_paper(page, base: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(base + "/")
    heading = page.locator("h1").inner_text()
    assert page.locator("article.card").count() >= 10
    page.screenshot(path=str(ARTIFACTS / "feed.png"), full_page=False)
    # the abstract folds open
    first = page.locator("article.card details.abstract").first
    first.locator("summary").click()
    assert first.locator("p.full").is_visible()
    # previous day, then back
    page.click("a[rel=prev]")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() != heading
    assert re.search(r"/papers/date/\d{4}-\d{2}-\d{2}$", page.url)
    page.click("a[rel=next]")
    assert page.locator("h1").inner_text() == heading
    # week and month views
    page.click("nav.periods >> text=Week")
    assert "Week" in page.locator("h1").inner_text()
    page.click("nav.periods >> text=Month")
    assert page.locator("article.card").count() >= 10
    # search from the header box
    page.fill("header input[name=q]", "neural collapse in language models")
    page.press("header input[name=q]", "Enter")
    page.wait_for_selector("article.card")
    assert "Results for" in page.locator("h1").inner_text()
    assert page.locator("article.card p.snippet mark").count() >= 1
    # open the first result
    title = page.locator("article.card h2.title a").first.inner_text()
    page.locator("article.card h2.title a").first.click()
    assert page.locator("h1").inner_text() == title
    page.wait_for_selector("section.similar article.card")
    page.screenshot(path=str(ARTIFACTS / "paper.png"), full_page=True)


PHONE = 390  # CSS pixels of a current phone in portrait


def test_phone_width_has_no_sideways_scroll(browser, base: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": PHONE, "height": 844}, is_mobile=True, has_touch=True,
                                  device_scale_factor=3)
    page = context.new_page()
    page.goto(base + "/")
    paper = page.locator("article.card h2.title a").first.get_attribute("href")
    pages = ["/", paper, "/search?q=neural+collapse", "/trending", "/top?period=month", "/submit", "/signup",
             "/login", "/about", page.locator("nav.periods a", has_text="Week").get_attribute("href")]
    for path in pages:
        page.goto(base + path)
        width = page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
        assert width <= PHONE, f"{path} is {width} px wide"
        # every card's text stays inside the screen
        overflow = page.evaluate(f"""[...document.querySelectorAll('article.card, article.paper')]
            .filter(el => el.getBoundingClientRect().right > {PHONE} + 0.5).length""")
        assert overflow == 0, path
    page.goto(base + "/")
    page.screenshot(path=str(ARTIFACTS / "feed-phone.png"))
    page.goto(base + paper)
    page.screenshot(path=str(ARTIFACTS / "paper-phone.png"), full_page=True)
    context.close()


def test_sign_up_and_upvote(page, base: str) -> None:
    page.goto(base + "/signup")
    page.fill("input[name=username]", "browseruser")
    page.fill("input[name=password]", "a long password")
    page.click("form.form button[type=submit]")
    page.wait_for_url(base + "/")
    assert page.locator("header .me").inner_text() == "browseruser"
    card = page.locator("article.card").first
    count = card.locator("[data-count]")
    before = int(count.inner_text())
    card.locator("form.vote button").click()
    page.wait_for_function("([el, n]) => el.textContent === String(n)", arg=[count.element_handle(), before + 1])
    assert card.locator("form.vote").get_attribute("class") == "vote voted"
    # the count survives a reload (it is stored), and a second click takes the vote back
    page.reload()
    card = page.locator("article.card").first
    assert int(card.locator("[data-count]").inner_text()) == before + 1
    card.locator("form.vote button").click()
    page.wait_for_function("([el, n]) => el.textContent === String(n)",
                           arg=[card.locator("[data-count]").element_handle(), before])
