"""In headless Chromium against a real server: the Save / "Saved ✓" + Unsave toggle on cards (with and
without scripts), on the paper page and in the library, and the /subscribe form's layout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import copy_home
from web_server import serve

PASSWORD = "velvet orbit quarry lantern 42"
SAVED_JS = "id => document.querySelector(`#p-${CSS.escape(id)} form.save`).classList.contains('saved')"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def base(seed_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = copy_home(seed_home, tmp_path_factory.mktemp("browser-library") / "home")
    with serve(home) as url:
        yield url


def signed_up_page(browser: Any, base: str, name: str, *, scripts: bool = True) -> Any:
    context = browser.new_context(viewport={"width": 1200, "height": 900}, java_script_enabled=scripts)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    page.goto(base + "/signup")
    page.fill("input[name=username]", name)
    page.fill("input[name=email]", f"{name}@example.org")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.form button[type=submit]")
    page.wait_for_url(base + "/")
    return page


def card_state(card: Any) -> tuple[str, bool]:
    """(the Save button's label, whether "Saved ✓" shows) of one card."""
    form = card.locator("form.save")
    return form.locator("button").inner_text(), form.locator(".state").is_visible()


def test_save_and_unsave_on_cards_the_paper_page_and_the_library(browser: Any, base: str, tmp_path: Path) -> None:
    page = signed_up_page(browser, base, "keeper")
    page.goto(base + "/trending")
    card = page.locator("article.card").nth(1)
    paper_id = card.get_attribute("data-id")
    assert card_state(card) == ("Save", False)
    card.locator("form.save button").click()  # sent with fetch: the page stays, the card changes
    page.wait_for_function(SAVED_JS, arg=paper_id)
    assert card_state(card) == ("Unsave", True)
    assert card.locator("form.save .state").inner_text() == "Saved ✓"
    page.screenshot(path=str(tmp_path / "trending-saved.png"))
    page.reload()  # stored, not only shown
    card = page.locator(f"article.card[data-id='{paper_id}']")
    assert card_state(card) == ("Unsave", True)
    card.locator("form.save button").click()
    page.wait_for_function("id => !(" + SAVED_JS + ")(id)", arg=paper_id)
    page.reload()
    assert card_state(page.locator(f"article.card[data-id='{paper_id}']")) == ("Save", False)

    # The paper page: Save (optionally under a tag), then "Saved ✓" with Unsave.
    page.goto(f"{base}/papers/{paper_id}")
    actions = page.locator("article.paper .lib-actions")
    assert actions.locator("form.save").count() == 0
    actions.locator("form.lib-form", has=page.locator("input[name=tag]")).locator("button").click()
    page.wait_for_selector("article.paper .lib-actions form.save .state")
    assert card_state(actions) == ("Unsave", True)
    page.screenshot(path=str(tmp_path / "paper-saved.png"), full_page=True)
    actions.locator("form.save button").click()
    page.wait_for_load_state()
    assert actions.locator("form.save").count() == 0
    assert actions.locator("form.lib-form button").first.inner_text() == "Save"

    # The library lists it with Unsave, which takes it out.
    actions.locator("form.lib-form", has=page.locator("input[name=tag]")).locator("button").click()
    page.wait_for_selector("article.paper .lib-actions form.save")
    page.goto(base + "/library")
    assert page.locator("article.card").count() == 1
    page.locator(".lib-actions form.save button").click()
    page.wait_for_load_state()
    assert page.locator("article.card").count() == 0
    assert not page.errors


def test_save_toggle_works_without_scripts(browser: Any, base: str) -> None:
    page = signed_up_page(browser, base, "noscript", scripts=False)
    page.goto(base + "/search?q=sparse+attention")
    card = page.locator("article.card").first
    paper_id = card.get_attribute("data-id")
    card.locator("form.save button").click()  # a plain POST, and the server sends the reader back
    page.wait_for_url(base + "/search?q=sparse+attention")
    card = page.locator(f"article.card[data-id='{paper_id}']")
    assert card_state(card) == ("Unsave", True)
    card.locator("form.save button").click()
    page.wait_for_url(base + "/search?q=sparse+attention")
    assert card_state(page.locator(f"article.card[data-id='{paper_id}']")) == ("Save", False)


def test_subscribe_form_checkboxes_sit_beside_their_labels(browser: Any, base: str, tmp_path: Path) -> None:
    page = signed_up_page(browser, base, "subscriber")
    page.goto(base + "/subscribe")
    assert page.input_value("input[name=email]") == "subscriber@example.org"
    boxes = page.evaluate("""[...document.querySelectorAll('form label.check')].map(label => {
        const box = label.querySelector('input[type=checkbox]').getBoundingClientRect();
        const range = document.createRange();  // the words' own box, not the label's
        range.selectNodeContents(label.querySelector('span'));
        const text = range.getBoundingClientRect();
        return {box: [box.top, box.bottom, box.right], text: [text.top, text.bottom, text.left]};
    })""")
    assert len(boxes) == 2  # trending and, signed in, the library's keyword alerts
    for found in boxes:
        (box_top, box_bottom, box_right), (text_top, text_bottom, text_left) = found["box"], found["text"]
        assert box_top < text_bottom and text_top < box_bottom, found  # on one line
        assert box_right <= text_left, found  # the box before its words
    page.screenshot(path=str(tmp_path / "subscribe.png"), full_page=True)
    assert (tmp_path / "subscribe.png").stat().st_size > 5_000
