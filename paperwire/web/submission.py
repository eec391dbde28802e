"""What a paper submitted through the site must look like, checked the same way whether it was typed
into the form or pasted as a record: each problem is one plain sentence, keyed by the form field it
belongs to, so the form can be shown again next to what the user typed."""

from __future__ import annotations

import io
import re
from pathlib import Path
from urllib.parse import urlsplit

from paperwire.model import Paper

TITLE_MAX = 300
ABSTRACT_MIN = 100  # characters; "asdf" or a one-line note is not an abstract
ABSTRACT_MIN_WORDS = 10
ABSTRACT_MAX = 5_000  # arXiv allows 1,920; with room for other venues' longer ones
AUTHORS_MAX = 200
AUTHOR_CHARS_MAX = 200
CATEGORIES_MAX = 20
LINKS_MAX = 20
LINK_CHARS_MAX = 500
PASTE_MAX = 20_000
CATEGORY_RE = re.compile(r"[A-Za-z][A-Za-z-]{0,19}(\.[A-Za-z][A-Za-z-]{0,19})?")
# Formats a single pasted record may be in (not the page captures: any text would pass as one).
PASTE_FORMATS = ("bibtex", "csl-json", "arxiv-atom", "arxiv-oai", "hf-daily", "arxiv-snapshot")
UNREADABLE = ("The pasted text is not a record this site can read. Paste one BibTeX entry (@article{…}), "
              "a CSL-JSON item, or an entry of an arXiv API (Atom) answer.")

Problems = dict[str, str]  # form field -> what is wrong with it


def _count(n: int) -> str:
    return f"{n:,}"


def link_problem(url: str) -> str | None:
    """Why a link cannot be listed: only http and https addresses with a host name, of sane length."""
    if len(url) > LINK_CHARS_MAX:
        return f"A link is {_count(len(url))} characters long; the limit is {LINK_CHARS_MAX}."
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return f"Links must be web addresses starting with http:// or https:// — “{url[:60]}” is not."
    return None


def split_links(text: str) -> tuple[list[str], str | None]:
    """The links typed into the form (separated by spaces or lines) and the first problem among them."""
    links = list(dict.fromkeys(text.split()))
    if len(links) > LINKS_MAX:
        return links, f"Give at most {LINKS_MAX} links."
    for link in links:
        problem = link_problem(link)
        if problem:
            return links, problem
    return links, None


def split_authors(text: str) -> list[str]:
    """Authors typed one per line, or separated by semicolons or commas (not commas inside brackets)."""
    return [a.strip() for a in re.split(r"\n|;|,(?![^()]*\))", text) if a.strip()]


def split_categories(text: str) -> list[str]:
    return text.replace(",", " ").split()


def paper_problems(paper: Paper, *, pasted: bool = False) -> Problems:
    """Everything wrong with a paper about to be listed. A pasted record's problems are all reported
    under `metadata`, the field it was pasted into, naming the part of the record they are about."""
    whose = "The pasted record’s " if pasted else "The "
    problems: Problems = {}

    def add(field: str, message: str) -> None:
        problems.setdefault("metadata" if pasted else field, message)

    title, abstract = paper.title.strip(), paper.abstract.strip()
    if not title:
        add("title", f"{whose}title is missing: give the paper’s title.")
    elif len(title) > TITLE_MAX:
        add("title", f"{whose}title is {_count(len(title))} characters long; the limit is {TITLE_MAX}.")
    if not abstract:
        add("abstract", f"{whose}abstract is missing: give the paper’s abstract.")
    elif len(abstract) > ABSTRACT_MAX:
        add("abstract", f"{whose}abstract is {_count(len(abstract))} characters long; the limit is "
                        f"{_count(ABSTRACT_MAX)}.")
    elif len(abstract) < ABSTRACT_MIN or len(abstract.split()) < ABSTRACT_MIN_WORDS:
        add("abstract", f"{whose}abstract is too short to be one: give the paper’s whole abstract "
                        f"(at least {ABSTRACT_MIN} characters and {ABSTRACT_MIN_WORDS} words).")
    if len(paper.authors) > AUTHORS_MAX:
        add("authors", f"Give at most {AUTHORS_MAX} authors.")
    long_name = next((a for a in paper.authors if len(a) > AUTHOR_CHARS_MAX), None)
    if long_name:
        add("authors", f"An author’s name is {_count(len(long_name))} characters long; the limit is "
                       f"{AUTHOR_CHARS_MAX}. Separate names with commas or new lines.")
    if len(paper.categories) > CATEGORIES_MAX:
        add("categories", f"Give at most {CATEGORIES_MAX} categories.")
    bad = next((c for c in paper.categories if not CATEGORY_RE.fullmatch(c)), None)
    if bad:
        add("categories", f"Categories are arXiv codes such as cs.LG or hep-th — “{bad[:40]}” is not one.")
    if len(paper.links) > LINKS_MAX:
        add("links", f"{whose}links are too many: at most {LINKS_MAX}.")
    for link in paper.links:
        problem = link_problem(link)
        if problem:
            add("links", problem)
            break
    return problems


def paper_from_paste(text: str) -> Paper:
    """The first paper in pasted metadata: a BibTeX entry, CSL-JSON, an arXiv API (Atom) or OAI-PMH
    record, a Hugging Face daily-papers item or an arXiv snapshot line, told apart by their content.
    Raises ValueError with a plain sentence when it cannot be read."""
    from paperwire.sources import FORMATS, SourceError, parse_stream

    data = text.strip().encode("utf-8")
    head = data[:4096].decode("utf-8", errors="replace")
    fmt = next((f for f in PASTE_FORMATS if FORMATS[f].looks_like(head)), None)
    if fmt is None:
        raise ValueError(UNREADABLE)
    try:
        first = next(iter(parse_stream(io.BytesIO(data), "pasted", fmt)), None)
    except (SourceError, ValueError) as exc:
        raise ValueError(f"The pasted text could not be read: {_plain_reason(str(exc))}") from None
    if first is None:
        raise ValueError(UNREADABLE)
    if not isinstance(first, Paper):
        raise ValueError(f"The pasted text could not be read: {_plain_reason(str(first))}")
    return first


def _plain_reason(reason: str) -> str:
    """A parser's reason without the stream's name or command-line advice."""
    reason = reason.removeprefix("pasted: ").removeprefix(str(Path("pasted")) + ": ")
    reason = re.sub(r";?\s*(pass|use|try) --[\w-]+.*$", "", reason).strip()
    reason = reason[:200].rstrip(".")
    return f"{reason}." if reason else UNREADABLE
