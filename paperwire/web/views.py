"""What pages and APIs show of a paper: vote totals, the "new" badge, links, Markdown, dates."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

from markupsafe import Markup, escape

from paperwire.latex import MATH, TEXT, URL, Piece
from paperwire.model import Paper, read_text

NEW_HOURS = 24


@dataclass
class Card:
    """A paper as the feed shows it."""

    paper: Paper
    votes: int
    voted: bool = False
    is_new: bool = False
    snippet: Markup | None = None
    rank: int | None = None
    score: float | None = None
    score_note: Any = None  # a trending score as shown (paperwire.rank.trending.ScoreNote)
    links: list[tuple[str, str]] = field(default_factory=list)
    saved: bool = False  # in the signed-in reader's library
    comments: int = 0  # the source's comment count plus comments written here

    @property
    def id(self) -> str:
        return self.paper.id


def is_new(listed_on: str | None, now: datetime | None = None) -> bool:
    """Whether the listing day overlaps the last 24 hours (listed today or yesterday, UTC)."""
    if not listed_on:
        return False
    now = now or datetime.now(UTC)
    start = datetime.combine(date.fromisoformat(listed_on), datetime.min.time(), tzinfo=UTC)
    return start <= now and now - (start + timedelta(days=1)) < timedelta(hours=NEW_HOURS)


def paper_links(paper: Paper) -> list[tuple[str, str]]:
    """(label, url) for the paper's arXiv pages and the code/project links in its abstract."""
    links: list[tuple[str, str]] = []
    if paper.arxiv_id:
        links.append(("arXiv", f"https://arxiv.org/abs/{paper.arxiv_id}"))
        links.append(("PDF", f"https://arxiv.org/pdf/{paper.arxiv_id}"))
    if paper.doi:
        links.append(("DOI", f"https://doi.org/{paper.doi}"))
    for url in paper.links:
        host = urlparse(url).netloc.lower().removeprefix("www.")
        if urlparse(url).scheme not in ("http", "https") or not host:
            continue  # only web links become hrefs
        label = "Code" if host in ("github.com", "gitlab.com", "bitbucket.org", "huggingface.co") else host
        links.append((label, url))
    return links


def make_cards(papers: list[Paper], local_votes: dict[str, int], voted: set[str],
               now: datetime | None = None) -> list[Card]:
    now = now or datetime.now(UTC)
    new: dict[str | None, bool] = {}  # per listing day: a page shows a few days, each decided once
    for p in papers:
        if p.listed_on not in new:
            new[p.listed_on] = is_new(p.listed_on, now)
    return [Card(p, p.upvotes + local_votes.get(p.id, 0), p.id in voted, new[p.listed_on],
                 links=paper_links(p), comments=p.num_comments) for p in papers]


def highlight(text: str, query: str) -> Markup:
    """Escaped text with the query's words wrapped in <mark>."""
    return highlighter(query)(text)


def highlighter(query: str) -> Callable[..., Markup]:
    """highlight() for one query, its pattern made once for all the snippets of a page. The function takes a
    snippet (plain text cut from an abstract) and, optionally, the formulas of that abstract
    (paper_formulas): where a formula's text stands in the snippet, it is set as the abstract sets it."""
    words = sorted({w for w in re.findall(r"[\w-]{3,}", _strip_syntax(query))}, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in words[:20]) + r")", re.IGNORECASE) if words else None

    def mark_words(text: str) -> Markup:
        if pattern is None:
            return escape(text)
        # split() with the group kept: text between matches at even places, the matches at odd ones
        pieces = pattern.split(text)
        pieces[::2] = map(escape, pieces[::2])
        pieces[1::2] = [f"<mark>{escape(word)}</mark>" for word in pieces[1::2]]
        return Markup("".join(pieces))

    def mark(text: str, formulas: tuple[Piece, ...] = ()) -> Markup:
        shown = [f for f in formulas if f.text in text]
        if not shown:
            return mark_words(text)
        by_text = {f.text: f for f in shown}
        out: list[Markup] = []
        for i, part in enumerate(re.split("(" + "|".join(map(re.escape, sorted(by_text, key=len, reverse=True)))
                                          + ")", text)):
            out.append(_math_span(by_text[part]) if i % 2 else mark_words(part))
        return Markup("").join(out)

    return mark


# ------------------------------------------------------------ titles and abstracts in HTML
# A title or abstract is shown from its raw text (the display text has its formulas flattened): formulas
# become <span class="math" data-tex="…"> holding their readable form (sub- and superscripts as <sub>/<sup>),
# which static/math.js has KaTeX typeset; URLs become links. The stored text, the JSON API and the feeds
# keep the plain form.


def _math_span(piece: Piece) -> Markup:
    return Markup(f'<span class="math" data-tex="{escape(piece.tex)}">{piece.html}</span>')


def _link(url: str) -> Markup:
    href = url if url.lower().startswith(("http://", "https://")) else "https://" + url
    return Markup(f'<a href="{escape(href)}" rel="nofollow noopener">{escape(url)}</a>')


def _piece_html(piece: Piece) -> Markup:
    if piece.kind == MATH:
        return _math_span(piece)
    if piece.kind == URL:
        return _link(piece.text)
    return escape(piece.text)


@lru_cache(maxsize=8192)  # every feed page shows the same titles and abstracts to every reader
def math_html(raw: str, limit: int | None = None, links: bool = True) -> Markup:
    """The HTML of a title or abstract given its raw text: escaped, formulas set, URLs linked (unless `links` is
    off: a title is a link itself). With `limit`, of its first `limit` characters (of the plain form) and "…",
    cut between words, never inside a formula."""
    if not raw:
        return Markup("")
    pieces = read_text(raw) if links else [p._replace(kind=TEXT) if p.kind == URL else p for p in read_text(raw)]
    if limit is None:
        return Markup("").join(map(_piece_html, pieces))
    out: list[Markup] = []
    room = limit
    for piece in pieces:
        if len(piece.text) <= room:
            out.append(_piece_html(piece))
            room -= len(piece.text)
            continue
        if piece.kind == TEXT:
            cut = piece.text[:room]
            out.append(escape(cut[:cut.rfind(" ")] if " " in cut else cut))
        out.append(Markup("…"))
        break
    return Markup("").join(out)


def paper_formulas(paper: Paper) -> tuple[Piece, ...]:
    """The formulas of a paper's abstract (for snippets cut from its plain text)."""
    return _formulas(paper.raw_abstract or paper.abstract)


@lru_cache(maxsize=4096)
def _formulas(raw: str) -> tuple[Piece, ...]:
    return tuple(p for p in read_text(raw) if p.kind == MATH and len(p.text) > 1)


def _strip_syntax(query: str) -> str:
    query = re.sub(r"(?:^|\s)-\S+", " ", query)  # exclusions are not highlighted
    query = re.sub(r"\b(?:ti|au|abs|cat|id|date):", " ", query)
    return query


def iso_datetime(day: str | None) -> str | None:
    """A listing day as the timestamp the Hugging Face API uses."""
    return f"{day}T00:00:00.000Z" if day else None


def paper_markdown(paper: Paper, votes: int, url: str) -> str:
    """The Markdown view of a paper page (what `HfApi.read_paper` returns). Sanitised as the HTML page is:
    the text cannot make HTML or links of its own (its Markdown characters are escaped), formulas are
    written as $…$ for renderers that set math, and the only links are the paper's web (http/https) ones."""
    lines = [f"# {markdown_text(paper.raw_title or paper.title)}", ""]
    if paper.authors:
        lines += [f"Authors: {md_escape(', '.join(paper.authors))}", ""]
    meta = [f"Listed: {paper.listed_on}" if paper.listed_on else "", f"Upvotes: {votes}"]
    if paper.published:
        meta.insert(0, f"Published: {paper.published}")
    if paper.arxiv_id:
        meta.insert(0, f"arXiv: {paper.arxiv_id}")
    if paper.categories:
        meta.append("Categories: " + md_escape(", ".join(paper.categories)))
    abstract = markdown_text(paper.raw_abstract or paper.abstract) if paper.abstract else "(no abstract)"
    lines += [" · ".join(m for m in meta if m), "", "## Abstract", "", abstract, ""]
    links = paper_links(paper)
    if links:
        lines += ["## Links", ""] + [f"- [{md_escape(label)}]({md_url(href)})" for label, href in links] + [""]
    lines += [f"Page: {md_url(url)}", ""]
    return "\n".join(lines)


# Characters that make Markdown of plain text: emphasis, code, links and images, raw HTML and entities,
# math delimiters; escaped with a backslash, which CommonMark allows before any ASCII punctuation.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>&$|#])")


def md_escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_url(url: str) -> str:
    """A URL as a Markdown link target or autolink: characters that could end it or open markup encoded."""
    return "".join(f"%{ord(ch):02X}" if ch in "()[]<>\"'`\\ " or ord(ch) < 33 else ch for ch in url)


def _md_tex(tex: str) -> str:
    """TeX inside $…$: a renderer without math reads it as Markdown, so nothing in it may open HTML
    ("<" followed by a space is not a tag, and TeX ignores the space) or a link ("] (" is not one)."""
    tex = tex.replace("$", "\\$").replace("<", "< ")
    return re.sub(r"\](?=[(\[:])", "] ", tex)


def markdown_text(raw: str) -> str:
    """A title or abstract as Markdown: plain text escaped, formulas as $TeX$, URLs as plain URLs."""
    out: list[str] = []
    for piece in read_text(raw):
        if piece.kind == MATH:
            out.append(f"${_md_tex(piece.tex)}$")
        elif piece.kind == URL:
            out.append(md_url(piece.text))
        else:
            out.append(md_escape(piece.text))
    return " ".join("".join(out).split())
