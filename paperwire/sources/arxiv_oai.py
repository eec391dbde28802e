"""arXiv OAI-PMH ListRecords responses in the `arXiv` metadata format.

One response is an <OAI-PMH> document: <ListRecords> holds <record>s (a <header> with identifier,
datestamp, setSpec and maybe status="deleted"; a <metadata><arXiv> with id, created, updated,
authors/author/{keyname,forenames,suffix}, title, categories, comments, doi, license, abstract) and
ends with a <resumptionToken> (empty on the last page). Errors come as <error code="...">.

Parsed with iterparse, each record cleared once read: a page of any size stays in flat memory.
`published` is <created> (the first version), so a revision never looks like a new paper.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import BinaryIO

from paperwire.model import extract_links
from paperwire.sources.base import ParseItem, Rejected, SourceError, paper_or_rejection

FORMAT = "arxiv-oai"
EXTENSIONS = (".xml",)

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
ARXIV_NS = "http://arxiv.org/OAI/arXiv/"
NO_RECORDS = "noRecordsMatch"


def looks_like(head: str) -> bool:
    return "<OAI-PMH" in head and ("ListRecords" in head or ARXIV_NS in head or "<error" in head)


class OAIError(SourceError):
    """The repository answered with an OAI-PMH <error> (badResumptionToken, badArgument, …)."""

    def __init__(self, name: str, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"{name}: OAI-PMH error {code}: {message or 'no message'}")


class MalformedXML(SourceError):
    """The response is not well-formed XML (truncated, or not XML at all)."""

    def __init__(self, name: str, error: ET.ParseError) -> None:
        self.line = error.position[0] if error.position else 0
        self.reason = f"malformed XML ({str(error).split(':')[0]})"
        super().__init__(f"{name}: line {self.line}: {self.reason}")


@dataclass
class ListRecordsInfo:
    """What one response says besides its records; complete once its items are exhausted."""

    resumption_token: str | None = None  # None on the last page
    complete_list_size: int | None = None
    cursor: int | None = None
    response_date: str | None = None
    records: int = 0  # live records read (papers and rejections)
    deleted: int = 0  # records with status="deleted", skipped
    max_datestamp: str | None = None  # newest header datestamp seen (day precision)


@lru_cache(maxsize=256)
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element) -> dict[str, ET.Element]:
    found: dict[str, ET.Element] = {}
    for child in element:
        found.setdefault(_local(child.tag), child)
    return found


def _text(element: ET.Element | None) -> str:
    return "".join(element.itertext()).strip() if element is not None else ""


def _int(value: str | None) -> int | None:
    return int(value) if value and value.strip().isdecimal() else None


def _author_name(author: ET.Element) -> str:
    parts = _children(author)
    return " ".join(x for x in (_text(parts.get("forenames")), _text(parts.get("keyname")),
                                _text(parts.get("suffix"))) if x)


def record_to_item(metadata: ET.Element, name: str, location: str) -> ParseItem:
    """A Paper from one <arXiv> metadata element."""
    fields = _children(metadata)
    arxiv_id = _text(fields.get("id"))
    if not arxiv_id:
        return Rejected(name, location, "record has no arXiv id")
    authors_el = fields.get("authors")
    authors = [_author_name(a) for a in authors_el if _local(a.tag) == "author"] if authors_el is not None else []
    created = _text(fields.get("created"))
    doi = _text(fields.get("doi")).split()  # several DOIs are space separated; the first is the paper's
    return paper_or_rejection(
        name, location,
        title=_text(fields.get("title")),
        abstract=_text(fields.get("abstract")),
        arxiv_id=arxiv_id,
        source=FORMAT,
        authors=authors,
        categories=_text(fields.get("categories")).split(),
        published=created or None,
        updated=_text(fields.get("updated")) or created or None,
        doi=doi[0] if doi else None,
        # authors often put the code URL in the comments ("Code at https://github.com/…")
        extra_links=extract_links(_text(fields.get("comments"))),
    )


def _records(stream: BinaryIO, name: str, info: ListRecordsInfo) -> Iterator[ParseItem]:
    """Papers and rejections of one response; raises OAIError for an OAI error other than
    noRecordsMatch and MalformedXML for XML that is not well-formed."""
    parent: ET.Element | None = None
    number = 0
    try:
        for event, element in ET.iterparse(stream, events=("start", "end")):
            tag = _local(element.tag)
            if event == "start":
                if tag == "ListRecords":
                    parent = element
                continue
            if tag == "record":
                number += 1
                yield from _record(element, name, number, info)
                element.clear()
                if parent is not None:
                    parent.clear()  # drop finished records so memory stays flat
            elif tag == "resumptionToken":
                info.resumption_token = (element.text or "").strip() or None
                info.complete_list_size = _int(element.get("completeListSize"))
                info.cursor = _int(element.get("cursor"))
            elif tag == "responseDate":
                info.response_date = (element.text or "").strip() or None
            elif tag == "error":
                code = element.get("code", "unknown")
                if code != NO_RECORDS:
                    raise OAIError(name, code, _text(element))
    except ET.ParseError as exc:
        raise MalformedXML(name, exc) from None
    except LookupError as exc:  # an XML declaration naming an encoding Python does not know
        error = ET.ParseError(f"unknown encoding: {exc}")
        error.position = (1, 0)
        raise MalformedXML(name, error) from None


def _record(record: ET.Element, name: str, number: int, info: ListRecordsInfo) -> Iterator[ParseItem]:
    parts = _children(record)
    header = parts.get("header")
    header_fields = _children(header) if header is not None else {}
    identifier = _text(header_fields.get("identifier"))
    datestamp = _text(header_fields.get("datestamp"))[:10]
    if datestamp and (info.max_datestamp is None or datestamp > info.max_datestamp):
        info.max_datestamp = datestamp
    if header is not None and header.get("status") == "deleted":
        info.deleted += 1
        return
    info.records += 1
    location = f"record {number}" + (f" ({identifier})" if identifier else "")
    metadata = parts.get("metadata")
    arxiv = next(iter(metadata), None) if metadata is not None else None
    if arxiv is None:
        yield Rejected(name, location, "record has no metadata")
    elif _local(arxiv.tag) != "arXiv":
        yield Rejected(name, location, f"metadata format <{_local(arxiv.tag)}> is not arXiv (metadataPrefix=arXiv)")
    else:
        yield record_to_item(arxiv, name, location)


def parse_list_records(stream: BinaryIO, name: str) -> tuple[Iterator[ParseItem], ListRecordsInfo]:
    """(items, info) for one ListRecords response, for a harvester.

    `info` (resumption token, list size, deleted count) is filled in as the items are consumed.
    The iterator raises OAIError for an OAI error (noRecordsMatch is just an empty page) and
    MalformedXML for broken XML, so a harvester can roll the page back and retry or stop."""
    info = ListRecordsInfo()
    return _records(stream, name, info), info


def parse(stream: BinaryIO, name: str) -> Iterator[ParseItem]:
    """A saved ListRecords response as an ingest source: errors become Rejected entries."""
    info = ListRecordsInfo()
    try:
        yield from _records(stream, name, info)
    except MalformedXML as exc:
        yield Rejected(name, f"line {exc.line}", exc.reason)
    except OAIError as exc:
        yield Rejected(name, "response", str(exc).removeprefix(f"{name}: "))
