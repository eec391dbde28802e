"""The HTML pages on a real server: trending and its formula, top by period, the "new" badge, math
fragments, the Markdown view, oversize parameters, and what an account's export and deletion cover."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from web_server import csrf_of, signed_up_client

from paperwire.model import make_paper
from paperwire.rank.trending import FORMULA, TOP_PERIODS, age_hours, trending_score, window
from paperwire.store import open_store
from paperwire.store.library import Library
from paperwire.store.mail import MailStore
from paperwire.web.views import is_new, math_html

MATH_TITLE = "Spectral Bounds for Mixing Kernels in Sparse Attention"
MATH_ABSTRACT = ("We bound σ_{max} of the kernel K_{ij} by O(d^{kq}) and show that f_theta is naïve-free; "
                 "the naive estimator of Z\\\"urich et al. costs R^d. Code: https://github.com/x/mix_kernels_v2.")
MATH_ID = make_paper(title=MATH_TITLE, source="test").id
CARD = re.compile(r'<article class="card" id="p-[^"]*" data-id="([^"]+)">(.*?)</article>', re.S)
SCORE = re.compile(r'<span class="score" title="(?P<title>[^"]*)" data-score="(?P<raw>[^"]+)">(?P<label>[^<]*)</span>')


# added to this module's server home (the web_home and base fixtures in conftest.py)
EXTRA_PAPERS = [make_paper(title=MATH_TITLE, abstract=MATH_ABSTRACT, source="test", listed_on="2025-03-11")]


def cards(page: str) -> list[tuple[str, str]]:
    """(paper id, card HTML) in page order."""
    return CARD.findall(page)


def card_in_feed(base: str, day: str, paper_id: str) -> str:
    """The card of a paper in a day's feed, whichever page it is on."""
    for page_number in range(1, 50):
        page = httpx.get(f"{base}/papers/date/{day}", params={"page": page_number}, timeout=60)
        assert page.status_code == 200
        found = [card_html for pid, card_html in cards(page.text) if pid == paper_id]
        if found:
            return found[0]
        if "Next page" not in page.text:
            break
    raise AssertionError(f"{paper_id} is not in the feed of {day}")


def votes_in(card_html: str) -> int:
    return int(re.search(r"data-count>(\d+)<", card_html).group(1))


def vote(client: httpx.Client, paper_id: str) -> None:
    token = csrf_of(client.get(f"/papers/{paper_id}").text)
    response = client.post(f"/papers/{paper_id}/vote", data={"csrf_token": token, "action": "up"},
                           headers={"accept": "application/json"})
    assert response.status_code == 200 and response.json()["voted"] is True


# ------------------------------------------------------------ trending and top


def test_trending_page_shows_its_formula_and_ranks_by_it(base: str) -> None:
    before = datetime.now(UTC).replace(second=0, microsecond=0)
    page = httpx.get(base + "/trending", timeout=60).text
    assert html.escape(FORMULA, quote=False) in page
    listed = cards(page)
    assert len(listed) >= 10
    # scores are computed once a minute: at the minute of the request (or the next, across a boundary)
    minutes = [before, before + timedelta(minutes=1)]
    scores = []
    for place, (paper_id, card_html) in enumerate(listed):
        score = SCORE.search(card_html)
        exact = float(score.group("raw"))
        info = httpx.get(f"{base}/api/papers/{paper_id}", timeout=30).json()
        candidates = [trending_score(info["upvotes"], age_hours(info["submittedOnDailyAt"][:10], at))
                      for at in minutes]
        assert any(exact == pytest.approx(expected, rel=1e-9) for expected in candidates), (exact, candidates)
        scores.append(candidates[0])
        # people read a relative score (the top paper is 100) and the age; the formula's numbers are in the tooltip
        assert re.fullmatch(r"listed .+ ago · score (\d+|&lt;1)", score.group("label")), score.group("label")
        assert place or score.group("label").endswith("score 100")
        assert html.escape(FORMULA, quote=True) in score.group("title") and "e-0" not in score.group("label")
    assert scores == sorted(scores, reverse=True)
    # the API's trending sort is the same ranking
    api = httpx.get(base + "/api/daily_papers", params={"sort": "trending", "limit": len(listed)}, timeout=30).json()
    assert [entry["paper"]["id"] for entry in api] == [paper_id for paper_id, _ in listed]


def test_a_vote_lifts_a_paper_in_trending(base: str) -> None:
    before = [paper_id for paper_id, _ in cards(httpx.get(base + "/trending", timeout=60).text)]
    # among the papers of the newest day (same age), one vote is worth more than none
    newest_day = httpx.get(base + "/api/daily_papers", params={"limit": 1}, timeout=30).json()[0]["publishedAt"][:10]
    day = [e["paper"] for e in httpx.get(base + "/api/daily_papers", params={"date": newest_day, "limit": 100},
                                         timeout=30).json()]
    unvoted = [p["id"] for p in day if p["upvotes"] == min(q["upvotes"] for q in day)]
    target = next(pid for pid in reversed(before) if pid in unvoted) if set(before) & set(unvoted) else unvoted[-1]
    vote(signed_up_client(base, "trendvoter"), target)
    after = [paper_id for paper_id, _ in cards(httpx.get(base + "/trending", timeout=60).text)]
    assert target in after
    if target in before:
        assert after.index(target) < before.index(target)


def top_sections(page: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(cards of the period up to today, cards of the earlier period shown after a short one)."""
    current, _, earlier = page.partition('<div class="cards earlier">')
    return cards(current), cards(earlier)


@pytest.mark.parametrize("period", ["week", "month", "year"])
def test_top_lists_the_period_by_votes(base: str, period: str) -> None:
    page = httpx.get(base + "/top", params={"period": period}, timeout=60).text
    first, last = re.search(r"listed (\d{4}-\d{2}-\d{2}) – (\d{4}-\d{2}-\d{2})", page).groups()
    # the period ends today; the sample's days are long before it, so an earlier period follows
    assert (first, last) == window(datetime.now(UTC).date().isoformat(), TOP_PERIODS[period])
    current, earlier = top_sections(page)
    assert len(current) + len(earlier) >= 10
    span = re.search(r"up to (\d{4}-\d{2}-\d{2}), the newest listing day before", page).group(1)
    for section, (start, end) in ((current, (first, last)), (earlier, window(span, TOP_PERIODS[period]))):
        votes = [votes_in(card_html) for _, card_html in section]
        assert votes == sorted(votes, reverse=True)
        for _, card_html in section:
            day = re.search(r'href="/papers/date/(\d{4}-\d{2}-\d{2})"', card_html).group(1)
            assert start <= day <= end


def test_a_vote_puts_a_paper_on_top_of_the_week(base: str) -> None:
    page = httpx.get(base + "/top", params={"period": "week"}, timeout=60).text
    listed = [section for section in top_sections(page) if section][0]  # this week's, or the week before
    leader_votes = votes_in(listed[0][1])
    target = listed[-1][0]
    voters = [signed_up_client(base, f"topvoter{i}") for i in range(leader_votes - votes_in(listed[-1][1]) + 1)]
    for client in voters:
        vote(client, target)
    top = [section for section in top_sections(httpx.get(base + "/top", params={"period": "week"},
                                                         timeout=60).text) if section][0]
    assert top[0][0] == target


def test_top_periods_nest(base: str) -> None:
    totals = {}
    for period in ("week", "month", "year"):
        page = httpx.get(base + "/top", params={"period": period}, timeout=60).text
        totals[period] = int(re.search(r"(\d+) papers? listed", page).group(1))
    assert totals["week"] <= totals["month"] <= totals["year"]


# ------------------------------------------------------------ the "new" badge


def test_new_means_listed_in_the_last_24_hours() -> None:
    now = datetime(2025, 3, 12, 9, 30, tzinfo=UTC)
    assert is_new("2025-03-12", now)
    assert is_new("2025-03-11", now)  # the day ended 9.5 hours ago
    assert not is_new("2025-03-11", now + timedelta(hours=15))  # … and now 24.5 hours ago
    assert not is_new("2025-03-10", now)
    assert not is_new("2025-03-13", now)  # not yet listed
    assert not is_new(None, now)


def test_a_submission_today_carries_the_new_badge(base: str) -> None:
    client = signed_up_client(base, "badgesubmitter")
    token = csrf_of(client.get("/submit").text)
    response = client.post("/submit", data={
        "csrf_token": token, "title": "Fresh Results on Badge-Worthy Sparse Probes",
        "abstract": "We show fresh results about sparse probes that deserve a badge on the front page. " * 2})
    assert response.status_code == 303
    paper_page = client.get(response.headers["location"]).text
    assert '<span class="badge new">new</span>' in paper_page
    paper_id = response.headers["location"].removeprefix("/papers/")
    today = datetime.now(UTC).date().isoformat()
    assert 'class="badge new"' in card_in_feed(base, today, paper_id)
    old = httpx.get(base + "/papers/date/2025-03-11", timeout=60).text
    assert cards(old) and 'class="badge new"' not in old


# ------------------------------------------------------------ math, Markdown


def test_math_fragments_render_as_sub_and_superscripts(base: str) -> None:
    page = httpx.get(f"{base}/papers/{MATH_ID}", timeout=60).text
    abstract = re.search(r'<section class="abstract-full">(.*?)</section>', page, re.S).group(1)
    for fragment in ("σ<sub>max</sub>", "K<sub>ij</sub>", "d<sup>kq</sup>", "f<sub>θ</sub>", "R<sup>d</sup>",
                     "Zürich"):
        assert fragment in abstract, fragment
    assert "https://github.com/x/mix_kernels_v2" in abstract  # URLs keep their underscores
    assert "σ<sub>max</sub>" in card_in_feed(base, "2025-03-11", MATH_ID)
    # the JSON API carries the text form, the Markdown view the formula's TeX
    assert "We bound σ_max of the kernel Kᵢⱼ" in httpx.get(f"{base}/api/papers/{MATH_ID}", timeout=30).json()["summary"]
    assert r"We bound $σ_{\max}$ of the kernel $K_{ij}$" in httpx.get(f"{base}/papers/{MATH_ID}.md", timeout=30).text


def test_math_html_escapes_and_leaves_words_alone() -> None:
    def formula(tex: str, shown: str) -> str:
        return f'<span class="math" data-tex="{tex}">{shown}</span>'

    assert str(math_html('<img src=x onerror="a_{1}"> x_{<b>}')) == \
        f"&lt;img src=x onerror=&#34;{formula('a_{1}', 'a<sub>1</sub>')}&#34;&gt; " \
        f"{formula('x_{&lt;b&gt;}', 'x<sub>&lt;b&gt;</sub>')}"
    assert str(math_html("snake_case AUC_ROC _emphasis_ a ^ b")) == "snake_case AUC_ROC _emphasis_ a ^ b"
    assert str(math_html("Sigma_{max} and C_Phi and exp(QK^top)")) == " and ".join([
        formula(r"Σ_{\max}", "Σ<sub>max</sub>"), formula(r"C_{\Phi}", "C<sub>Φ</sub>"),
        "exp(" + formula(r"QK^{\top}", "QK<sup>⊤</sup>") + ")"])
    assert str(math_html("{12.30%} better")) == "12.30% better"


def test_markdown_view(base: str) -> None:
    page = httpx.get(f"{base}/papers/{MATH_ID}", timeout=60).text
    assert f'href="/papers/{MATH_ID}.md"' in page
    response = httpx.get(f"{base}/papers/{MATH_ID}.md", timeout=30)
    assert response.headers["content-type"].startswith("text/markdown")
    text = response.text
    assert text.startswith(f"# {MATH_TITLE}\n")
    assert "## Abstract" in text and "Listed: 2025-03-11" in text
    assert "- [Code](https://github.com/x/mix_kernels_v2)" in text
    assert httpx.get(f"{base}/papers/2401.99999.md", timeout=30).status_code == 404


# ------------------------------------------------------------ parameters


@pytest.mark.parametrize("path", [
    "/papers/date/2025-03-11?page=100000", "/papers/date/2025-03-11?page=0", "/?page=abc",
    "/search?q=" + "a" * 301, "/search?q=x&page=11", "/top?period=decade", "/papers/week/2025-W99",
    "/papers/month/2025-13", "/papers/date/2025-02-30",
])
def test_html_pages_refuse_oversize_or_bad_parameters(base: str, path: str) -> None:
    page = httpx.get(base + path, timeout=30)
    assert 400 <= page.status_code < 500
    assert page.headers["content-type"].startswith("text/html")
    as_json = httpx.get(base + path, headers={"accept": "application/json"}, timeout=30)
    assert as_json.status_code == page.status_code
    assert isinstance(as_json.json()["error"], str)


# ------------------------------------------------------------ account data


def test_export_covers_library_and_subscriptions_and_delete_removes_them(web_home: Path, base: str) -> None:
    client = signed_up_client(base, "librarian")
    store = open_store(web_home)
    try:
        user_id = Library(store).user("librarian").id
        Library(store).save(user_id, [MATH_ID], tag="kernels")
        MailStore(store).upsert_subscription("librarian@example.org", "weekly", user_id=user_id)
    finally:
        store.close()
    vote(client, MATH_ID)
    data = json.loads(client.get("/account/export.json").text)
    assert [(i["paper_id"], i["tag"]) for i in data["library_items"]] == [(MATH_ID, "kernels")]
    assert [(s["email"], s["period"]) for s in data["subscriptions"]] == [("librarian@example.org", "weekly")]
    assert [v["paper_id"] for v in data["votes"]] == [MATH_ID]
    token = csrf_of(client.get("/account").text)
    assert client.post("/account/delete", data={"csrf_token": token, "password": "correct horse battery"}
                       ).status_code == 303
    store = open_store(web_home)
    try:
        for table in ("library_items", "subscriptions", "votes", "web_sessions"):
            assert store.conn.execute(f"SELECT COUNT(*) FROM {table} WHERE user_id = ?", (user_id,)
                                      ).fetchone()[0] == 0, table
        assert store.conn.execute("SELECT COUNT(*) FROM users WHERE username = 'librarian'").fetchone()[0] == 0
    finally:
        store.close()


# ------------------------------------------------------------ submitting pasted metadata

BIBTEX = """@article{doe2025probes,
  title = {Pasted Probes: Sparse Features from a {BibTeX} Record},
  author = {Doe, Jane and Roe, Richard},
  year = {2025},
  eprint = {2502.01234},
  archivePrefix = {arXiv},
  abstract = {We submit a paper by pasting its BibTeX record and check that it is listed once, under its
              arXiv id, whether the record or the id is given.},
}"""


def test_submit_pasted_bibtex_once(base: str) -> None:
    client = signed_up_client(base, "paster")

    def paste(text: str) -> httpx.Response:
        token = csrf_of(client.get("/submit").text)
        return client.post("/submit", data={"csrf_token": token, "metadata": text})

    first = paste(BIBTEX)
    assert first.status_code == 303 and first.headers["location"] == "/papers/2502.01234"
    info = httpx.get(f"{base}/api/papers/2502.01234", timeout=30).json()
    assert info["title"] == "Pasted Probes: Sparse Features from a BibTeX Record"
    assert [a["name"] for a in info["authors"]] == ["Jane Doe", "Richard Roe"]
    assert info["submittedOnDailyBy"]["user"] == "paster"
    # the same record again, or the paper by its id, is the same listing
    assert paste(BIBTEX.replace("doe2025probes", "other-key")).headers["location"] == "/papers/2502.01234"
    token = csrf_of(client.get("/submit").text)
    by_id = client.post("/submit", data={"csrf_token": token, "arxiv_id": "https://arxiv.org/abs/2502.01234v1"})
    assert by_id.headers["location"] == "/papers/2502.01234"
    mine = httpx.get(f"{base}/api/daily_papers", params={"submitter": "paster"}, timeout=30).json()
    assert [e["paper"]["id"] for e in mine] == ["2502.01234"]
    refused = paste("@article{broken, title = {unclosed")
    assert refused.status_code == 422 and "The pasted text could not be read" in refused.text
    assert 'class="error"' in refused.text


def test_repeated_searches_show_current_votes_and_new_papers(base: str) -> None:
    params = {"q": "spectral bounds mixing kernels", "limit": 5}
    first = httpx.get(f"{base}/api/papers/search", params=params, timeout=60).json()
    assert first[0]["paper"]["id"] == MATH_ID
    vote(signed_up_client(base, "searchvoter"), MATH_ID)
    again = httpx.get(f"{base}/api/papers/search", params=params, timeout=60).json()
    assert [e["paper"]["id"] for e in again] == [e["paper"]["id"] for e in first]
    assert again[0]["paper"]["upvotes"] == first[0]["paper"]["upvotes"] + 1
    page = httpx.get(f"{base}/search", params={"q": "spectral bounds mixing kernels"}, timeout=60).text
    assert votes_in(dict(cards(page))[MATH_ID]) == again[0]["paper"]["upvotes"]
    # a paper submitted now is found by the same words at once
    client = signed_up_client(base, "kernelsubmitter")
    token = csrf_of(client.get("/submit").text)
    response = client.post("/submit", data={
        "csrf_token": token, "title": "Spectral Bounds for Mixing Kernels Revisited",
        "abstract": "Spectral bounds for mixing kernels, revisited with sharper constants and new kernels. " * 2})
    new_id = response.headers["location"].removeprefix("/papers/")
    found = httpx.get(f"{base}/api/papers/search", params=params, timeout=60).json()
    assert new_id in [e["paper"]["id"] for e in found]


def test_shared_pages_carry_each_visitors_own_csrf_token(base: str) -> None:
    first, second = httpx.Client(base_url=base), httpx.Client(base_url=base)
    path = "/papers/date/2025-03-11"
    page_a, page_b = first.get(path).text, second.get(path).text
    token_a, token_b = csrf_of(page_a), csrf_of(page_b)
    assert token_a != token_b and "csrf-slot" not in page_a
    assert page_a.replace(token_a, "") == page_b.replace(token_b, "")  # one rendering, two tokens
    form = {"username": "nobody-here", "password": "not the password"}
    assert first.post("/login", data={**form, "csrf_token": token_b}).status_code == 403
    assert first.post("/login", data={**form, "csrf_token": token_a}).status_code == 401


# ------------------------------------------------------------ saving from result and feed cards

SAVE_FORM = re.compile(r'<form class="save[^"]*" action="/papers/([^"]+)/save" method="post"[^>]*>(.*?)</form>', re.S)
NOT_SAVED = ('<input type="hidden" name="remove" value="true" disabled>', '<span class="state" hidden>Saved ✓</span>',
             '>Save</button>')
SAVED = ('<input type="hidden" name="remove" value="true">', '<span class="state">Saved ✓</span>', '>Unsave</button>')


def test_save_buttons_on_search_and_feed_cards(web_home: Path, base: str) -> None:
    # Anonymous readers get the shared pages, without Save buttons.
    assert not SAVE_FORM.search(httpx.get(f"{base}/search", params={"q": "sparse attention kernels"}).text)
    client = signed_up_client(base, "saver")
    results = client.get("/search", params={"q": "sparse attention kernels"}).text
    forms = dict(SAVE_FORM.findall(results))
    assert MATH_ID in forms and set(forms) == {pid for pid, _ in cards(results)}
    assert 'name="csrf_token"' in forms[MATH_ID] and all(part in forms[MATH_ID] for part in NOT_SAVED)

    # The form posts back to the page it is on (no script needed), and the card then says Saved.
    search_url = str(client.base_url.join("/search?q=sparse+attention+kernels"))
    token = csrf_of(results)
    assert client.post(f"/papers/{MATH_ID}/save", data={"tag": ""}).status_code == 403  # no CSRF token
    response = client.post(f"/papers/{MATH_ID}/save", data={"csrf_token": token}, headers={"referer": search_url})
    assert response.status_code == 303 and response.headers["location"] == "/search?q=sparse+attention+kernels"
    again = dict(SAVE_FORM.findall(client.get("/search", params={"q": "sparse attention kernels"}).text))
    assert all(part in again[MATH_ID] for part in SAVED)
    # The saved state is the reader's own: another reader, and an anonymous one, see the same card unsaved.
    other = dict(SAVE_FORM.findall(signed_up_client(base, "notsaver").get(
        "/search", params={"q": "sparse attention kernels"}).text))
    assert all(part in other[MATH_ID] for part in NOT_SAVED)
    user_id = _user_id(web_home, "saver")
    store = open_store(web_home)
    try:
        assert Library(store).saved(user_id) == [MATH_ID]
    finally:
        store.close()

    # The same button on the day's feed; pressing it there takes the paper out of the library.
    feed = client.get("/papers/date/2025-03-11")
    page = 1
    while MATH_ID not in dict(SAVE_FORM.findall(feed.text)):
        page += 1
        feed = client.get("/papers/date/2025-03-11", params={"page": page})
        assert feed.status_code == 200 and page < 50
    form = dict(SAVE_FORM.findall(feed.text))[MATH_ID]
    assert all(part in form for part in SAVED)
    feed_url = str(client.base_url.join(f"/papers/date/2025-03-11?page={page}"))
    response = client.post(f"/papers/{MATH_ID}/save", data={"csrf_token": csrf_of(feed.text), "remove": "true"},
                           headers={"referer": feed_url})
    assert response.status_code == 303 and response.headers["location"] == f"/papers/date/2025-03-11?page={page}"
    store = open_store(web_home)
    try:
        assert Library(store).saved(user_id) == []
    finally:
        store.close()
    # The library page keeps its own save controls, not a second button per card.
    assert not SAVE_FORM.search(client.get("/recommended").text)


def _user_id(home: Path, username: str) -> int:
    store = open_store(home)
    try:
        return Library(store).user(username).id
    finally:
        store.close()
