"""The arXiv bulk metadata snapshot: one JSON object per line, several GB for all of arXiv.

Fields used: id, title, abstract, authors (a string) or authors_parsed ([last, first, suffix]),
categories (space separated), versions ([{"version": "v1", "created": RFC 2822 date}]),
update_date, doi. Read line by line: memory stays flat whatever the file size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import date
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, BinaryIO

import orjson

from paperwire.sources.base import ParseItem, Rejected, iter_lines, paper_or_rejection
from paperwire.sources.json_stream import NESTED_TOO_DEEPLY

FORMAT = "arxiv-snapshot"
EXTENSIONS = (".jsonl", ".json", ".jsonl.gz")
_TYPE_KEY = re.compile(r'"type"\s*:')


def looks_like(head: str) -> bool:
    first = head.lstrip().split("\n", 1)[0]
    # CSL-JSON items also have id and abstract, but always a "type"; snapshot records never do
    return (first.startswith("{") and '"abstract"' in first and '"id"' in first and '"paper"' not in first
            and not _TYPE_KEY.search(first))


def _authors(record: dict[str, Any]) -> list[str]:
    parsed = record.get("authors_parsed")
    if isinstance(parsed, list) and parsed:
        names = []
        for parts in parsed:
            if type(parts) is list and len(parts) == 3:
                last, first, suffix = parts
                if type(last) is str and type(first) is str and type(suffix) is str:
                    # the usual [last, first, suffix] of strings, without the general path's conversions
                    last, first, suffix = last.strip(), first.strip(), suffix.strip()
                    names.append(f"{first} {last}" if first and last and not suffix
                                 else " ".join(x for x in (first, last, suffix) if x))
                    continue
            if isinstance(parts, list) and parts:
                last = str(parts[0]).strip()
                first = str(parts[1]).strip() if len(parts) > 1 else ""
                suffix = str(parts[2]).strip() if len(parts) > 2 else ""
                names.append(" ".join(x for x in (first, last, suffix) if x))
        return names
    text = record.get("authors")
    if isinstance(text, str):
        text = text.replace(" and ", ", ")
        return [a.strip() for a in text.split(",") if a.strip()]
    return []


_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}


# The snapshot's own form, "Mon, 2 Apr 2007 19:18:42 GMT", read directly: the email parser is slow.
_SNAPSHOT_DATE = re.compile(
    r"\S+, (\d{1,2}) (" + "|".join(_MONTHS) + r") ([1-9]\d{3}) ([01]\d|2[0-3]):[0-5]\d:[0-5]\d GMT", re.ASCII)


def _created_day(text: str) -> str:
    """ISO day of an RFC 2822 date such as "Mon, 2 Apr 2007 19:18:42 GMT" (ValueError if not one)."""
    match = _SNAPSHOT_DATE.fullmatch(text.strip())
    if match:
        return _iso_date(*match.group(3, 2, 1))
    return parsedate_to_datetime(text).date().isoformat()


@lru_cache(maxsize=8192)  # a snapshot's versions fall on a few thousand days
def _iso_date(year: str, month: str, day: str) -> str:
    return date(int(year), _MONTHS[month], int(day)).isoformat()


def _version_dates(record: dict[str, Any]) -> tuple[str | None, str | None, int | None]:
    """(first-version day, last-version day, last version number) from `versions`."""
    versions = record.get("versions")
    if not isinstance(versions, list) or not versions:
        return None, None, None
    entries = [entry for entry in versions if isinstance(entry, dict)]
    number = None
    for entry in entries:
        label = str(entry.get("version", ""))
        if label[1:].isdecimal():
            number = max(number or 0, int(label[1:]))
    first = _first_day(entries)
    # only the first and the last dated versions matter: the days between are not read
    last = _first_day(reversed(entries)) if len(entries) > 1 else first
    return first, last, number


def _first_day(entries: Iterable[dict[str, Any]]) -> str | None:
    for entry in entries:
        try:
            return _created_day(str(entry.get("created", "")))
        except (TypeError, ValueError, IndexError):
            continue
    return None


def record_to_item(record: Any, name: str, location: str, *, valid_unicode: bool = False) -> ParseItem:
    if not isinstance(record, dict):
        return Rejected(name, location, "record is not a JSON object")
    raw_id = record.get("id")
    if not isinstance(raw_id, str) or not raw_id.strip():
        return Rejected(name, location, "record has no id")
    published, last, number = _version_dates(record)
    arxiv_id = raw_id.strip() + (f"v{number}" if number and "v" not in raw_id[-3:] else "")
    categories = record.get("categories")
    return paper_or_rejection(
        name, location, valid_unicode=valid_unicode,
        title=str(record.get("title") or ""),
        abstract=str(record.get("abstract") or ""),
        arxiv_id=arxiv_id,
        source=FORMAT,
        authors=_authors(record),
        categories=categories.split() if isinstance(categories, str) else [],
        published=published,
        updated=(str(record.get("update_date") or "")[:10] or last),
        doi=record.get("doi") if isinstance(record.get("doi"), str) else None,
    )


def parse(stream: BinaryIO, name: str) -> Iterator[ParseItem]:
    return parse_lines(iter_lines(stream, name), name)


def parse_lines(lines: Iterable[tuple[int, str | Rejected]], name: str) -> Iterator[ParseItem]:
    """Records from numbered lines: each line stands alone, so a file can be parsed in pieces."""
    for number, line in lines:
        if isinstance(line, Rejected):
            yield line
            continue
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
            # the line is strict UTF-8 and orjson refuses lone surrogate escapes: the text is valid Unicode
            valid_unicode = True
        except orjson.JSONDecodeError as exc:
            if str(exc).startswith("depth limit exceeded"):  # over 1,024 levels; the standard parser would recurse
                yield Rejected(name, f"line {number}", NESTED_TOO_DEEPLY)
                continue
            # orjson is several times faster but refuses what the standard parser accepts (lone surrogate
            # escapes, NaN, huge integers); the standard parser decides, and words the error.
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Rejected(name, f"line {number}", f"invalid JSON ({exc.msg} at column {exc.colno})")
                continue
            except RecursionError:
                yield Rejected(name, f"line {number}", NESTED_TOO_DEEPLY)
                continue
            valid_unicode = False
        try:
            item = record_to_item(record, name, f"line {number}", valid_unicode=valid_unicode)
        except RecursionError:
            # orjson reads up to 1,024 levels, deeper than str() of such a value can recurse
            item = Rejected(name, f"line {number}", NESTED_TOO_DEEPLY)
        yield item
