"""The JSON API through the real huggingface_hub client, against a real server on loopback."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, constants
from huggingface_hub.errors import HfHubHTTPError
from web_server import csrf_of, signed_up_client

from paperwire.store import open_store


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # HF_HUB_OFFLINE blocks every request the client makes; these go to 127.0.0.1 only.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def api(base: str) -> HfApi:
    return HfApi(endpoint=base, token=False)


@pytest.fixture(scope="module")
def days(seed_home: Path) -> list[tuple[str, int]]:
    store = open_store(seed_home)
    try:
        return store.listing_days()
    finally:
        store.close()


def test_list_papers_searches(api: HfApi) -> None:
    papers = list(api.list_papers(query="neural collapse", limit=5))
    assert 1 <= len(papers) <= 5
    assert any("collapse" in p.title.lower() for p in papers)
    assert all(p.id and p.summary for p in papers)


def test_paper_info_and_read_paper(api: HfApi) -> None:
    first = next(iter(api.list_papers(query="Linguistic Collapse language models", limit=1)))
    info = api.paper_info(first.id)
    assert info.id == first.id
    assert info.title.startswith("Linguistic Collapse")
    assert info.summary.startswith("Neural collapse")
    assert info.submitted_at is not None
    markdown = api.read_paper(first.id)
    assert markdown.startswith("# Linguistic Collapse")
    assert "## Abstract" in markdown


def test_paper_info_unknown_is_404(api: HfApi) -> None:
    with pytest.raises(HfHubHTTPError) as err:
        api.paper_info("2401.99999")
    assert err.value.response.status_code == 404


def test_daily_papers_by_date_week_month(api: HfApi, days: list[tuple[str, int]]) -> None:
    day, count = days[0]
    on_day = list(api.list_daily_papers(date=day, limit=100))
    assert len(on_day) == min(count, 100)
    assert {p.submitted_at.date().isoformat() for p in on_day} == {day}
    from datetime import date

    iso = date.fromisoformat(day).isocalendar()
    in_week = _all_pages(api, week=f"{iso.year}-W{iso.week:02d}")
    assert {p.id for p in on_day} <= {p.id for p in in_week}
    in_month = _all_pages(api, month=day[:7])
    assert {p.id for p in on_day} <= {p.id for p in in_month}
    assert all(p.submitted_at.date().isoformat()[:7] == day[:7] for p in in_month)


def _all_pages(api: HfApi, **period: str) -> list:
    papers, page = [], 0
    while batch := list(api.list_daily_papers(limit=100, p=page, **period)):
        papers += batch
        page += 1
    assert len({p.id for p in papers}) == len(papers)  # pages do not overlap
    return papers


def test_daily_papers_paging_and_sorting(api: HfApi) -> None:
    page0 = [p.id for p in api.list_daily_papers(limit=10, p=0)]
    page1 = [p.id for p in api.list_daily_papers(limit=10, p=1)]
    assert len(page0) == len(page1) == 10 and not set(page0) & set(page1)
    newest = list(api.list_daily_papers(sort="publishedAt", limit=30))
    stamps = [p.submitted_at for p in newest]
    assert stamps == sorted(stamps, reverse=True)
    trending = list(api.list_daily_papers(sort="trending", limit=10))
    assert len(trending) == 10


def test_votes_show_in_the_api_and_submitter_filter(api: HfApi, base: str) -> None:
    client = signed_up_client(base, "apivoter")
    target = next(iter(api.list_daily_papers(limit=1)))
    before = api.paper_info(target.id).upvotes or 0
    page = client.get(f"/papers/{target.id}").text
    response = client.post(f"/papers/{target.id}/vote", data={"csrf_token": csrf_of(page), "action": "up"},
                           headers={"accept": "application/json"})
    assert response.status_code == 200 and response.json()["voted"] is True
    assert api.paper_info(target.id).upvotes == before + 1
    # a submission is listed today under its submitter
    form = client.get("/submit").text
    response = client.post("/submit", data={
        "csrf_token": csrf_of(form), "title": "A Submitted Paper About Sparse Probing",
        "abstract": "We probe sparse features in transformers and find them wanting in many ways. " * 3,
        "authors": "Ada Lovelace, Alan Turing"})
    assert response.status_code == 303
    mine = list(api.list_daily_papers(submitter="apivoter"))
    assert [p.title for p in mine] == ["A Submitted Paper About Sparse Probing"]
    assert mine[0].submitted_by.username == "apivoter"
    assert [a.name for a in api.paper_info(mine[0].id).authors] == ["Ada Lovelace", "Alan Turing"]


@pytest.mark.parametrize("path", [
    "/api/daily_papers?limit=101", "/api/daily_papers?limit=0", "/api/daily_papers?p=-1",
    "/api/daily_papers?p=100000", "/api/papers/search?q=x&limit=1000", "/api/papers/search?q=" + "a" * 301,
    "/api/daily_papers?date=2025-13-45", "/api/daily_papers?week=2025-W99", "/api/daily_papers?sort=bogus",
    "/api/query?max_results=100000", "/api/query?start=-5", "/api/query?search_query=" + "x" * 1001,
    "/feeds/search.atom?q=" + "a" * 301, "/api/query?search_query=ti:(unclosed",
])
def test_oversize_or_bad_parameters_get_a_json_4xx(base: str, path: str) -> None:
    response = httpx.get(base + path, timeout=30)
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error, str) and "\n" not in error and "Traceback" not in error


def test_openapi_is_served(base: str) -> None:
    spec = httpx.get(base + "/openapi.json", timeout=30).json()
    for path in ("/api/papers/search", "/api/papers/{paper_id}", "/api/daily_papers", "/api/query"):
        assert path in spec["paths"], path
