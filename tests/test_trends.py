"""Trends on the real server, the CLI and in Chromium: matching papers per month or week and their share
of all papers, checked against counts made here from the store's papers (not from the index)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from datetime import date
from pathlib import Path

import httpx
import pytest
from conftest import run_cli

from paperwire.index.query import tokenize
from paperwire.model import Paper, make_paper
from paperwire.store import open_store


def _paper(n: int, title: str, abstract: str, day: str | None, cats: tuple[str, ...] = ("cs.LG",)) -> Paper:
    return make_paper(title=title, abstract=abstract, source="test", arxiv_id=f"2490.{n:05d}",
                      categories=list(cats), published=day, listed_on=day, authors=["Quinn Okka"])


EXTRA_PAPERS = [
    _paper(1, "Quokkaformer: hopping attention", "We train a quokkaformer on images.", "2024-11-04"),
    _paper(2, "Scaling quokkaformers", "Quokkaformer models grow with data; wombat attention helps.", "2024-11-20"),
    _paper(3, "Wombat attention for speech", "A wombat attention layer for long audio.", "2025-01-15"),
    _paper(4, "Marsupial robots", "The quokkaformer drives a marsupial robot arm.", "2025-03-03", ("cs.RO",)),
    _paper(5, "Quokkaformer in the wild", "Field tests of the model, with attention of a wombat.", "2025-03-12"),
    _paper(6, "Sparse quokkaformer", "Pruning heads keeps accuracy.", "2025-03-28"),
    _paper(7, "Quokkaformer distillation", "Teacher and student; wombat attention again.", "2025-04-09"),
    _paper(8, "An undated quokkaformer note", "No day is known for this one.", None),
]
QUERIES = ("quokkaformer", "quokkaformer -marsupial", '"wombat attention"', "cat:cs.RO quokkaformer", "model")


# ---------------------------------------------------------------- counts made from the store

def _fields(paper: Paper) -> dict[str, list[str]]:
    return {"ti": tokenize(paper.title), "abs": tokenize(paper.abstract), "au": tokenize(" ; ".join(paper.authors))}


def _contains(tokens: list[str], phrase: list[str]) -> bool:
    return any(tokens[i:i + len(phrase)] == phrase for i in range(len(tokens) - len(phrase) + 1))


def _matches(paper: Paper, query: str) -> bool:
    """This file's own reading of the few query forms used here: words (every one, any field), one
    quoted phrase (title or abstract), -exclusions, cat: prefixes."""
    fields = _fields(paper)
    every = {t for tokens in fields.values() for t in tokens}
    for part in re.findall(r'"[^"]*"|\S+', query):
        if part.startswith('"'):
            phrase = tokenize(part.strip('"'))
            if not (_contains(fields["ti"], phrase) or _contains(fields["abs"], phrase)):
                return False
        elif part.startswith("-"):
            if set(tokenize(part[1:])) & every:
                return False
        elif part.startswith("cat:"):
            prefix = part[4:].lower()
            if not any(c.lower() == prefix or c.lower().startswith(prefix + ".") for c in paper.categories):
                return False
        elif not set(tokenize(part)) <= every:
            return False
    return True


def _day(paper: Paper) -> str | None:
    day = paper.published or paper.listed_on
    return day[:10] if day else None


def _month(day: str) -> str:
    return day[:7]


def _week(day: str) -> str:
    iso = date.fromisoformat(day).isocalendar()
    return f"{iso.year:04d}-W{iso.week:02d}"


@pytest.fixture(scope="module")
def papers(web_home: Path, base: str) -> list[Paper]:
    store = open_store(web_home)
    try:
        return [paper for _, paper in store.iter_papers()]
    finally:
        store.close()


def _expected(papers: list[Paper], query: str | None, key, first: str, last: str) -> Counter:  # type: ignore[no-untyped-def]
    return Counter(key(_day(p)) for p in papers
                   if _day(p) and first <= _day(p) <= last and (query is None or _matches(p, query)))


def _trends(base: str, **params: object) -> httpx.Response:
    return httpx.get(base + "/api/trends", params=params, timeout=60)


# ---------------------------------------------------------------- the API

def test_monthly_counts_and_shares_equal_those_made_from_the_store(base: str, papers: list[Paper]) -> None:
    answer = _trends(base, q=list(QUERIES[:3]), by="month", **{"from": "2024-10-01", "until": "2025-05-31"})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert (data["by"], data["from"], data["until"]) == ("month", "2024-10-01", "2025-05-31")
    keys = [p["key"] for p in data["periods"]]
    assert keys == ["2024-10", "2024-11", "2024-12", "2025-01", "2025-02", "2025-03", "2025-04", "2025-05"]
    assert data["periods"][0]["first"] == "2024-10-01" and data["periods"][-1]["last"] == "2025-05-31"
    totals = _expected(papers, None, _month, "2024-10-01", "2025-05-31")
    assert [p["papers"] for p in data["periods"]] == [totals[k] for k in keys]
    assert [s["q"] for s in data["series"]] == list(QUERIES[:3])
    for series in data["series"]:
        wanted = _expected(papers, series["q"], _month, "2024-10-01", "2025-05-31")
        assert series["counts"] == [wanted[k] for k in keys], series["q"]
        assert series["papers"] == sum(wanted.values())
        assert series["shares"] == [round(wanted[k] / totals[k], 6) if totals[k] else 0.0 for k in keys]
    quokka, without_marsupial, wombat = data["series"]
    assert quokka["counts"] == [0, 2, 0, 0, 0, 3, 1, 0]  # the undated paper is in no month
    assert without_marsupial["counts"] == [0, 2, 0, 0, 0, 2, 1, 0]
    assert wombat["counts"] == [0, 1, 0, 1, 0, 0, 1, 0]  # "attention of a wombat" is not the phrase


def test_without_dates_the_range_spans_the_corpus_and_a_short_range_counts_weeks(base: str,
                                                                                 papers: list[Paper]) -> None:
    data = _trends(base, q=["model", "cat:cs.RO quokkaformer"]).json()
    days = sorted(d for d in map(_day, papers) if d)
    assert (data["from"], data["until"]) == (days[0], days[-1])
    for series in data["series"]:
        assert series["papers"] == sum(1 for p in papers if _day(p) and _matches(p, series["q"])), series["q"]
    assert sum(p["papers"] for p in data["periods"]) == len(days)
    # two months and a bit: ISO weeks, clipped to the range at both ends
    weekly = _trends(base, q="model", **{"from": "2025-03-01", "until": "2025-04-30"}).json()
    assert weekly["by"] == "week"
    keys = [p["key"] for p in weekly["periods"]]
    assert keys[0] == "2025-W09" and keys[-1] == "2025-W18" and len(keys) == 10
    assert weekly["periods"][0]["first"] == "2025-03-01" and weekly["periods"][0]["last"] == "2025-03-02"
    wanted = _expected(papers, "model", _week, "2025-03-01", "2025-04-30")
    assert weekly["series"][0]["counts"] == [wanted[k] for k in keys]
    assert sum(wanted.values()) > 20  # a real check: the seed papers fall in these weeks
    totals = _expected(papers, None, _week, "2025-03-01", "2025-04-30")
    assert [p["papers"] for p in weekly["periods"]] == [totals[k] for k in keys]


@pytest.mark.parametrize(("params", "says"), [
    ({"q": "foo:bar"}, "unknown field 'foo:'"),
    ({"q": ["model", "ti:x foo:bar"]}, "query 2: unknown field 'foo:'"),
    ({"q": "model", "by": "day"}, "unknown period 'day'"),
    ({"q": "model", "from": "2025-02-30"}, "bad date '2025-02-30' in the from date"),
    ({"q": "model", "until": "soon"}, "bad date 'soon' in the until date"),
    ({"q": "model", "from": "2025-05-01", "until": "2025-04-01"}, "is after the until date"),
    ({"q": "model", "by": "week", "from": "1990", "until": "2025"}, "weeks; at most 520"),
    ({"q": ["a", "b", "c", "d"]}, "4 queries; at most 3"),
    ({}, "give a query"),
    ({"q": ""}, "empty query"),
    ({"q": "the of"}, "no words to count"),
    ({"q": "x" * 301}, "the query is 301 characters long; at most 300"),
    ({"q": ["model", "y" * 5000]}, "query 2 is 5,000 characters long; at most 300"),
])
def test_bad_input_is_a_422_with_one_line(base: str, params: dict, says: str) -> None:
    answer = _trends(base, **params)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert says in error and "\n" not in error


def test_a_word_no_paper_has_counts_zero_everywhere(base: str) -> None:
    data = _trends(base, q="zzyzxquux", **{"from": "2025-03", "until": "2025-04"}).json()
    assert data["by"] == "week" and data["series"][0]["counts"] == [0] * len(data["periods"])


def test_counts_follow_the_index_as_papers_are_added_replaced_and_removed() -> None:
    from paperwire.index.lexical import LexicalIndex
    from paperwire.index.query import parse_query
    from paperwire.index.trends import compute_trends

    index = LexicalIndex()
    index.add(EXTRA_PAPERS)
    window = {"by": "month", "date_from": "2024-11", "date_to": "2025-04"}
    before = compute_trends(index, ["quokkaformer"], **window)
    assert [p.papers for p in before.periods] == [2, 0, 1, 0, 3, 1]
    assert before.series[0].counts == [2, 0, 0, 0, 3, 1]
    moved = dataclasses.replace(EXTRA_PAPERS[5], published="2025-02-02", listed_on="2025-02-02")
    index.add([moved])  # the same paper with another day: counted once, in its new month
    after = compute_trends(index, ["quokkaformer"], **window)
    assert [p.papers for p in after.periods] == [2, 0, 1, 1, 2, 1]
    assert after.series[0].counts == [2, 0, 0, 1, 2, 1]
    index.remove([EXTRA_PAPERS[0].id])
    index.compact()
    last = compute_trends(index, ["quokkaformer"], **window)
    assert [p.papers for p in last.periods] == [1, 0, 1, 1, 2, 1]
    assert last.series[0].counts == [1, 0, 0, 1, 2, 1]
    assert index.count_by_days(parse_query("2490.00004"), [20250301, 20250401]).tolist() == [1]  # an id


# ---------------------------------------------------------------- the CLI

def test_cli_prints_the_same_counts_and_fails_with_one_line(base: str, web_home: Path) -> None:
    args = ("quokkaformer", "-marsupial quokkaformer", "--by", "month", "--from", "2024-10", "--until", "2025-05")
    proc = run_cli(web_home, "trends", *args, "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # not a terminal: no progress
    api = _trends(base, q=["quokkaformer", "-marsupial quokkaformer"], by="month",
                  **{"from": "2024-10", "until": "2025-05"}).json()
    assert json.loads(proc.stdout) == api
    text = run_cli(web_home, "trends", *args)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "papers with every word of the query, by month, 2024-10-01 to 2025-05-31"
    row = next(line for line in lines if line.startswith("2025-03"))
    assert row.split()[2:4] == ["3", f"{100 * 3 / api['periods'][5]['papers']:.2f}%"]
    assert lines[-1].startswith("total")
    bad = run_cli(web_home, "trends", "model", "foo:bar")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == "paperwire: bad trend: query 2: unknown field 'foo:'; use ti:, au:, abs:, cat:, id:, date:\n"
    assert run_cli(web_home, "trends", "model", "--by", "day").returncode == 2
    many = run_cli(web_home, "trends", "a", "b", "c", "d")
    assert many.returncode == 2 and many.stderr == "paperwire: bad trend: 4 queries; at most 3 side by side\n"


# ---------------------------------------------------------------- the chart

def test_the_search_page_draws_the_chart_and_its_share_view(browser, base: str) -> None:
    api = _trends(base, q="quokkaformer").json()
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    try:
        page.goto(base + "/search?q=quokkaformer&mode=lexical")
        page.wait_for_selector("#trend svg rect.bar")
        assert page.locator("#trend").is_visible()
        bars = page.locator("#trend rect.bar")
        assert bars.count() == len(api["periods"])
        values = [float(v) for v in bars.evaluate_all("(bars) => bars.map((b) => b.dataset.value)")]
        assert values == api["series"][0]["counts"]
        heights = bars.evaluate_all("(bars) => bars.map((b) => b.getBBox().height)")
        assert max(heights) > 50 and heights[values.index(max(values))] == max(heights)
        assert page.locator("#trend [data-by]").inner_text() == api["by"]
        assert page.locator("#trend .trend-note").inner_text().startswith("6 papers have every word")
        first = api["periods"][0]
        assert bars.first.evaluate("(b) => b.parentNode.getAttribute('href')").endswith(
            f"&from={first['first']}&to={first['last']}")
        page.click("#trend button[data-view=shares]")
        assert page.locator("#trend button[data-view=shares]").get_attribute("aria-pressed") == "true"
        shares = [float(v) for v in bars.evaluate_all("(bars) => bars.map((b) => b.dataset.value)")]
        assert shares == api["series"][0]["shares"]
        assert (page.locator("#trend text.axis").first.text_content() or "").endswith("%")
        # other searches beside it: one line each; a bad one is refused with the API's reason
        page.fill("#trend input[name=vs] >> nth=0", '"wombat attention"')
        page.fill("#trend input[name=vs] >> nth=1", "foo:bar")
        page.click("#trend form.trend-compare button")
        page.wait_for_selector("#trend .trend-note.error")
        assert "query 3: unknown field 'foo:'" in page.locator("#trend .trend-note").inner_text()
        assert bars.count() == len(api["periods"])  # the chart stays as it was
        page.fill("#trend input[name=vs] >> nth=1", "")
        page.click("#trend form.trend-compare button")
        page.wait_for_selector("#trend polyline.line.s1")
        assert page.locator("#trend polyline").count() == 2 and page.locator("#trend rect.bar").count() == 0
        legend = page.locator("#trend .trend-legend li")
        assert legend.all_inner_texts() == ["quokkaformer — 6 papers", '"wombat attention" — 3 papers']
        dots = page.locator("#trend circle.dot.s1").evaluate_all("(dots) => dots.map((d) => d.dataset.value)")
        both = _trends(base, q=["quokkaformer", '"wombat attention"']).json()
        assert [float(v) for v in dots] == both["series"][1]["shares"]  # the share view stays chosen
        page.click("#trend button[data-view=counts]")
        page.fill("#trend input[name=vs] >> nth=0", "")
        page.click("#trend form.trend-compare button")
        page.wait_for_selector("#trend rect.bar")
        # a bar opens the search narrowed to its period
        busiest = api["periods"][values.index(max(values))]
        bars.nth(values.index(max(values))).click()
        page.wait_for_url(f"**from={busiest['first']}&to={busiest['last']}")
        page.wait_for_selector("article.card")
        assert page.locator("article.card").count() == int(max(values))
    finally:
        context.close()
    refused = "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    assert problems.count(refused) == 1  # the comparison with foo:bar, and nothing else went wrong:
    assert [p for p in problems if p != refused] == []  # no script errors, nothing refused by the page's CSP
