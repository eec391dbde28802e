"""The Paper record, paper ids, and the text clean-up every source shares."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date
from functools import lru_cache
from typing import Any

from paperwire import latex

# New-style ids (0704.0001 onwards; 5 digits after the dot since 2015) and old-style
# archive ids such as hep-th/9901001 or math.GT/0309136.
_NEW_ID = r"\d{4}\.\d{4,5}"
_OLD_ID = r"[a-z]+(?:-[a-z]+)*(?:\.[A-Z]{2})?/\d{7}"
_ARXIV_ID_RE = re.compile(
    rf"^(?:arxiv:|(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/)?"
    rf"(?P<id>{_NEW_ID}|{_OLD_ID})(?:v(?P<version>\d+))?(?:\.pdf)?/?$",
    re.IGNORECASE,
)
TITLE_ID_PREFIX = "pw-"


class InvalidPaperId(ValueError):
    """A string that is neither an arXiv id nor a paperwire title id."""


@dataclass(frozen=True)
class ArxivId:
    id: str
    version: int | None = None

    def __str__(self) -> str:
        return f"{self.id}v{self.version}" if self.version else self.id


def parse_arxiv_id(text: str) -> ArxivId | None:
    """Return the arXiv id in `text` (bare, `arXiv:` prefixed or an abs/pdf URL), else None."""
    match = _ARXIV_ID_RE.match(text.strip())
    if not match:
        return None
    raw = match.group("id")
    if "/" in raw:
        archive, number = raw.split("/", 1)
        # The archive is lower case, the subject class (math.GT) upper case.
        head, _, subject = archive.partition(".")
        raw = f"{head.lower()}{'.' + subject.upper() if subject else ''}/{number}"
    version = match.group("version")
    return ArxivId(raw, int(version) if version else None)


def normalise_title(title: str) -> str:
    """Lower-case ASCII-folded words of a title: the key that makes two captures one paper."""
    return " ".join(_TITLE_WORD.findall(strip_accents(clean_text(title)).lower()))


_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")


def _strip_marks(match: re.Match[str]) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", match.group(0)) if not unicodedata.combining(ch))


def strip_accents(text: str) -> str:
    """`text` decomposed (NFKD) without its combining marks. Only non-ASCII runs are touched: ASCII is its
    own NFKD form and never a combining mark, and most text has few other characters."""
    return text if text.isascii() else _NON_ASCII_RUN.sub(_strip_marks, text)


_TITLE_WORD = re.compile(r"[a-z0-9]+")


def title_id(title: str) -> str:
    """A stable id for a paper known only by its title."""
    digest = hashlib.sha1(normalise_title(title).encode()).hexdigest()
    return TITLE_ID_PREFIX + digest[:12]


def canonical_id(text: str) -> str:
    """Normalise a user-supplied id (arXiv id, arXiv URL, or title id); raise InvalidPaperId."""
    text = text.strip()
    arxiv = parse_arxiv_id(text)
    if arxiv:
        return arxiv.id
    if re.fullmatch(TITLE_ID_PREFIX + r"[0-9a-f]{12}", text):
        return text
    raise InvalidPaperId(f"not a paper id: {text[:80]!r}")


# ---------------------------------------------------------------- text clean-up

# ASCII whitespace that str.split() breaks on, other than the newline and single spaces
_OTHER_ASCII_SPACE = ("  ", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f")


def collapse_whitespace(text: str) -> str:
    """`" ".join(text.split())`: each run of whitespace one space, none at the ends. Abstracts are mostly
    ASCII lines broken by single newlines; for those, replacing the newlines is three times faster than
    splitting into words and joining them again."""
    if text.isascii():
        flat = text.replace("\n", " ").strip()
        for mark in _OTHER_ASCII_SPACE:
            if mark in flat:
                break
        else:
            return flat
    return " ".join(text.split())


def clean_text(raw: str) -> str:
    """Display text: whitespace collapsed and leftover LaTeX turned into readable characters."""
    return _clean_collapsed(collapse_whitespace(raw)) if raw else ""


def _clean_collapsed(text: str) -> str:
    """clean_text for text whose whitespace is already collapsed (make_paper's raw fields)."""
    # Only a character LaTeX gives a meaning to makes a text worth reading: most text has none (this is
    # the ingest hot path, and `in` with one character is the fastest scan there is).
    if not ("\\" in text or "$" in text or "{" in text or "}" in text or "_" in text or "^" in text
            or "~" in text or "`" in text):
        return text
    return latex.pieces_text(read_text(text))


def _author_name(raw: str) -> str:
    """A name as shown: arXiv metadata writes accents in TeX (`M\\"uller`, `{\\'E}mile`), decoded like titles."""
    name = " ".join(raw.split())
    return clean_text(name) if "\\" in name or "{" in name else name


def read_text(text: str) -> list[latex.Piece]:
    """A title or abstract (whitespace collapsed) as pieces of plain text, math and URLs: what pages render.
    Markup nested deeper than the reader recurses (`\\frac\\frac…`, a thousand levels) stays as written."""
    try:
        return latex.read(text, [(start, end) for start, end, _ in link_spans(text)])
    except RecursionError:
        return [latex.Piece(latex.TEXT, text)]


_URL = re.compile(r"(?:https?://|(?<![\w/.])(?:www\.|github\.com/))[^\s<>\"'{}]+", re.IGNORECASE)


_URL_STARTS = ("http", "www.", "github.com/")  # every match of _URL starts with one of these, in any case


def _url_matches(text: str, lowered: str) -> Iterator[re.Match[str]]:
    """_URL.finditer(text), found faster: the pattern is tried only where str.find saw a possible start
    (scanning every position with it costs about as much as the rest of parsing an abstract)."""
    if not text.isascii():  # lower() may change a non-ASCII text's length, and with it the positions
        yield from _URL.finditer(text)
        return
    starts = []
    for start in _URL_STARTS:
        i = lowered.find(start)
        while i != -1:
            starts.append(i)
            i = lowered.find(start, i + 1)
    end = 0
    for i in sorted(starts):
        if i >= end and (match := _URL.match(text, i)):
            end = match.end()
            yield match


def link_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, url) of each code or project URL in `text`: trailing punctuation left out, and a bare
    www. or github.com/ address given https://."""
    spans: list[tuple[int, int, str]] = []
    lowered = (text or "").lower()
    if "http" not in lowered and "www." not in lowered and "github.com/" not in lowered:
        return spans  # most abstracts have no URL
    for match in _url_matches(text, lowered):
        url = match.group(0)
        while url and url[-1] in ".,;:!?)]'\"":
            # a closing parenthesis belongs to the URL only when it closes one opened inside it
            if url[-1] == ")" and url.count("(") >= url.count(")"):
                break
            url = url[:-1]
        if len(url) > 12 - (0 if url.lower().startswith("http") else len("https://")):
            spans.append((match.start(), match.start() + len(url),
                          url if url.lower().startswith("http") else "https://" + url))
    return spans


def extract_links(text: str) -> list[str]:
    """Code and project URLs mentioned in an abstract, in order, without duplicates."""
    return list(dict.fromkeys(url for _, _, url in link_spans(text)))


# ---------------------------------------------------------------- the record

@dataclass
class Paper:
    """One paper. `title`/`abstract` are display text; `raw_*` keep what the source said."""

    id: str
    title: str
    abstract: str = ""
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    published: str | None = None  # ISO date of the first version
    updated: str | None = None  # ISO date of the newest version
    listed_on: str | None = None  # ISO day the paper entered the feed
    links: list[str] = field(default_factory=list)
    source: str = ""
    upvotes: int = 0
    submitted_by: str | None = None
    arxiv_id: str | None = None
    version: int | None = None
    doi: str | None = None
    num_comments: int = 0
    thumbnail: str | None = None  # an image the source shows for the paper (HF's first media URL)
    raw_title: str = ""
    raw_abstract: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Paper:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def with_changes(self, **changes: Any) -> Paper:
        return replace(self, **changes)


def make_paper(
    *,
    title: str,
    abstract: str = "",
    arxiv_id: str | None = None,
    source: str,
    authors: list[str] | None = None,
    categories: list[str] | None = None,
    published: str | date | None = None,
    updated: str | date | None = None,
    listed_on: str | date | None = None,
    upvotes: int = 0,
    submitted_by: str | None = None,
    doi: str | None = None,
    num_comments: int = 0,
    extra_links: list[str] | None = None,
    thumbnail: str | None = None,
) -> Paper:
    """Build a Paper from raw source fields: ids normalised, text cleaned, links extracted."""
    parsed = parse_arxiv_id(arxiv_id) if arxiv_id else None
    if arxiv_id and not parsed:
        raise InvalidPaperId(f"not an arXiv id: {arxiv_id[:80]!r}")
    raw_title = collapse_whitespace(title or "")
    raw_abstract = collapse_whitespace(abstract or "")
    links = extract_links(raw_abstract)
    for link in extra_links or []:
        if link and link not in links:
            links.append(link)
    return Paper(
        id=parsed.id if parsed else title_id(raw_title),
        title=_clean_collapsed(raw_title),
        abstract=_clean_collapsed(raw_abstract),
        authors=[_author_name(a) for a in authors or [] if a and not a.isspace()],
        categories=list(dict.fromkeys(c.strip() for c in categories or [] if c and c.strip())),
        published=_iso_day(published),
        updated=_iso_day(updated),
        listed_on=_iso_day(listed_on),
        links=links,
        source=source,
        upvotes=max(0, int(upvotes or 0)),
        submitted_by=submitted_by or None,
        arxiv_id=parsed.id if parsed else None,
        version=parsed.version if parsed else None,
        doi=(doi or "").strip().lower() or None,
        num_comments=max(0, int(num_comments or 0)),
        thumbnail=thumbnail or None,
        raw_title=raw_title,
        raw_abstract=raw_abstract,
    )


def _iso_day(value: str | date | None) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value.isoformat()[:10]
    return _iso_day_text(str(value).strip())


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@lru_cache(maxsize=8192)  # a bulk ingest sees the same few thousand days over and over
def _iso_day_text(text: str) -> str:
    if _ISO_DAY.match(text):
        date.fromisoformat(text[:10])  # raises ValueError on 2024-13-45
        return text[:10]
    raise ValueError(f"not an ISO date: {text[:40]!r}")


def _newer(new: Paper, old: Paper) -> bool:
    """Whether `new` is a later version of the paper than `old`."""
    if new.version and old.version and new.version != old.version:
        return new.version > old.version
    if new.updated and old.updated and new.updated != old.updated:
        return new.updated > old.updated
    return False


def _earliest(a: str | None, b: str | None) -> str | None:
    return min(x for x in (a, b) if x) if (a or b) else None


def merge_papers(old: Paper, new: Paper) -> Paper:
    """One record from two captures of the same paper.

    A newer version replaces the text; otherwise the new capture only fills what the old one
    lacks. Days keep the earliest (a revision must not look new), counters the highest.
    """
    merged = object.__new__(Paper)  # a shallow copy, as dataclasses.replace(old) makes, at a fraction of its cost
    merged.__dict__.update(old.__dict__)
    text_fields = ("title", "abstract", "raw_title", "raw_abstract", "authors", "categories",
                   "links", "updated", "version", "doi")
    if _newer(new, old):
        for name in text_fields:
            value = getattr(new, name)
            if value:
                setattr(merged, name, value)
    else:
        for name in text_fields:
            if not getattr(merged, name) and getattr(new, name):
                setattr(merged, name, getattr(new, name))
        if len(new.abstract) > len(old.abstract) and not old.version:
            # a truncated capture is completed by a fuller one of the same version
            merged.abstract, merged.raw_abstract = new.abstract, new.raw_abstract
    if not merged.arxiv_id and new.arxiv_id:
        merged.arxiv_id = new.arxiv_id
    merged.published = _earliest(old.published, new.published)
    merged.listed_on = _earliest(old.listed_on, new.listed_on)
    merged.upvotes = max(old.upvotes, new.upvotes)
    merged.num_comments = max(old.num_comments, new.num_comments)
    merged.submitted_by = old.submitted_by or new.submitted_by
    merged.thumbnail = old.thumbnail or new.thumbnail
    return merged
