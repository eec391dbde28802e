"""The library on the site, against a real server and the sample corpus's real index: save under tags,
read / not-relevant marks, keyword alerts, imports from files, and /recommended with its reasons."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import SEEDS
from web_server import csrf_of, serve, signed_up_client

from paperwire.sources import hf_page
from paperwire.store import open_store


def page_ids(path: Path) -> list[str]:
    with open(path, "rb") as fh:
        return list(dict.fromkeys(p.id for p in hf_page.parse(fh, str(path)) if hasattr(p, "id")))


@pytest.fixture(scope="module")
def site(web_home: Path) -> Iterator[str]:
    with serve(web_home) as base:
        yield base


def card_ids(html: str) -> list[str]:
    return re.findall(r'<article class="card" id="p-([^"]+)"', html)


def post(client: httpx.Client, path: str, data: dict[str, str], page: str = "/library") -> httpx.Response:
    token = csrf_of(client.get(page).text)
    return client.post(path, data={"csrf_token": token, **data}, headers={"referer": str(client.base_url.join(page))})


def test_save_tags_marks_and_recommendations_with_why(site: str) -> None:
    client = signed_up_client(site, "reader1")
    # Signed out, the pages send you to log in and the API says 401.
    anonymous = httpx.Client(base_url=site, timeout=30)
    assert anonymous.get("/recommended").status_code == 303
    assert anonymous.get("/api/recommended").status_code == 401
    assert anonymous.get("/library").headers["location"] == "/login?next=/library"

    # Nothing saved yet: trending stands in, and says so.
    page = client.get("/recommended").text
    assert "Nothing to learn from yet" in page and len(card_ids(page)) >= 10
    assert "Why: trending now" in page

    topic = page_ids(SEEDS[3])
    saved = topic[:5]
    for pid in saved:
        response = post(client, f"/papers/{pid}/save", {"tag": "topic"})
        assert response.status_code == 303 and response.headers["location"] == "/library"
    other = page_ids(SEEDS[0])[0]
    assert post(client, f"/papers/{other}/save", {}).status_code == 303  # untagged
    # Without the CSRF token nothing is saved.
    assert client.post(f"/papers/{topic[6]}/save", data={"tag": "topic"}).status_code == 403

    library = client.get("/library").text
    assert set(card_ids(library)) == {*saved, other}
    assert 'href="/library?tag=topic"' in library and "untagged" in library
    tagged = client.get("/library", params={"tag": "topic"}).text
    assert set(card_ids(tagged)) == set(saved)

    recs = client.get("/api/recommended", params={"limit": 10}).json()
    assert {r["source"] for r in recs} == {"classifier"} and not {r["id"] for r in recs} & {*saved, other}
    by_tag = client.get("/api/recommended", params={"tag": "topic", "limit": 10}).json()
    assert all({w["id"] for w in r["why"]} <= set(saved) for r in by_tag)
    assert len({r["id"] for r in by_tag} & set(topic)) >= 4  # the tag's topic, far above chance

    # The page shows each item's reason, naming and linking the saved papers it is near.
    page = client.get("/recommended", params={"tag": "topic"}).text
    shown = card_ids(page)
    assert shown[:10] == [r["id"] for r in by_tag]
    assert page.count("Why: because you saved") == len(shown)
    first_why = re.search(r'<p class="why">(.*?)</p>', page, re.S).group(1)
    assert any(f'href="/papers/{pid}"' in first_why for pid in saved)

    # "Not relevant" and "read" take a paper out for good; "not relevant" is remembered as a mark.
    gone, read = shown[0], shown[1]
    assert post(client, f"/papers/{gone}/mark", {"mark": "not_relevant"}, "/recommended").status_code == 303
    answer = client.post(f"/papers/{read}/mark", data={"mark": "read", "csrf_token": csrf_of(page)},
                         headers={"accept": "application/json"})
    assert answer.json() == {"id": read, "mark": "read", "on": True}
    after = card_ids(client.get("/recommended", params={"tag": "topic"}).text)
    assert gone not in after and read not in after
    assert "1 marked read · 1 marked not relevant" in client.get("/library").text
    bad = client.post(f"/papers/{gone}/mark", data={"mark": "delete", "csrf_token": csrf_of(page)})
    assert bad.status_code == 422

    # Removing from a tag; an unknown paper is a 404.
    assert post(client, f"/papers/{saved[0]}/save", {"tag": "topic", "remove": "true"}).status_code == 303
    assert saved[0] not in card_ids(client.get("/library", params={"tag": "topic"}).text)
    assert post(client, "/papers/2599.99999/save", {}).status_code == 404

    # The account export carries the library.
    export = client.get("/account/export.json").json()
    assert {row["paper_id"] for row in export["library_items"]} >= set(saved[1:])
    assert {row["mark"] for row in export["paper_marks"]} == {"read", "not_relevant"}


def test_keyword_alerts_and_escaping(site: str) -> None:
    client = signed_up_client(site, "reader2")
    evil = '<script>alert(1)</script> "quoted"'
    assert post(client, "/library/alerts", {"query": evil}).status_code == 303
    assert post(client, "/library/alerts", {"query": "diffusion models"}).status_code == 303
    page = client.get("/library").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert post(client, "/library/alerts", {"query": evil, "remove": "true"}).status_code == 303
    page = client.get("/library").text
    assert "alert(1)" not in page and "diffusion models" in page
    assert post(client, "/library/alerts", {"query": "   "}).status_code == 422
    tag = post(client, f"/papers/{page_ids(SEEDS[1])[0]}/save", {"tag": "<b>x</b>"})
    assert tag.status_code == 303
    assert "&lt;b&gt;x&lt;/b&gt;" in client.get("/library").text


def test_import_bibtex_csl_json_and_id_lists(site: str, seed_home: Path, tmp_path: Path) -> None:
    client = signed_up_client(site, "reader3")
    store = open_store(seed_home)
    try:
        first, second, third = (store.get_paper(pid) for pid in page_ids(SEEDS[2])[:3])
    finally:
        store.close()
    bib = f"""@inproceedings{{mine, title={{{first.raw_title.upper()}}}, year={{2025}}}}
@article{{lost, title={{A Reference Nobody Stored}}, doi={{10.9999/none}}, year={{2020}}}}
@article{{broken, title={{Unclosed
"""
    token = csrf_of(client.get("/library").text)
    response = client.post("/library/import", data={"csrf_token": token, "tag": "from-bib"},
                           files={"file": ("refs.bib", bib.encode(), "application/x-bibtex")})
    assert response.status_code == 200
    page = response.text
    assert "1 of 2 references matched" in page and "1 by title" in page
    assert "lost" in page and "A Reference Nobody Stored" in page  # unmatched, listed
    assert set(card_ids(client.get("/library", params={"tag": "from-bib"}).text)) == {first.id}

    csl = [{"id": "a", "type": "article-journal", "title": second.raw_title},
           {"id": "b", "type": "article-journal", "title": "Something else entirely", "DOI": "10.1/zzz"}]
    answer = client.post("/library/import", data={"csrf_token": token, "format": "csl-json"},
                         files={"file": ("refs.json", json.dumps(csl).encode(), "application/json")},
                         headers={"accept": "application/json"}).json()
    assert (answer["matched"], answer["matched_by"]["title"], [u["key"] for u in answer["unmatched"]]) == (1, 1, ["b"])

    ids = f"# reading list\n{third.arxiv_id or '2501.00001'}\nnot an id\n"
    answer = client.post("/library/import", data={"csrf_token": token, "format": "ids"},
                         files={"file": ("ids.txt", ids.encode(), "text/plain")},
                         headers={"accept": "application/json"}).json()
    assert answer["entries"] == 1 and len(answer["rejected"]) == 1

    # No CSRF token, no import; a file that is too large is refused.
    assert client.post("/library/import", files={"file": ("x.bib", b"", "text/plain")}).status_code == 403
    big = client.post("/library/import", data={"csrf_token": token},
                      files={"file": ("x.txt", b"2501.00001\n" * 600_000, "text/plain")})
    assert big.status_code == 413


def test_paper_page_offers_save_and_marks_when_signed_in(site: str) -> None:
    pid = page_ids(SEEDS[4])[0]
    anonymous = httpx.get(f"{site}/papers/{pid}", timeout=30).text
    assert f'action="/papers/{pid}/save"' not in anonymous
    client = signed_up_client(site, "reader4")
    page = client.get(f"/papers/{pid}").text
    assert f'action="/papers/{pid}/save"' in page and page.count(f'action="/papers/{pid}/mark"') == 2
    saved = client.post(f"/papers/{pid}/save", data={"csrf_token": csrf_of(page), "tag": "later"},
                        headers={"accept": "application/json"})
    assert saved.json() == {"id": pid, "saved": True, "tags": ["later"]}
