"""Search query syntax and the tokenizer shared by the lexical index and queries.

Syntax (arXiv's own field prefixes, plus a few conveniences):
  words                 free text, ranked by BM25 (any word may match)
  "a phrase"            the words must occur next to each other in the title or abstract
  -word, -"a phrase"    papers containing it are left out
  ti: au: abs: cat: id: restrict a word (or a quoted phrase) to a field; cat:cs matches cs.LG
  all:                  free text
  date:2024-01-01..2024-03-01, date:2024-01.., date:2024   (published day, open ends allowed)
  submittedDate:[20240101 TO 20240301]                     (arXiv's form, HHMM allowed)
A query that is only an arXiv id or arXiv URL looks that paper up.
Everything else — SQL, FTS operators, brackets, stars — is ordinary text.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

import Stemmer

from paperwire.model import parse_arxiv_id, strip_accents

MAX_QUERY_CHARS = 1000
# Words longer than this are junk (hashes, run-together URLs) and only bloat the vocabulary.
MAX_TOKEN_CHARS = 40

FIELD_NAMES = ("ti", "au", "abs", "cat", "id")
_ALIASES = {"title": "ti", "author": "au", "authors": "au", "abstract": "abs", "category": "cat",
            "categories": "cat"}
_DATE_FIELDS = ("date", "submitteddate", "published")
# Prefixes that are part of ordinary text (URLs, DOIs, ids), never an attempted filter.
_TEXT_PREFIXES = {"http", "https", "ftp", "mailto", "doi", "arxiv", "www", "file", "urn", "isbn"}


class QueryError(ValueError):
    """A query that cannot be run; the message is one line for the user."""


# Short, general English function words. Domain words (model, network, learning) stay searchable.
STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each either few for from further had has have
having he her here hers him his how however i if in into is it its itself just may me might more most must
my no nor not of off on once only or other our ours out over own same she should so some such than that
the their theirs them then there these they this those through thus to too under until up upon very via
was we were what when where whether which while who whom whose why will with within without would yet you
your s t
""".split())

_WORD_RE = re.compile(r"[^\W_]+")
_ASCII_WORD_RE = re.compile(r"[a-z0-9]+")
_stemmer = Stemmer.Stemmer("english")
# word -> stem, "" for words that are not indexed (stopwords, junk). Cleared when it grows past the cap.
_STEMS: dict[str, str] = {}
_STEM_CACHE_MAX = 2_000_000


def _fold(text: str) -> str:
    return strip_accents(text.lower())


def words(text: str) -> list[str]:
    """Lower-case, accent-folded alphanumeric runs of `text`, stopwords kept (for snippets and phrases)."""
    folded = _fold(text)
    return (_ASCII_WORD_RE if folded.isascii() else _WORD_RE).findall(folded)


def _keep(word: str) -> bool:
    return word not in STOPWORDS and len(word) <= MAX_TOKEN_CHARS


def tokenize(text: str, *, stem: bool = True) -> list[str]:
    """Index terms of `text`: folded words without stopwords, Porter2-stemmed unless `stem` is off.

    Hyphens split words ("gpt-4" -> gpt, 4); the pieces stay adjacent, so the quoted phrase "gpt-4"
    still finds exactly that."""
    found = words(text)
    if not stem:
        return [w for w in found if _keep(w)]
    cache = _STEMS
    stems = list(map(cache.get, found))
    if None in stems:
        missing = list({w for w, s in zip(found, stems, strict=True) if s is None})
        if len(cache) > _STEM_CACHE_MAX:
            cache.clear()
        for word, stemmed in zip(missing, _stemmer.stemWords(missing), strict=True):
            cache[word] = stemmed if _keep(word) else ""
        stems = [s if s is not None else cache.get(w) or (_stemmer.stemWord(w) if _keep(w) else "")
                 for w, s in zip(found, stems, strict=True)]
    return [s for s in stems if s]


@lru_cache(maxsize=65536)
def stem_word(word: str) -> str:
    return _stemmer.stemWord(word)


@dataclass
class ParsedQuery:
    terms: list[str] = field(default_factory=list)
    phrases: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    fields: dict[str, list[str]] = field(default_factory=dict)
    date_from: str | None = None
    date_to: str | None = None
    arxiv_id: str | None = None

    @property
    def text(self) -> str:
        """The natural-language part (free words and phrases) to embed; empty if it is only stopwords."""
        text = " ".join([*self.terms, *self.phrases])
        return text if tokenize(text, stem=False) else ""

    @property
    def is_empty(self) -> bool:
        """Nothing to match on: no words that are not stopwords, no filters, no id."""
        return not (self.text or self.excluded or self.fields or self.date_from or self.date_to or self.arxiv_id)


# ---------------------------------------------------------------- cleaning

def _clean(text: str) -> str:
    """Drop what no query means: lone surrogates (undecodable bytes), control and format characters."""
    if not isinstance(text, str):
        raise QueryError("query must be text")
    text = text.encode("utf-8", "ignore").decode("utf-8", "ignore")  # lone surrogates go
    out = []
    for ch in text:
        if ch.isprintable() or ch == " ":
            out.append(ch)
        elif ch.isspace() or unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            out.append(" ")
        # other non-printables (format characters, unassigned) are dropped
    return " ".join("".join(out).split())


# ---------------------------------------------------------------- dates

_DAY_RE = re.compile(r"^(\d{4})(?:-?(\d{2})(?:-?(\d{2}))?)?(?:[T ]?\d{2}:?\d{2}(?::?\d{2})?)?$")


def _parse_day(text: str, *, end: bool, where: str) -> str | None:
    text = text.strip()
    if text in ("", "*"):
        return None
    match = _DAY_RE.match(text)
    if not match:
        raise QueryError(f"bad date {text[:40]!r} in {where}; use YYYY-MM-DD")
    year, month, day = int(match.group(1)), match.group(2), match.group(3)
    try:
        m = int(month) if month else (12 if end else 1)
        if day:
            d = int(day)
        else:
            d = calendar.monthrange(year, m)[1] if end else 1
        return f"{year:04d}-{m:02d}-{d:02d}" if _valid(year, m, d) else _bad_date(text, where)
    except (ValueError, calendar.IllegalMonthError):
        return _bad_date(text, where)


def day_bound(text: str | None, *, end: bool, where: str) -> str | None:
    """A day range's bound given apart from the query text (an option, a form field) as YYYY-MM-DD, read
    as `date:` reads it: "2024" or "2024-03" is the first day of the period, or the last when `end`.
    None for nothing; QueryError naming `where` for anything that is not a date."""
    return None if text is None else _parse_day(text, end=end, where=where)


def _valid(year: int, month: int, day: int) -> bool:
    return 1 <= year <= 9999 and 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]


def _bad_date(text: str, where: str) -> str:
    raise QueryError(f"bad date {text[:40]!r} in {where}; use YYYY-MM-DD")


def _date_range(name: str, value: str) -> tuple[str | None, str | None]:
    where = f"{name}:"
    value = value.strip()
    if value.startswith("["):
        inner = value[1:].rstrip("]")
        parts = re.split(r"\s+TO\s+", inner.strip(), flags=re.IGNORECASE)
        if len(parts) != 2:
            raise QueryError(f"bad range in {where}; use {name}:[20240101 TO 20240301]")
        return _parse_day(parts[0], end=False, where=where), _parse_day(parts[1], end=True, where=where)
    if ".." in value:
        start, _, stop = value.partition("..")
        return _parse_day(start, end=False, where=where), _parse_day(stop, end=True, where=where)
    if not value:
        raise QueryError(f"empty {where} filter; use date:2024-01-01..2024-03-01")
    return _parse_day(value, end=False, where=where), _parse_day(value, end=True, where=where)


# ---------------------------------------------------------------- parsing

# One query item: optional minus, optional `name:` prefix, then a quoted phrase (closing quote
# optional: an unbalanced quote runs to the end), a [range], or a bare word.
_ITEM_RE = re.compile(
    r"""(?P<neg>-(?=\S))?
        (?:(?P<name>[A-Za-z][A-Za-z_]*):(?=\S))?
        (?:"(?P<phrase>[^"]*)(?:"|$)
          |(?P<range>\[[^\]]*\]?)
          |(?P<word>[^\s"]+))""",
    re.VERBOSE,
)


def _field_name(name: str, value: str) -> str | None:
    """The canonical field for a `name:` prefix; None when the colon is ordinary text; QueryError if unknown."""
    lowered = name.lower()
    lowered = _ALIASES.get(lowered, lowered)
    if lowered in FIELD_NAMES or lowered in _DATE_FIELDS or lowered == "all":
        return lowered
    if lowered in _TEXT_PREFIXES or value.startswith("/") or not name.islower():
        return None  # a URL, a DOI, or "BERT:pre-training"
    raise QueryError(f"unknown field '{name[:20]}:'; use ti:, au:, abs:, cat:, id:, date:")


def parse_query(text: str) -> ParsedQuery:
    """Parse a search box string. Raises only QueryError (empty, too long, unknown field, bad date)."""
    if not isinstance(text, str):
        raise QueryError("query must be text")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"query too long ({len(text)} characters; at most {MAX_QUERY_CHARS})")
    text = _clean(text)
    if not text:
        raise QueryError("empty query")
    query = ParsedQuery()
    arxiv = parse_arxiv_id(text)
    if arxiv:
        query.arxiv_id = arxiv.id
        return query
    for match in _ITEM_RE.finditer(text):
        neg, name = bool(match.group("neg")), match.group("name")
        phrase, value = match.group("phrase"), match.group("range") or match.group("word")
        raw = phrase if phrase is not None else value
        kind = _field_name(name, raw) if name else None
        if name and kind is None:
            # The colon was text: keep the whole item as words.
            value = f"{name}:{raw}" if phrase is None else None
            phrase = None if phrase is None else f"{name}: {phrase}"
            raw = phrase if phrase is not None else value
        if kind in _DATE_FIELDS:
            start, stop = _date_range(name or "date", raw if phrase is None else phrase)
            if start and (query.date_from is None or start > query.date_from):
                query.date_from = start
            if stop and (query.date_to is None or stop < query.date_to):
                query.date_to = stop
            continue
        raw = raw.strip()
        if not raw or (neg and not words(raw)):  # a bare "--" excludes nothing
            continue
        if neg:
            query.excluded.append(raw)
        elif kind in FIELD_NAMES:
            query.fields.setdefault(kind, []).append(raw)
        elif phrase is not None:
            query.phrases.append(raw)
        else:
            query.terms.append(raw)
    return query
