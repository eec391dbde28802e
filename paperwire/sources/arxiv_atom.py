"""arXiv API responses (Atom 1.0 with the arxiv: extension), read with feedparser.

Per entry: id (http://arxiv.org/abs/IDvN), title, summary, author names, arxiv:primary_category and
category terms, published (first version), updated (this version), links (abs, pdf, doi),
arxiv:doi, arxiv:comment. The API reports a bad query as an entry titled "Error".

A response is a bounded page (at most a few thousand entries), so it is parsed whole. When the XML
is broken, the entries that end before the error are kept and the error names its line.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any, BinaryIO
from xml.sax import SAXParseException

from paperwire.model import extract_links, parse_arxiv_id
from paperwire.sources.base import ParseItem, Rejected, paper_or_rejection

FORMAT = "arxiv-atom"
EXTENSIONS = (".atom", ".xml")
MAX_FEED_BYTES = 256 * 1024 * 1024

_ATOM_NS = "http://www.w3.org/2005/Atom"
_ENTRY_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?entry\s*>")
_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def looks_like(head: str) -> bool:
    return bool(re.search(r"<(?:\w+:)?feed[\s>]", head)) and _ATOM_NS in head


def _entry_id(entry: Any) -> str:
    raw = str(entry.get("id") or "")
    if not parse_arxiv_id(raw):
        # some mirrors give only the alternate link
        for link in entry.get("links") or []:
            if link.get("rel") == "alternate" and parse_arxiv_id(str(link.get("href") or "")):
                return str(link.get("href"))
    return raw


def entry_to_item(entry: Any, name: str, location: str) -> ParseItem:
    """One feedparser entry of an arXiv API feed as a Paper, or a Rejected saying why not."""
    title = str(entry.get("title") or "")
    raw_id = _entry_id(entry)
    if title.strip() == "Error" and ("api/errors" in raw_id or not parse_arxiv_id(raw_id)):
        return Rejected(name, location, f"arXiv API error: {str(entry.get('summary') or 'no details').strip()}")
    if not raw_id.strip():
        return Rejected(name, location, "entry has no id")
    location = f"{location} ({raw_id.strip().rsplit('/abs/', 1)[-1][:40]})"
    if not parse_arxiv_id(raw_id):
        return Rejected(name, location, f"entry id is not an arXiv id: {raw_id.strip()[:80]!r}")
    primary = entry.get("arxiv_primary_category") or {}
    categories = [primary.get("term")] if isinstance(primary, dict) else []
    categories += [tag.get("term") for tag in entry.get("tags") or []]
    doi = str(entry.get("arxiv_doi") or "")
    links: list[str] = []
    for link in entry.get("links") or []:
        href, kind = str(link.get("href") or ""), str(link.get("title") or "")
        if kind == "doi" and not doi:
            doi = re.sub(r"^https?://(?:dx\.)?doi\.org/", "", href)
        elif kind not in ("doi", "pdf") and link.get("rel") != "alternate" and href.startswith("http"):
            links.append(href)  # anything beyond abs/pdf/doi, e.g. a project page
    comment = str(entry.get("arxiv_comment") or "")
    return paper_or_rejection(
        name, location,
        title=title,
        abstract=str(entry.get("summary") or ""),
        arxiv_id=raw_id,
        source=FORMAT,
        authors=[str(a.get("name") or "") for a in entry.get("authors") or [] if isinstance(a, dict)],
        categories=[c for c in categories if isinstance(c, str)],
        published=str(entry.get("published") or "")[:10] or None,
        updated=str(entry.get("updated") or "")[:10] or None,
        doi=doi or None,
        extra_links=extract_links(comment) + links,  # comments often carry the code URL
    )


def entries_to_items(feed: Any, name: str, first: int = 1) -> Iterator[ParseItem]:
    """The entries of a parsed feed (feedparser.parse result) as Papers and Rejected, in order."""
    for number, entry in enumerate(feed.get("entries") or [], first):
        yield entry_to_item(entry, name, f"entry {number}")


def _first_error(data: bytes, feed: Any) -> tuple[int, str] | None:
    """(byte offset, "line N: reason") of the first fatal problem in the document, else None."""
    declared = _DECLARED_ENCODING.match(data[:200])
    if not declared or declared.group(1).lower().replace(b"_", b"-") in (b"utf-8", b"utf8"):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            return exc.start, f"line {line}: invalid UTF-8"
    if not feed.get("bozo"):
        return None
    exc = feed.get("bozo_exception")
    if isinstance(exc, SAXParseException):
        line, column = exc.getLineNumber() or 1, exc.getColumnNumber() or 0
        offset = 0
        for _ in range(line - 1):
            offset = data.find(b"\n", offset) + 1
            if offset == 0:
                offset = len(data)
                break
        return offset + column, f"line {line}: malformed XML ({exc.getMessage()})"
    # encoding overrides and similar notes: feedparser still read the document
    return None


def parse_bytes(data: bytes, name: str) -> Iterator[ParseItem]:
    """Parse one Atom document held in memory (a file or an HTTP response body)."""
    import feedparser  # here, not at the top: it is slow to import and most commands never read Atom

    try:
        feed = feedparser.parse(io.BytesIO(data))  # a stream: never let feedparser treat data as a path
    except Exception as exc:  # noqa: BLE001 — the library is the boundary; report, don't crash
        yield Rejected(name, "file", f"cannot parse the feed: {exc}")
        return
    error = _first_error(data, feed)
    if error is None:
        if not feed.get("entries") and not str(feed.get("version") or "").startswith("atom"):
            yield Rejected(name, "file", "not an Atom feed")
            return
        yield from entries_to_items(feed, name)
        return
    offset, message = error
    ends = [m.end() for m in _ENTRY_END.finditer(data, 0, offset)]
    kept = 0
    if ends:
        # the well-formed prefix, closed again, parsed strictly: exactly the entries before the error
        prefix = feedparser.parse(io.BytesIO(data[: ends[-1]] + b"</feed>"))
        if not _first_error(data[: ends[-1]], prefix):
            kept = len(prefix.get("entries") or [])
            yield from entries_to_items(prefix, name)
    location, _, reason = message.partition(": ")
    later = len(_ENTRY_END.findall(data, offset))
    skipped = f"; {later} later entries not read" if later else ""
    yield Rejected(name, location, f"{reason} after {kept} good entries{skipped}")


def parse(stream: BinaryIO, name: str) -> Iterator[ParseItem]:
    data = stream.read(MAX_FEED_BYTES + 1)
    if len(data) > MAX_FEED_BYTES:
        yield Rejected(name, "file", f"larger than {MAX_FEED_BYTES:,} bytes: not an arXiv API response; "
                                     "split it or use the OAI-PMH or snapshot formats")
        return
    yield from parse_bytes(data, name)
