"""Formulas, links and the Markdown view on a real server: KaTeX typesets formulas in Chromium, readers without
scripts and feed readers get a readable text form, URLs in abstracts are safe links, and the Markdown view
passes no HTML or script links through."""

from __future__ import annotations

import re

import feedparser
import httpx
import pytest
from markdown_it import MarkdownIt

from paperwire.model import make_paper

DAY = "2025-12-30"  # after the sample's days: this module's papers make the newest day, which the feeds show

MATH = make_paper(
    title=r"Sharp Rates for $\ell_1$-Regularised Estimators",
    abstract=(r"We prove that $\ell_1$-regularised estimators converge at rate $\mathcal{O}(n^{-1/2})$ and that "
              r"$\tilde\Theta(d^{k})$ samples are needed, improving on earlier bounds for sparse regression "
              "problems. Code: https://github.com/example/l1-rates."),
    arxiv_id="2512.00001", source="test", listed_on=DAY)
HOSTILE = make_paper(
    title="Escaping <b>Bold</b> Claims in [Titles](javascript:alert(1))",
    abstract=("We test what a page makes of <script>alert(1)</script> and <img src=x onerror=alert(2)> in text, "
              "[a link](javascript:alert(3)), ![an image](data:text/html;base64,PHNjcmlwdD4=), "
              "<javascript:alert(4)>, and a real address www.example.org/safe_page plus javascript:alert(5) "
              "written plainly, which must stay plain text everywhere."),
    source="test", listed_on=DAY)
EXTRA_PAPERS = [MATH, HOSTILE]


@pytest.mark.browser
def test_formulas_are_typeset_by_katex(browser, base: str, tmp_path) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status >= 400 else None)
    page.goto(f"{base}/papers/{MATH.id}")
    page.wait_for_selector("h1 .math.typeset .katex")
    abstract = page.locator("section.abstract-full")
    assert abstract.locator(".math.typeset .katex").count() == 3
    assert page.locator("h1 .katex").count() == 1
    for text in (page.locator("h1").inner_text(), abstract.inner_text()):
        assert "$" not in text and "\\" not in text
    # each formula is set from its own TeX (KaTeX keeps it in the MathML annotation)
    assert abstract.locator("annotation").all_text_contents() == \
        [r"\ell_1", r"\mathcal{O}(n^{-1/2})", r"\tilde\Theta(d^{k})"]
    page.screenshot(path=str(tmp_path / "paper-math.png"), full_page=True)
    # the day's feed: the card's title and its abstract are typeset too
    page.goto(f"{base}/papers/date/{DAY}")
    card = page.locator(f"article[data-id=\"{MATH.id}\"]")
    card.locator(".title .math.typeset .katex").wait_for()
    card.locator("summary").click()
    assert card.locator("p.full .katex").count() == 3
    page.screenshot(path=str(tmp_path / "feed-math.png"), full_page=True)
    context.close()
    assert not errors, errors
    assert not missing, missing  # KaTeX's script, stylesheet and fonts are all served


@pytest.mark.browser
def test_without_scripts_formulas_read_as_text(browser, base: str) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{base}/papers/{MATH.id}")
    text = page.locator("section.abstract-full").inner_text()
    assert "ℓ1-regularised" in text and "O(n-1/2)" in text and "Θ̃(dk)" in text  # 1, -1/2, k set as <sub>/<sup>
    assert page.locator("section.abstract-full sup").count() == 2
    context.close()


def test_feeds_carry_the_text_form(base: str) -> None:
    feed = feedparser.parse(httpx.get(f"{base}/feeds/daily.atom", timeout=60).text)
    entry = next(e for e in feed.entries if "Regularised" in e.title)
    assert entry.title == "Sharp Rates for ℓ₁-Regularised Estimators"
    assert "ℓ₁-regularised estimators converge at rate O(n^(-1/2))" in entry.summary
    assert "Θ̃(dᵏ) samples" in entry.summary
    assert not re.search(r"[$\\{}]", entry.title + entry.summary)
    rss = feedparser.parse(httpx.get(f"{base}/feeds/daily.rss", timeout=60).text)
    assert any(e.title == entry.title for e in rss.entries)


def test_urls_in_abstracts_are_safe_links(base: str) -> None:
    page = httpx.get(f"{base}/papers/{MATH.id}", timeout=60).text
    abstract = re.search(r'<section class="abstract-full">(.*?)</section>', page, re.S).group(1)
    assert '<a href="https://github.com/example/l1-rates" rel="nofollow noopener">' \
           "https://github.com/example/l1-rates</a>." in abstract  # the full stop is not part of the address
    hostile = httpx.get(f"{base}/papers/{HOSTILE.id}", timeout=60).text
    abstract = re.search(r'<section class="abstract-full">(.*?)</section>', hostile, re.S).group(1)
    hrefs = re.findall(r'href="([^"]*)"', abstract)
    assert hrefs == ["https://www.example.org/safe_page"]  # a bare www. address gets https
    assert "<script" not in abstract and "<img" not in abstract and "&lt;script&gt;" in abstract
    card = httpx.get(f"{base}/papers/date/{DAY}", timeout=60).text
    assert '<a href="https://www.example.org/safe_page" rel="nofollow noopener">' in card
    assert "javascript:" not in "".join(re.findall(r'href="([^"]*)"', card + hostile))


def test_markdown_view_is_sanitised(base: str) -> None:
    text = httpx.get(f"{base}/papers/{HOSTILE.id}.md", timeout=30).text
    # rendered as a permissive renderer would (raw HTML on, every link scheme allowed)
    renderer = MarkdownIt("commonmark", {"html": True})
    renderer.validateLink = lambda url: True
    rendered = renderer.render(text)
    assert not re.search(r"<(script|img|b)\b", rendered)
    hrefs = re.findall(r'(?:href|src)="([^"]*)"', rendered)
    assert hrefs and all(h.startswith(("https://", "http://")) for h in hrefs), hrefs
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered  # the text itself is kept, as text
    math = httpx.get(f"{base}/papers/{MATH.id}.md", timeout=30).text
    assert math.startswith(r"# Sharp Rates for $\ell_1$-Regularised Estimators")
    assert r"rate $\mathcal{O}(n^{-1/2})$ and that $\tilde\Theta(d^{k})$ samples" in math
    assert "- [Code](https://github.com/example/l1-rates)" in math


def test_search_snippets_set_formulas(base: str) -> None:
    page = httpx.get(f"{base}/search", params={"q": "regularised estimators converge", "mode": "lexical"},
                     timeout=120).text
    card = next(html for pid, html in re.findall(
        r'<article class="card" id="p-[^"]*" data-id="([^"]+)">(.*?)</article>', page, re.S) if pid == MATH.id)
    snippet = re.search(r'<p class="snippet">(.*?)</p>', card, re.S).group(1)
    assert '<span class="math" data-tex="\\ell_1">ℓ<sub>1</sub></span>-<mark>regularised</mark>' in snippet
    assert '<span class="math" data-tex="\\mathcal{O}(n^{-1/2})">' in snippet
