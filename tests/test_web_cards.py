"""Cards as Hugging Face shows them: thumbnail, submitter, day chips with the year where it differs; the JSON
API's media fields; one search box on /search with the first result above the fold, on a phone and a desktop."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, constants

from paperwire.model import Paper, make_paper
from paperwire.sources import hf_daily

THUMBNAIL = "https://images.invalid/zyx/overview.png"  # never fetched: the browser tests answer it themselves
TODAY = datetime.now(UTC).date().isoformat()
THUMBED = make_paper(title="Zyxomorphic Lattice Sieves for Sparse Retrieval", source="test", arxiv_id="2503.99001",
                     abstract="We sieve zyxomorphic lattices to retrieve sparse codes quickly. " * 4,
                     authors=["Ada Lovelace", "Bea Two"], categories=["cs.IR"], listed_on=TODAY,
                     submitted_by="ada<lab>", thumbnail=THUMBNAIL)
OLD = make_paper(title="Zyxomorphic Automata and Quorum Sensing", source="test", listed_on="1997-11-27",
                 abstract="Zyxomorphic cellular automata model quorum sensing in bacterial colonies. " * 3)
EXTRA_PAPERS = [THUMBED, OLD]

STATIC = Path(__file__).resolve().parent.parent / "paperwire" / "web" / "static"


def _this_year_label(day: str) -> str:
    when = datetime.fromisoformat(day)
    return f"{when:%b} {when.day}"


def test_cards_show_thumbnail_submitter_and_day_chips_with_the_year_where_it_differs(base: str) -> None:
    html = httpx.get(base + "/search", params={"q": "zyxomorphic", "mode": "lexical"}, timeout=60).text
    assert html.count('<article class="card"') >= 2
    first = html[html.index('<article class="card"'):]
    first = first[:first.index("</article>")]
    assert 'id="p-2503.99001"' in first
    assert (f'<img src="{THUMBNAIL}" alt="" width="128" height="72" loading="lazy" decoding="async" '
            'referrerpolicy="no-referrer">') in first
    assert 'submitted by <span class="name">ada&lt;lab&gt;</span>' in first
    assert f'<time datetime="{TODAY}">{_this_year_label(TODAY)}</time>' in first  # no year: it is this year's
    assert '<time datetime="1997-11-27">Nov 27, 1997</time>' in html
    # the same chips on a month feed, and the old paper's card has neither thumbnail nor submitter
    month = httpx.get(base + "/papers/month/1997-11", timeout=60).text
    assert '<time datetime="1997-11-27">Nov 27, 1997</time>' in month
    assert 'class="thumb"' not in month and "submitted by" not in month


def test_the_day_strip_names_the_year_of_days_from_other_years(base: str) -> None:
    html = httpx.get(base + "/papers/date/1997-11-27", timeout=60).text
    strip = html[html.index('<span class="days">'):]
    strip = strip[:strip.index("</span>")]
    chips = re.findall(r'<time datetime="([\d-]+)">([^<]+)</time>', strip)
    assert ("1997-11-27", "Nov 27, 1997") in chips and len(chips) >= 3
    for day, label in chips:  # the year is named exactly when it is not this one
        year = f", {day[:4]}"
        assert label == (_this_year_label(day) if day[:4] == TODAY[:4] else _this_year_label(day) + year)


@pytest.fixture
def hub(base: str, monkeypatch: pytest.MonkeyPatch) -> HfApi:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the client's requests go to 127.0.0.1 only
    return HfApi(endpoint=base, token=False)


def test_the_api_returns_the_thumbnail_where_the_hub_has_it(base: str, hub: HfApi) -> None:
    info = httpx.get(base + "/api/papers/2503.99001", timeout=60).json()
    assert info["mediaUrls"] == [THUMBNAIL]
    assert hub.paper_info("2503.99001").mediaUrls == [THUMBNAIL]  # kept by PaperInfo as an extra attribute
    entries = httpx.get(base + "/api/daily_papers", params={"date": TODAY}, timeout=60).json()
    (entry,) = [e for e in entries if e["paper"]["id"] == "2503.99001"]
    assert entry["thumbnail"] == THUMBNAIL and entry["paper"]["mediaUrls"] == [THUMBNAIL]
    (listed,) = [p for p in hub.list_daily_papers(date=TODAY) if p.id == "2503.99001"]
    assert listed.thumbnail == THUMBNAIL
    old = httpx.get(base + "/api/papers/" + OLD.id, timeout=60).json()
    assert "mediaUrls" not in old
    # what the API says is read back by the hf-daily parser as the same thumbnail
    (again,) = [p for p in hf_daily.parse(io.BytesIO(json.dumps([entry]).encode()), "api.json")
                if isinstance(p, Paper)]
    assert again.thumbnail == THUMBNAIL and again.submitted_by == "ada<lab>"


# ------------------------------------------------------------ in Chromium


def _image(route) -> None:  # type: ignore[no-untyped-def]
    route.fulfill(status=200, content_type="image/svg+xml", body=(STATIC / "favicon.svg").read_bytes())


@pytest.mark.browser
@pytest.mark.parametrize(("width", "height"), [(390, 844), (1280, 800)])
def test_search_has_one_search_box_and_the_first_result_above_the_fold(browser, base: str, tmp_path: Path,
                                                                         width: int, height: int) -> None:
    phone = width < 640
    context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=phone, has_touch=phone,
                                  device_scale_factor=2 if phone else 1)
    # nothing leaves the machine: the thumbnail's host is answered here
    context.route(lambda url: not url.startswith(base), _image)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(base + "/search?q=zyxomorphic+lattice+sieves&mode=lexical")
        page.wait_for_load_state("load")
        page.wait_for_function("() => { const img = document.querySelector('article.card .thumb img');"
                               " return img && img.complete && img.naturalWidth > 0; }")
        page.screenshot(path=str(tmp_path / f"search-{width}.png"))
        visible = page.locator("input[type=search]").evaluate_all(
            "els => els.filter(e => e.offsetWidth > 0 && e.offsetHeight > 0"
            " && getComputedStyle(e).visibility !== 'hidden').length")
        assert visible == 1
        title = page.locator("article.card h2.title a").first
        assert title.inner_text().startswith("Zyxomorphic Lattice Sieves")
        box = title.bounding_box()
        assert box is not None and box["y"] + box["height"] < height, box  # the whole title line on the first screen
        # the thumbnail sits in its fixed box inside the card, and the card stays inside the screen
        image = page.locator("article.card .thumb img").first
        image_box, card_box = image.bounding_box(), page.locator("article.card").first.bounding_box()
        assert image_box is not None and card_box is not None
        assert image_box["width"] > 40 and 1.7 < image_box["width"] / image_box["height"] < 1.8
        assert card_box["x"] + card_box["width"] <= width + 0.5
        # the header's box is still there on other pages
        page.goto(base + "/")
        assert page.locator("header input[type=search]").is_visible()
        assert page.locator("input[type=search]").count() == 1
        assert not errors, errors
    finally:
        context.close()
