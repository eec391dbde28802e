"""/trending, /top and their API and feed anchored to now on a real server: the sample corpus's days are
in 2025, long before today, and one paper submitted today must not hide the others or their votes."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import httpx
import pytest
from conftest import copy_home
from web_server import csrf_of, serve, signed_up_client

from paperwire.model import make_paper
from paperwire.rank.trending import FORMULA
from paperwire.store import open_store

CARD = re.compile(r'<article class="card" id="p-[^"]*" data-id="([^"]+)">(.*?)</article>', re.S)
SCORE = re.compile(r'<span class="score" title="([^"]*)" data-score="[^"]+">([^<]*)</span>')


@pytest.fixture(scope="module")
def site(seed_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    home = copy_home(seed_home, tmp_path_factory.mktemp("trending-now") / "home")
    with serve(home) as base:
        yield home, base


def ids(page: str) -> list[str]:
    return [pid for pid, _ in CARD.findall(page)]


def vote(client: httpx.Client, paper_id: str) -> None:
    token = csrf_of(client.get(f"/papers/{paper_id}").text)
    response = client.post(f"/papers/{paper_id}/vote", data={"csrf_token": token, "action": "up"},
                           headers={"accept": "application/json"})
    assert response.status_code == 200 and response.json()["voted"] is True


def test_old_voted_papers_stay_on_trending_and_top_after_a_new_submission(site: tuple[Path, str]) -> None:
    home, base = site
    today = datetime.now(UTC).date().isoformat()
    # Nothing listed in the last month: the newest papers stand in rather than an empty page.
    before = ids(httpx.get(f"{base}/trending", timeout=60).text)
    assert len(before) == 30
    loved = before[-1]
    for i in range(3):
        vote(signed_up_client(base, f"fan{i}"), loved)

    new = make_paper(title="Sparse Attention Kernels Submitted Today", abstract="A brand new paper.",
                     source="submission", listed_on=today, submitted_by="fan0")
    store = open_store(home)
    try:
        store.upsert_papers([new])
    finally:
        store.close()

    page = httpx.get(f"{base}/trending", timeout=60).text
    listed = ids(page)
    # the new paper leads (no age), the voted old one comes next, and the old papers are all still there
    assert listed[:2] == [new.id, loved] and len(listed) == 30 and set(listed[2:]) <= set(before)
    for title, label in SCORE.findall(page):
        assert re.fullmatch(r"listed .+ ago · score (\d+|&lt;1)", label) and "e-0" not in label, label
        assert html.escape(FORMULA, quote=True) in title
    assert SCORE.findall(page)[0][1].endswith("score 100")

    # The daily-papers API's trending sort and the trending feed rank the same way.
    api = httpx.get(f"{base}/api/daily_papers", params={"sort": "trending", "limit": 30}, timeout=60).json()
    assert [entry["paper"]["id"] for entry in api] == listed
    feed = feedparser.parse(httpx.get(f"{base}/feeds/trending.atom", timeout=60).content)
    assert len(feed.entries) >= 10 and any(loved in entry.link for entry in feed.entries[:3])

    # Top of the month: the new paper is this month's; the month before the newest older day follows,
    # the voted paper first.
    top = httpx.get(f"{base}/top", params={"period": "month"}, timeout=60).text
    current, _, earlier = top.partition('<div class="cards earlier">')
    assert ids(current) == [new.id] and f"– {today}" in current
    assert ids(earlier)[0] == loved and len(ids(earlier)) == 29
