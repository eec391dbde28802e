"""Topic pages, the paper page's topic, rising this week, and the map, on the real server over the sample
corpus with real MiniLM vectors; the map drawn in Chromium (points on the canvas, a click opens a paper);
a home without vectors answers with a page that says so and 404 JSON."""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import seeded_home_on
from web_server import serve

from paperwire.rank.layout import build_map
from paperwire.rank.topics import build_topics, load_topics
from paperwire.store import open_store

NO_AUTO = {"PAPERWIRE_TOPICS_AUTO": "0"}


@pytest.fixture(scope="module")
def topics_home(backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded home with topics and the map built, on each backend in turn."""
    home = seeded_home_on(backend, tmp_path_factory.mktemp(f"web-topics-{backend}") / "home", request)
    store = open_store(home)
    try:
        build_topics(home, store)
    finally:
        store.close()
    build_map(home)
    return home


@pytest.fixture(scope="module")
def base(topics_home: Path) -> Iterator[str]:
    with serve(topics_home, NO_AUTO) as url:
        yield url


def test_topics_page_lists_every_topic_with_its_size(base: str, topics_home: Path) -> None:
    model = load_topics(topics_home)
    page = httpx.get(f"{base}/topics")
    assert page.status_code == 200
    for topic in model.topics:
        assert f'href="/topics/{topic.id}"' in page.text
    listed = httpx.get(f"{base}/api/topics").json()
    assert sum(t["size"] for t in listed["topics"]) == 407
    assert listed["embedder"] == model.embedder


def test_topic_page_lists_its_papers_newest_first_and_weekly_volume(base: str, topics_home: Path) -> None:
    model = load_topics(topics_home)
    topic = max(model.topics, key=lambda t: t.size)
    data = httpx.get(f"{base}/api/topics/{topic.id}", params={"limit": 100}).json()
    assert data["size"] == topic.size and data["label"] == topic.label
    days = [p["day"] for p in data["papers"]]
    assert days == sorted(days, reverse=True)
    members = set(np.asarray(model.ids)[model.assignment == topic.id])
    assert {p["id"] for p in data["papers"]} <= members
    store = open_store(topics_home, readonly=True)
    try:
        dated = sum(1 for p in store.get_papers(members).values() if p.listed_on or p.published)
    finally:
        store.close()
    assert 0 < dated < topic.size  # some captures carry no day
    assert sum(w["papers"] for w in data["weekly"]) == dated  # the sample spans a few weeks
    page = httpx.get(f"{base}/topics/{topic.id}")
    assert page.status_code == 200 and topic.label in page.text
    shown = re.findall(r'href="/papers/([^"/.]+)"', page.text)
    assert shown and set(shown) <= members
    assert page.text.count("<rect") == len(data["weekly"])
    top = httpx.get(f"{base}/topics/{topic.id}", params={"sort": "top"})
    assert top.status_code == 200 and 'aria-current="page">Top' in top.text


def test_unknown_topic_and_page_are_404s(base: str) -> None:
    assert httpx.get(f"{base}/topics/99999").status_code == 404
    assert httpx.get(f"{base}/api/topics/99999").json()["error"]
    assert httpx.get(f"{base}/topics/abc").status_code == 422


def test_paper_page_says_its_topic(base: str, topics_home: Path) -> None:
    model = load_topics(topics_home)
    paper_id = model.ids[0]
    topic = model.by_id[model.topic_of(paper_id)]
    page = httpx.get(f"{base}/papers/{paper_id}")
    assert f'topic: <a href="/topics/{topic.id}">' in page.text


def test_front_page_shows_rising_topics(base: str) -> None:
    page = httpx.get(f"{base}/")
    assert "Rising this week" in page.text
    rising = httpx.get(f"{base}/api/topics").json()["rising"]
    assert rising and f'href="/topics/{rising[0]["id"]}"' in page.text


def test_map_buffer_holds_every_paper_with_its_topic(base: str, topics_home: Path) -> None:
    meta = httpx.get(f"{base}/api/map/meta").json()
    assert meta["points"] == 407 and meta["method"] == "opentsne"
    payload = httpx.get(f"{base}/api/map/points.bin", params={"v": meta["version"]})
    assert payload.headers["content-type"] == "application/octet-stream"
    body = payload.content
    assert len(body) == 32 + 8 * 407
    n = struct.unpack("<I", body[8:12])[0]
    topic_index = np.frombuffer(body, "<u2", n, 32 + 4 * n)
    topics_by_index = {t["index"]: t["id"] for t in meta["topics"]}
    model = load_topics(topics_home)
    for point in (0, 100, 406):
        paper = httpx.get(f"{base}/api/map/paper/{point}", params={"v": meta["version"]}).json()
        assert topics_by_index[int(topic_index[point])] == model.topic_of(paper["id"]) == paper["topic"]["id"]
    assert httpx.get(f"{base}/api/map/paper/407", params={"v": meta["version"]}).status_code == 404
    stale = httpx.get(f"{base}/api/map/points.bin", params={"v": "0.0.0"})
    assert stale.status_code == 409 and stale.json()["version"] == meta["version"]


def test_map_highlights_a_search_and_asks_for_a_login_for_the_library(base: str) -> None:
    meta = httpx.get(f"{base}/api/map/meta").json()
    found = httpx.get(f"{base}/api/map/highlight", params={"q": "kolmogorov arnold", "v": meta["version"]}).json()
    assert found["points"] and len(found["points"]) == found["hits"]
    for point in found["points"][:3]:
        paper = httpx.get(f"{base}/api/map/paper/{point}", params={"v": meta["version"]}).json()
        page = httpx.get(f"{base}{paper['url']}").text.lower()
        assert "kolmogorov" in page
    assert httpx.get(f"{base}/api/map/highlight", params={"q": " "}).status_code == 422
    assert httpx.get(f"{base}/api/map/library").status_code == 401


@pytest.mark.browser
def test_map_draws_points_and_a_click_opens_the_paper(base: str, browser) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    refused: list[str] = []
    page.on("console", lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.goto(f"{base}/map")
    page.wait_for_selector("#map[data-ink]", state="attached", timeout=60_000)
    assert page.get_attribute("#map", "data-points") == "407"
    assert int(page.get_attribute("#map", "data-ink")) > 50  # coloured pixels on the WebGL canvas
    assert page.locator(".map-label").count() >= 2
    assert not refused
    box = page.locator("#map canvas").bounding_box()
    at = page.evaluate("() => window.paperwireMap.scatterplot.getScreenPosition(7)")
    page.mouse.move(box["x"] + at[0], box["y"] + at[1])
    page.wait_for_selector("#map-tip:not([hidden])", timeout=10_000)
    hovered = page.text_content("#map-tip").split(" — ")[0]  # title — topic
    page.mouse.click(box["x"] + at[0], box["y"] + at[1])
    page.wait_for_url(re.compile(r".*/papers/[^/]+$"), timeout=10_000)
    # the paper under the pointer (point 7, or one drawn on top of it) is the one that opens
    assert page.title() == f"{hovered} · paperwire"
    page.close()


@pytest.mark.browser
def test_map_colours_by_age_and_highlights_a_search(base: str, browser) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(f"{base}/map?q=kolmogorov")
    page.wait_for_selector("#map[data-ink]", state="attached", timeout=60_000)
    page.wait_for_function("() => window.paperwireMap.scatterplot.get('selectedPoints').length > 0", timeout=10_000)
    assert "highlighted" in page.text_content("#map-status")
    page.select_option("#map-colour", "age")
    assert page.evaluate("() => window.paperwireMap.scatterplot.get('colorBy')") == "valueW"  # the age value
    assert page.locator("#map-labels").is_hidden()
    page.close()


def test_home_without_vectors_gets_a_message_not_a_crash(tmp_path: Path) -> None:
    home = tmp_path / "home"
    open_store(home).close()  # a database, no papers, so no vectors
    with serve(home, NO_AUTO) as url:
        page = httpx.get(f"{url}/map")
        assert page.status_code == 404 and "There is no map yet" in page.text
        for path in ("/api/map/meta", "/api/map/points.bin", "/api/map/paper/0", "/api/topics", "/api/topics/1"):
            answer = httpx.get(f"{url}{path}")
            assert answer.status_code == 404 and answer.json()["error"], path
        topics = httpx.get(f"{url}/topics")
        assert topics.status_code == 404 and "no topics yet" in topics.text.lower()
        assert httpx.get(f"{url}/").status_code == 200


def test_server_builds_topics_when_due_and_not_again(seeded_copy: Callable[[Path], Path], tmp_path: Path) -> None:
    from web_server import serve_app

    from paperwire.web.topic_routes import service

    home = seeded_copy(tmp_path / "home")
    with serve_app(home, NO_AUTO) as (url, app):
        assert httpx.get(f"{url}/api/topics").status_code == 404
        topics = service(app.state.site)
        assert topics.rebuild_if_due() == "no topics yet"  # runs `paperwire topics build` in a process
        topics.checked = 0.0
        listed = httpx.get(f"{url}/api/topics")
        assert listed.status_code == 200 and sum(t["size"] for t in listed.json()["topics"]) == 407
        assert httpx.get(f"{url}/api/map/meta").json()["points"] == 407
        assert topics.rebuild_if_due() is None  # current: nothing to do
