"""Author pages: the store's author index (written with the papers, filled by a migration, spellings joined
only through one paper), and /authors/{name} on the real server, in httpx and in Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from paperwire.model import make_paper
from paperwire.store import open_store
from paperwire.store.authors import Authors, author_key, same_person, variant_pairs

ABSTRACT = "We study the quorvex estimator for sparse recovery and report its error on several benchmarks. " * 2


def paper(arxiv_id: str, authors: list[str], day: str, source: str = "arxiv-snapshot", title: str = "") -> Any:
    return make_paper(title=title or f"Quorvex estimation study {arxiv_id}", abstract=ABSTRACT, arxiv_id=arxiv_id,
                      source=source, authors=authors, published=day, listed_on=day)


# ------------------------------------------------------------ names


def test_author_keys_fold_accents_case_and_punctuation() -> None:
    assert author_key("Paul Erdős") == author_key("paul erdos") == "paul erdos"
    assert author_key("J.-P. Serre") == "j p serre"
    assert author_key("  ") == ""


def test_same_person_needs_one_surname_and_agreeing_given_names() -> None:
    assert same_person("j smith", "john smith")
    assert same_person("john a smith", "j smith")
    assert not same_person("j smith", "k smith")
    assert not same_person("jane smith", "john smith")
    assert not same_person("smith", "john smith")  # a surname alone says nothing
    assert not same_person("john smith", "john smyth")
    assert variant_pairs(["J. Smith", "A. Other"], ["John Smith", "Anna Other"]) == [
        ("j smith", "john smith"), ("a other", "anna other")]
    # lists of different lengths: only a surname that is unique on both sides pairs up
    assert variant_pairs(["J. Smith", "B. Jones"], ["John Smith"]) == [("j smith", "john smith")]


# ------------------------------------------------------------ the store


def test_papers_are_indexed_by_author_newest_first(store_home: Path) -> None:
    store = open_store(store_home)
    store.upsert_papers([paper("2401.00001", ["Ada Quill", "Bo Renn"], "2024-01-05"),
                         paper("2403.00002", ["Ada Quill"], "2024-03-01"),
                         paper("2402.00003", ["Bo Renn", "ada QUILL"], "2024-02-10")])
    authors = Authors(store)
    assert [p.paper_id for p in authors.papers([author_key("Ada Quill")])] == ["2403.00002", "2402.00003",
                                                                                "2401.00001"]
    coauthors = authors.coauthors(["ada quill"], ["2403.00002", "2402.00003", "2401.00001"])
    assert [(c.name, c.papers) for c in coauthors] == [("Bo Renn", 2)]
    assert authors.by_surname("quill") == [("ada quill", "Ada Quill", 3)]
    store.close()


def test_spellings_join_only_through_one_paper(store_home: Path) -> None:
    store = open_store(store_home)
    store.upsert_papers([paper("2401.00011", ["J. Smith", "A. Other"], "2024-01-11"),
                         paper("2401.00012", ["John Smith"], "2024-01-12")])
    authors = Authors(store)
    # Two papers, two spellings: never guessed to be one person.
    assert authors.group("j smith") == ["j smith"]
    assert [p.paper_id for p in authors.papers(authors.group("j smith"))] == ["2401.00011"]
    # The first paper again from another source, spelling the name out: that paper links the spellings.
    result = store.upsert_papers([paper("2401.00011", ["John Smith", "A. Other"], "2024-01-11", source="hf-daily")])
    assert result.status == {"2401.00011": "unchanged"}  # the stored record keeps its authors …
    assert sorted(authors.group("j smith")) == ["j smith", "john smith"]  # … and the link is kept
    assert [p.paper_id for p in authors.papers(authors.group("john smith"))] == ["2401.00012", "2401.00011"]
    assert [(v.name_a, v.name_b, v.paper_id) for v in authors.links(authors.group("j smith"))] == [
        ("J. Smith", "John Smith", "2401.00011")]
    store.close()


def test_a_new_version_with_new_authors_replaces_the_rows_and_a_rekeyed_paper_moves(store_home: Path) -> None:
    store = open_store(store_home)
    title_only = make_paper(title="Quorvex estimation under drift", abstract=ABSTRACT, source="hf-page",
                            authors=["Cy Vale"], listed_on="2024-04-01")
    store.upsert_papers([title_only])
    authors = Authors(store)
    assert [p.paper_id for p in authors.papers(["cy vale"])] == [title_only.id]
    # The arXiv record of the same paper arrives: the paper is re-keyed, its author rows follow it.
    store.upsert_papers([make_paper(title="Quorvex estimation under drift", abstract=ABSTRACT, source="arxiv-atom",
                                    arxiv_id="2404.00021v2", authors=["Cy Vale", "Di Moss"], listed_on="2024-04-01")])
    assert [p.paper_id for p in authors.papers(["cy vale"])] == ["2404.00021"]
    assert authors.papers(["di moss"]) == []  # the capture's list stays (not a newer version of it)
    left = store.conn.execute("SELECT COUNT(*) FROM paper_authors WHERE paper_id = ?", (title_only.id,)).fetchone()
    assert left == (0,)
    # A newer version with another author list replaces the rows.
    store.upsert_papers([make_paper(title="Quorvex estimation under drift", abstract=ABSTRACT, source="arxiv-atom",
                                    arxiv_id="2404.00021v3", authors=["Di Moss"], listed_on="2024-04-01")])
    assert authors.papers(["cy vale"]) == []
    assert [p.paper_id for p in authors.papers(["di moss"])] == ["2404.00021"]
    store.close()


def test_the_migration_fills_the_index_for_papers_stored_before_it(store_home: Path) -> None:
    home = store_home
    store = open_store(home)
    store.upsert_papers([paper("2401.00031", ["Ed Lorn", "Fay Mott"], "2024-01-31")])
    # As a database made before the author index: no tables, the migration not applied.
    with store.transaction():
        store.conn.execute("DROP TABLE paper_authors")
        store.conn.execute("DROP TABLE author_links")
        store.conn.execute("DELETE FROM schema_migrations WHERE name = '0006_paper_authors'")
    store.close()
    store = open_store(home)
    assert [p.paper_id for p in Authors(store).papers(["fay mott"])] == ["2401.00031"]
    store.close()


# ------------------------------------------------------------ the site

@pytest.fixture(scope="module")
def base(web_home: Path) -> Iterator[str]:
    """The module's server, over a home whose topics are built (the extra papers join them once indexed)."""
    from web_server import serve

    from paperwire.rank.topics import build_topics

    store = open_store(web_home)
    try:
        build_topics(web_home, store)
    finally:
        store.close()
    with serve(web_home) as url:
        yield url


EXTRA_PAPERS = [
    paper("2501.00041", ["Greta Holm", "Hal Ives", "<script>alert(1)</script> Zed"], "2025-03-12",
          title="Quorvex transport for sparse recovery"),
    paper("2501.00042", ["Greta Holm", "Ines Joyce"], "2025-03-13", title="Quorvex bounds in high dimension"),
    paper("2501.00043", ["G. Holm"], "2025-03-14", title="Quorvex lower bounds revisited"),
]


def test_author_page_lists_papers_newest_first_with_coauthors(base: str) -> None:
    response = httpx.get(base + "/authors/" + quote("Greta Holm"), timeout=60)
    assert response.status_code == 200
    html = response.text
    assert "<h1>Greta Holm</h1>" in html
    ids = re.findall(r'<article class="card" id="p-([^"]+)"', html)
    assert ids == ["2501.00042", "2501.00041"]  # G. Holm's paper is not joined: no paper links the spellings
    coauthors = re.search(r'<section class="coauthors">(.*?)</section>', html, re.S).group(1)
    assert 'href="/authors/Hal%20Ives"' in coauthors and 'href="/authors/Ines%20Joyce"' in coauthors
    # The topics its papers are in, linked
    topics = re.search(r'<section class="author-topics">(.*?)</section>', html, re.S).group(1)
    assert re.search(r'<a href="/topics/\d+">[^<]+</a> <span class="sub">[12]</span>', topics)
    # A name is text wherever it shows, never markup
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; Zed" in html


def test_cards_and_paper_pages_link_every_author(base: str) -> None:
    feed = httpx.get(base + "/papers/date/2025-03-13", timeout=60).text
    assert '<a class="author" href="/authors/Greta%20Holm">Greta Holm</a>' in feed
    page = httpx.get(base + "/papers/2501.00041", timeout=60).text
    authors = re.search(r'<p class="authors">(.*?)</p>', page, re.S).group(1)
    assert authors.count('class="author"') == 3
    assert 'href="/authors/%3Cscript%3Ealert%281%29%3C/script%3E%20Zed"' in authors
    assert httpx.get(base + "/authors/%3Cscript%3Ealert%281%29%3C/script%3E%20Zed", timeout=60).status_code == 200


def test_au_search_links_to_the_author_page(base: str) -> None:
    html = httpx.get(base + "/search", params={"q": 'au:"Greta Holm" quorvex', "mode": "lexical"}, timeout=60).text
    assert re.search(r'class="sub author-pages">Author page: <a href="/authors/Greta%20Holm">Greta Holm</a>', html)


def test_unknown_names_and_pages_past_the_end_are_404s_and_a_surname_lists_the_names(base: str) -> None:
    missing = httpx.get(base + "/authors/Nobody%20Atall", timeout=60)
    assert missing.status_code == 404 and "No papers by “Nobody Atall” here." in missing.text
    assert httpx.get(base + "/authors/Greta%20Holm?page=9", timeout=60).status_code == 404
    assert httpx.get(base + "/authors/" + "x" * 500, timeout=60).status_code == 404
    surname = httpx.get(base + "/authors/Holm", timeout=60)
    assert surname.status_code == 200
    assert 'href="/authors/Greta%20Holm"' in surname.text and 'href="/authors/G.%20Holm"' in surname.text


@pytest.mark.browser
def test_an_author_link_on_a_card_opens_the_author_page(browser: Any, base: str) -> None:
    page = browser.new_page()
    page.goto(base + "/papers/date/2025-03-12")
    card = page.locator("article.card[data-id='2501.00041']")
    card.get_by_role("link", name="Hal Ives").click()
    page.wait_for_url(base + "/authors/Hal%20Ives")
    assert page.locator("h1").inner_text() == "Hal Ives"
    assert page.locator("article.card").count() == 1
    page.locator(".coauthors").get_by_role("link", name="Greta Holm").click()
    page.wait_for_url(base + "/authors/Greta%20Holm")
    assert page.locator("article.card").count() == 2
    page.close()
