"""CSL-JSON libraries (Zotero, Mendeley, pandoc, citation.js exports): an array of items with id, type,
title, abstract, author [{family, given} | {literal}], issued {date-parts | raw}, DOI, URL, note,
number. The arXiv id comes from the arXiv DOI, URL, number, note, archive_location or a non-standard
eprint field. Streamed record by record like the other JSON formats.

`parse` yields Papers for ingest (no abstract → rejected); `read_library_entries` yields
LibraryEntry references for matching a personal library.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from paperwire.model import clean_text, parse_arxiv_id
from paperwire.sources.base import LibraryEntry, ParseItem, Rejected, paper_or_rejection
from paperwire.sources.citation import arxiv_id_of, doi_of, iso_day, year_of
from paperwire.sources.json_stream import iter_json_records

FORMAT = "csl-json"
EXTENSIONS = (".json", ".csl.json", ".csljson")

_TYPE = re.compile(r'"type"\s*:\s*"[a-z-]+"')
_CSL_KEYS = re.compile(r'"(?:issued|author|container-title|DOI|URL|citation-key|title)"\s*:')
_HF_KEYS = re.compile(r'"(?:paper|submittedOnDailyAt|upvotes|publishedAt)"\s*:')


def looks_like(head: str) -> bool:
    return (head.lstrip()[:1] in ("[", "{") and bool(_TYPE.search(head)) and bool(_CSL_KEYS.search(head))
            and not _HF_KEYS.search(head))


def _str(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else ""


def _name(author: Any) -> str:
    if not isinstance(author, dict):
        return ""
    literal = _str(author.get("literal"))
    if literal:
        return literal
    parts = [author.get(k) for k in ("given", "dropping-particle", "non-dropping-particle", "family", "suffix")]
    return " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())


def _published(item: dict[str, Any]) -> str | None:
    issued = item.get("issued")
    if not isinstance(issued, dict):
        return None
    parts = issued.get("date-parts")
    if isinstance(parts, list) and parts and isinstance(parts[0], list) and parts[0]:
        numbers: list[int | None] = []
        for part in parts[0][:3]:
            try:
                numbers.append(int(part))
            except (TypeError, ValueError, OverflowError):
                numbers.append(None)
        year = year_of(numbers[0]) if numbers[0] is not None else None
        return iso_day(year, *numbers[1:3])
    text = _str(issued.get("raw")) or _str(issued.get("literal"))
    if re.match(r"^\d{4}-\d{2}-\d{2}", text):
        try:
            return iso_day(*(int(x) for x in text[:10].split("-")))
        except ValueError:
            return None
    return iso_day(year_of(text))


class _Item:
    def __init__(self, item: dict[str, Any], location: str) -> None:
        self.item, self.location = item, location

    def get(self, key: str) -> str:
        return _str(self.item.get(key))

    def arxiv_id(self) -> str | None:
        return arxiv_id_of(self.get("eprint"), self.get("archivePrefix") or None,
                           self.get("DOI"), self.get("URL"), self.get("number"), self.get("note"),
                           self.get("archive_location"), self.get("container-title"))

    def doi(self) -> str | None:
        return doi_of(self.get("DOI"))

    def authors(self) -> list[str]:
        authors = self.item.get("author")
        return [n for n in (_name(a) for a in authors) if n] if isinstance(authors, list) else []


def _items(stream: BinaryIO, name: str) -> Iterator[_Item | Rejected]:
    for record in iter_json_records(stream, name):
        if isinstance(record, Rejected):
            yield record
            continue
        number, value = record
        if not isinstance(value, dict):
            yield Rejected(name, f"record {number}", "record is not a JSON object")
            continue
        key = value.get("id")
        location = f"record {number}" + (f" ({key})" if isinstance(key, (str, int)) and str(key) else "")
        yield _Item(value, location[:120])


def parse(stream: BinaryIO, name: str) -> Iterator[ParseItem]:
    for item in _items(stream, name):
        if isinstance(item, Rejected):
            yield item
            continue
        yield paper_or_rejection(
            name, item.location,
            title=item.get("title"), abstract=item.get("abstract"), arxiv_id=item.arxiv_id(), source=FORMAT,
            authors=item.authors(), published=_published(item.item), doi=item.doi(),
        )


def read_library_entries(stream: BinaryIO, name: str) -> Iterator[LibraryEntry | Rejected]:
    """Every reference in a CSL-JSON library, abstract or not (for matching to stored papers)."""
    for item in _items(stream, name):
        if isinstance(item, Rejected):
            yield item
            continue
        title = clean_text(item.get("title"))
        arxiv = parse_arxiv_id(item.arxiv_id() or "")
        doi = item.doi()
        if not title and not arxiv and not doi:
            yield Rejected(name, item.location, "item has no title, arXiv id or DOI")
            continue
        published = _published(item.item)
        yield LibraryEntry(key=_str(item.item.get("id")) or item.location, title=title,
                           arxiv_id=arxiv.id if arxiv else None, doi=doi, authors=item.authors(),
                           year=int(published[:4]) if published else None)
