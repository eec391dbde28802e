"""What a user who types something wrong sees: the form again, with the problem in plain words beside what
they typed; pages past the end and refused parameters explained; a 404 for an arXiv id that helps; the
subscribe API taking JSON only. On a real server (the `base` fixture in conftest.py)."""

from __future__ import annotations

import html
import re

import httpx
import pytest
from markupsafe import escape
from web_server import csrf_of, signed_up_client

from paperwire.web import submission

ABSTRACT = ("We study how validation messages reach the people who submit papers, and find that plain words "
            "beside the field that was wrong help the most.")
FRAMEWORK_WORDS = re.compile(r"String should|Input should|value_error|validation error|pydantic|--format", re.I)


@pytest.fixture(scope="module")
def submitter(base: str) -> httpx.Client:
    return signed_up_client(base, "formfiller")


def submit(client: httpx.Client, **fields: str) -> httpx.Response:
    token = csrf_of(client.get("/submit").text)
    return client.post("/submit", data={"csrf_token": token, **fields})


def error_of(page: str) -> str:
    """The text of the page's error box and field messages."""
    found = re.findall(r'class="(?:error|field-error)"[^>]*>(.*?)</(?:div|span|p)>', page, re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", " ".join(found)))


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"title": "asdf", "abstract": "asdf"}, "abstract", "too short to be one"),
    ({"title": "", "abstract": ABSTRACT}, "title", "title is missing"),
    ({"title": "A Title", "abstract": ""}, "abstract", "abstract is missing"),
    ({"title": "T" * 301, "abstract": ABSTRACT}, "title", "301 characters long; the limit is 300"),
    ({"title": "A Title", "abstract": ABSTRACT + " x" * 2500}, "abstract", "the limit is 5,000"),
    ({"title": "A Title", "abstract": ABSTRACT, "links": "javascript:alert(1)"}, "links",
     "starting with http:// or https://"),
    ({"title": "A Title", "abstract": ABSTRACT, "links": "https://"}, "links", "starting with http"),
    ({"title": "A Title", "abstract": ABSTRACT, "categories": "cs.LG <b>"}, "categories", "arXiv codes"),
    ({"title": "A Title", "abstract": ABSTRACT, "authors": "N" * 201}, "authors", "201 characters long"),
    ({"arxiv_id": "not-an-id", "title": "A Title", "abstract": ABSTRACT}, "arxiv_id", "is not an arXiv id"),
])
def test_submit_form_comes_back_with_the_problem_and_what_was_typed(submitter: httpx.Client, fields: dict,
                                                                    field: str, words: str) -> None:
    response = submit(submitter, **fields)
    assert response.status_code == 422
    page = response.text
    assert words in error_of(page)
    assert not FRAMEWORK_WORDS.search(page)
    assert f'id="{field}-error"' in page and f'aria-describedby="{field}-error"' in page
    for name, value in fields.items():  # everything typed is still in the form
        assert str(escape(value)) in page, name


def test_pasted_records_meet_the_same_limits(submitter: httpx.Client) -> None:
    unreadable = submit(submitter, metadata="Just some words I copied from a web page.")
    assert unreadable.status_code == 422
    assert "not a record this site can read" in error_of(unreadable.text)
    assert "--format" not in unreadable.text and "Just some words I copied" in unreadable.text
    short = submit(submitter, metadata="@article{k, title={Pasted Yet Too Short}, eprint={2503.00001}, "
                                       "abstract={asdf}}")
    assert short.status_code == 422 and "pasted record’s abstract is too short" in error_of(short.text)
    long_title = submit(submitter, metadata="@article{k, title={" + "W" * 400 + "}, abstract={" + ABSTRACT + "}}")
    assert long_title.status_code == 422 and "pasted record’s title is 400 characters" in error_of(long_title.text)
    too_much = submit(submitter, metadata="@article{" + "x" * (submission.PASTE_MAX + 1) + "}")
    assert too_much.status_code == 422 and "Paste one record only" in error_of(too_much.text)


def test_a_good_submission_still_lands(submitter: httpx.Client) -> None:
    response = submit(submitter, title="Plain Words Beside Fields", abstract=ABSTRACT, links="https://example.org/code")
    assert response.status_code == 303
    page = submitter.get(response.headers["location"]).text
    assert "Plain Words Beside Fields" in page and "https://example.org/code" in page


def test_search_that_is_too_long_or_too_deep_is_explained_on_the_search_page(base: str) -> None:
    query = "neural " * 700
    page = httpx.get(base + "/search", params={"q": query}, timeout=60)
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    assert "Your search is 4,900 characters long; a search can be at most 300 characters" in page.text
    assert f'value="{query}"' in page.text  # what was typed stays in the box
    assert "Results for" not in page.text and not FRAMEWORK_WORDS.search(page.text)
    deep = httpx.get(base + "/search", params={"q": "neural collapse", "page": 999}, timeout=60)
    assert deep.status_code == 422 and "Results stop at page 10" in deep.text
    assert 'value="neural collapse"' in deep.text
    as_json = httpx.get(base + "/search", params={"q": query}, headers={"accept": "application/json"}, timeout=60)
    assert as_json.status_code == 422 and "at most 300 characters" in as_json.json()["error"]


def test_pages_past_the_end_and_bad_parameters_say_so_plainly(base: str) -> None:
    past = httpx.get(base + "/papers/date/2025-03-11", params={"page": 150}, timeout=60)
    assert past.status_code == 404
    pages = int(re.search(r"it has (\d+) pages?", past.text).group(1))
    assert f'href="/papers/date/2025-03-11?page={pages}"' in past.text
    for path, words in [("/papers/date/2025-03-11?page=100000", "There is no page “100000”"),
                        ("/?page=abc", "The page must be a number, not “abc”"),
                        ("/top?period=decade", "“decade” is not a period here: choose week, month or year")]:
        page = httpx.get(base + path, timeout=60)
        assert page.status_code == 422, path
        text = html.unescape(page.text)
        assert words.replace("“", "").replace("”", "") in text.replace("“", "").replace("”", ""), text[:3000]
        assert not FRAMEWORK_WORDS.search(page.text), path
        assert "Show the page without it" in text
    # the JSON API keeps its terse errors
    api = httpx.get(base + "/api/daily_papers", params={"limit": 1000}, timeout=60)
    assert api.status_code == 422 and isinstance(api.json()["error"], str)


def test_unknown_arxiv_id_links_to_arxiv_and_to_submitting_it(base: str, submitter: httpx.Client) -> None:
    page = httpx.get(base + "/papers/2503.99999", timeout=60)
    assert page.status_code == 404
    assert 'href="https://arxiv.org/abs/2503.99999"' in page.text
    assert 'href="/submit?arxiv_id=2503.99999"' in page.text
    form = submitter.get("/submit?arxiv_id=2503.99999").text
    assert 'name="arxiv_id" value="2503.99999"' in form
    other = httpx.get(base + "/papers/no-such-thing", timeout=60)
    assert other.status_code == 404 and "arxiv.org" not in other.text and 'href="/search?q=no-such-thing"' in other.text


@pytest.mark.parametrize("content_type", ["text/plain; application/json", "text/plain", "application/json-patch",
                                          "multipart/form-data; boundary=x", ""])
def test_subscribe_api_takes_json_only(base: str, content_type: str) -> None:
    response = httpx.post(base + "/api/subscribe", content=b'{"email": "x@example.org"}',
                          headers={"content-type": content_type} if content_type else {}, timeout=30)
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]


def test_subscribe_api_allows_a_charset(base: str) -> None:
    response = httpx.post(base + "/api/subscribe", content=b'{"email": "not an address"}',
                          headers={"content-type": "Application/JSON; charset=utf-8"}, timeout=30)
    assert response.status_code == 422  # read as JSON (then refused for the address)
