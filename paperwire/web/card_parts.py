"""The pieces of a paper's card that depend on the paper alone (title link, authors, categories and links,
listing day, submitter, thumbnail, abstract), rendered once per paper and shared by every page and every reader.

A card's HTML was most of a page's rendering time (the macros in _card.html, once per card per page); a
paper shows up on many pages (search results, similar papers, feeds), and these pieces change only when
the paper does. They are kept per paper id together with the paper's shown fields, so an entry is used
only while those fields are what they were (a re-ingested or edited paper is rendered anew); votes, the
"new" badge, ranks, scores, snippets, Save buttons and form tokens stay per page and per reader."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from jinja2 import Environment
from markupsafe import Markup

from paperwire.model import Paper

CARD_PARTS_ENTRIES = 10_000  # about 5 kB each with the abstract rendered (feeds, similar papers), 2 kB without


class ShownPaper(NamedTuple):
    """What the pieces are made of: pieces made from equal values are still right. Plain strings in
    tuples, not the Paper itself: thousands of cached entries give the garbage collector nothing to walk."""

    id: str
    title: str
    abstract: str
    authors: tuple[str, ...]
    categories: tuple[str, ...]  # the first four, as cards show
    listed_on: str | None
    links: tuple[tuple[str, str], ...]
    day_label: str  # the listing day as its chip says it, which depends on the current year
    submitted_by: str | None
    thumbnail: str | None  # only a web (http/https) image
    raw_title: str  # what titles and abstracts are rendered from (their formulas as written)
    raw_abstract: str


def shown_paper(paper: Paper, links: list[tuple[str, str]], today: str | None = None) -> ShownPaper:
    """`today`: the ISO day the page is for (UTC today if not given)."""
    today = today or datetime.now(UTC).date().isoformat()
    return ShownPaper(paper.id, paper.title, paper.abstract, tuple(paper.authors), tuple(paper.categories[:4]),
                      paper.listed_on, tuple(links), day_label(paper.listed_on, today) if paper.listed_on else "",
                      paper.submitted_by, web_image(paper.thumbnail), paper.raw_title or paper.title,
                      paper.raw_abstract or paper.abstract)


@lru_cache(maxsize=4096)
def day_label(day: str, today: str) -> str:
    """A day as a chip shows it: "Dec 6" in the current year, "Nov 27, 1997" in any other, so chips of
    different years never look alike. Month names are English whatever the server's locale."""
    try:
        when = date.fromisoformat(day[:10])
    except (TypeError, ValueError):
        return day
    label = f"{_MONTHS[when.month - 1]} {when.day}"
    return label if day[:4] == today[:4] else f"{label}, {when.year}"


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def web_image(url: str | None) -> str | None:
    """The URL if a page may load it as an image (absolute http or https, with a host), else None."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.hostname and url.isprintable() else None


class CardParts:
    """One paper's pieces, each rendered by its macro in _card.html when a page first needs it (search
    results show a snippet instead of the abstract; only week and month feeds show the day)."""

    __slots__ = ("paper", "_macros", "_title", "_authors", "_tags", "_day", "_abstract", "_submitter", "_thumb")

    def __init__(self, paper: ShownPaper, macros: Any) -> None:
        self.paper = paper
        self._macros = macros
        self._title: Markup | None = None
        self._authors: Markup | None = None
        self._tags: Markup | None = None
        self._day: Markup | None = None
        self._abstract: Markup | None = None
        self._submitter: Markup | None = None
        self._thumb: Markup | None = None

    @property
    def title(self) -> Markup:
        if self._title is None:
            self._title = self._macros.part_title(self.paper)
        return self._title

    @property
    def authors(self) -> Markup:
        if self._authors is None:
            self._authors = self._macros.part_authors(self.paper)
        return self._authors

    @property
    def tags(self) -> Markup:
        if self._tags is None:
            self._tags = self._macros.part_tags(self.paper)
        return self._tags

    @property
    def day(self) -> Markup:
        if self._day is None:
            self._day = self._macros.part_day(self.paper)
        return self._day

    @property
    def submitter(self) -> Markup:
        if self._submitter is None:
            self._submitter = self._macros.part_submitter(self.paper)
        return self._submitter

    @property
    def thumb(self) -> Markup:
        if self._thumb is None:
            self._thumb = self._macros.part_thumb(self.paper)
        return self._thumb

    @property
    def abstract(self) -> Markup:
        if self._abstract is None:
            self._abstract = self._macros.part_abstract(self.paper)
        return self._abstract


class CardPartsCache:
    """CardParts by paper id, least recently used first out; an entry counts only for the same shown fields."""

    def __init__(self, templates: Environment, entries: int = CARD_PARTS_ENTRIES) -> None:
        self._templates = templates
        self._entries = entries
        self._parts: OrderedDict[str, CardParts] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, paper: Paper, links: list[tuple[str, str]], today: str | None = None) -> CardParts:
        shown = shown_paper(paper, links, today)
        with self._lock:
            hit = self._parts.get(paper.id)
            if hit is not None and hit.paper == shown:
                self._parts.move_to_end(paper.id)
                return hit
        # The macros of the template as loaded (templates are not reloaded while serving).
        parts = CardParts(shown, self._templates.get_template("_card.html").module)
        if self._entries > 0:
            with self._lock:
                self._parts[paper.id] = parts
                self._parts.move_to_end(paper.id)
                while len(self._parts) > self._entries:
                    self._parts.popitem(last=False)
        return parts
