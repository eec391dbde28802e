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

from paperwire.model import Paper

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
                 links=paper_links(p)) for p in papers]


def highlight(text: str, query: str) -> Markup:
    """Escaped text with the query's words wrapped in <mark> (and its math fragments set as math_html does)."""
    return highlighter(query)(text)


def highlighter(query: str) -> Callable[[str], Markup]:
    """highlight() for one query, its pattern made once for all the snippets of a page."""
    words = sorted({w for w in re.findall(r"[\w-]{3,}", _strip_syntax(query))}, key=len, reverse=True)
    if not words:
        return math_html
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in words[:20]) + r")", re.IGNORECASE)

    def mark(text: str) -> Markup:
        if not _NEEDS_ESCAPE_OR_MATH.search(text):  # most snippets: nothing to escape or set as math
            return Markup(pattern.sub(r"<mark>\1</mark>", text))
        # split() with the group kept: text between matches at even places, the matches at odd ones
        pieces = pattern.split(text)
        pieces[::2] = map(math_html, pieces[::2])
        pieces[1::2] = [f"<mark>{escape(word)}</mark>" for word in pieces[1::2]]
        return Markup("".join(pieces))

    return mark


# ------------------------------------------------------------ math fragments in HTML
# Ingest already turns simple LaTeX into characters (ℓ₂, α, 10%). What is left in abstracts is
# half-stripped markup such as "σ_{max}", "R^d", "N^{delta}", "C_Phi" and "na\"ive". On a page those
# become <sub>/<sup> and symbols; the stored text, the JSON API and the Markdown view keep the text as is.

_SYMBOLS = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "zeta": "ζ", "eta": "η",
    "theta": "θ", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ",
    "sigma": "σ", "tau": "τ", "phi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω", "Gamma": "Γ",
    "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Sigma": "Σ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
    "top": "⊤", "ast": "∗", "star": "⋆", "infty": "∞", "circ": "∘", "times": "×", "in": "∈",
}
_SYMBOL_NAMES = "|".join(sorted(_SYMBOLS, key=len, reverse=True))
_ACCENTS = {'"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303"}
_ACCENTED = re.compile(r"""\\(["'`^~])\{?([A-Za-z])\}?""")  # na\"ive, Pad\'e, na\"{i}ve
_MATH_HINT = re.compile(r"[_^{\\]")
_NEEDS_ESCAPE_OR_MATH = re.compile(r"[_^{\\&<>\"']")  # text without these is its own math_html()
_URL_LIKE = re.compile(r"(?:https?://|www\.|github\.com/)\S+", re.IGNORECASE)
# A base (a letter, digit, closing bracket or symbol) then _ or ^ and a braced group without nested
# braces, a symbol name, or one letter or digit standing alone.
_SCRIPT = re.compile(r"(?<=[^\s_^])([_^])(?:\{([^{}]{1,40})\}|(" + _SYMBOL_NAMES + r")(?![A-Za-z])|"
                     r"([A-Za-z0-9\u0370-\u03ffℓ∞])(?![A-Za-z0-9]))")
# A Greek letter's name written right before a script, as in "Sigma_{max}" or "Phi^2"
_GREEK_NAMES = "|".join(sorted((k for k, v in _SYMBOLS.items() if "\u0370" <= v <= "\u03ff"), key=len, reverse=True))
_NAME_BEFORE_SCRIPT = re.compile(r"(?<![A-Za-z\\])(" + _GREEK_NAMES + r")(?=[_^])")
_NAME_INSIDE = re.compile(r"(?<![A-Za-z])(" + _SYMBOL_NAMES + r")(?![A-Za-z])")
_LONE_BRACES = re.compile(r"(?<![\w_^])\{([^{}\s]{1,20})\}")  # {12.30%} → 12.30%


@lru_cache(maxsize=8192)  # every feed page shows the same titles and abstracts to every reader
def math_html(text: str) -> Markup:
    """Escaped text with leftover LaTeX sub/superscripts, symbol names and accents made readable."""
    if not text:
        return Markup("")
    if not _MATH_HINT.search(text):
        return escape(text)
    out: list[Markup] = []
    last = 0
    for url in _URL_LIKE.finditer(text):  # URLs keep their underscores
        out.append(_math_segment(text[last:url.start()]))
        out.append(escape(url.group(0)))
        last = url.end()
    out.append(_math_segment(text[last:]))
    return Markup("").join(out)


def _math_segment(text: str) -> Markup:
    if not _MATH_HINT.search(text):
        return escape(text)
    import unicodedata

    text = _ACCENTED.sub(lambda m: unicodedata.normalize("NFC", m.group(2) + _ACCENTS[m.group(1)]), text)
    text = _NAME_BEFORE_SCRIPT.sub(lambda m: _SYMBOLS[m.group(1)], text)
    text = _LONE_BRACES.sub(r"\1", text)
    out: list[Markup] = []
    last = 0
    for match in _SCRIPT.finditer(text):
        kind, braced, name, single = match.groups()
        if braced is not None:
            inner = _NAME_INSIDE.sub(lambda m: _SYMBOLS[m.group(1)], braced)
        else:
            inner = _SYMBOLS[name] if name else single
        tag = "sub" if kind == "_" else "sup"
        out.append(escape(text[last:match.start()]))
        out.append(Markup(f"<{tag}>") + escape(inner) + Markup(f"</{tag}>"))
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def _strip_syntax(query: str) -> str:
    query = re.sub(r"(?:^|\s)-\S+", " ", query)  # exclusions are not highlighted
    query = re.sub(r"\b(?:ti|au|abs|cat|id|date):", " ", query)
    return query


def iso_datetime(day: str | None) -> str | None:
    """A listing day as the timestamp the Hugging Face API uses."""
    return f"{day}T00:00:00.000Z" if day else None


def paper_markdown(paper: Paper, votes: int, url: str) -> str:
    """The Markdown view of a paper page (what `HfApi.read_paper` returns)."""
    lines = [f"# {paper.title}", ""]
    if paper.authors:
        lines += [f"Authors: {', '.join(paper.authors)}", ""]
    meta = [f"Listed: {paper.listed_on}" if paper.listed_on else "", f"Upvotes: {votes}"]
    if paper.published:
        meta.insert(0, f"Published: {paper.published}")
    if paper.arxiv_id:
        meta.insert(0, f"arXiv: {paper.arxiv_id}")
    if paper.categories:
        meta.append("Categories: " + ", ".join(paper.categories))
    lines += [" · ".join(m for m in meta if m), "", "## Abstract", "", paper.abstract or "(no abstract)", ""]
    links = paper_links(paper)
    if links:
        lines += ["## Links", ""] + [f"- [{label}]({href})" for label, href in links] + [""]
    lines += [f"Page: {url}", ""]
    return "\n".join(lines)
