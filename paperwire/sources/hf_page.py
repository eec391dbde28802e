"""Text captures of Hugging Face Papers pages (the bundled sample corpus).

A capture is a few header lines (`new`, `Get trending papers…`, `Subscribe`, `byAK and the
research community`, a day such as `Mar 11`) then entries: a title line and an abstract line,
usually separated by blank lines. Some captures miss header lines or glue `Subscribe` to the first
title. Days carry no year; the caller supplies it. The text lost most of its LaTeX backslashes and dollar
signs (capture_latex.py puts back what it can).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import BinaryIO

from paperwire.sources.base import ParseItem, Rejected, iter_lines, paper_or_rejection
from paperwire.sources.capture_latex import repair

FORMAT = "hf-page"
EXTENSIONS = (".txt",)
DEFAULT_YEAR = 2025  # the year of the bundled captures, whose days carry none

_HEADER = re.compile(
    r"^(new|subscribe|byak and the research community|get trending papers in your email inbox.*)$",
    re.IGNORECASE,
)
_DAY = re.compile(r"^(?P<mon>[A-Z][a-z]{2})[a-z]*\.? (?P<day>\d{1,2})(?:, (?P<year>\d{4}))?$")
_MONTHS = {m: i for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1)}
# An abstract is a paragraph; a title is a line. Below this an "abstract" is more likely a title.
_MIN_ABSTRACT_CHARS = 120


def _page_day(line: str, year: int) -> date | None:
    match = _DAY.match(line)
    if not match or match.group("mon") not in _MONTHS:
        return None
    try:
        return date(int(match.group("year") or year), _MONTHS[match.group("mon")], int(match.group("day")))
    except ValueError:
        return None


def looks_like(head: str) -> bool:
    return any(_HEADER.match(line.strip()) for line in head.splitlines()[:12])


def parse(stream: BinaryIO, name: str, *, year: int = DEFAULT_YEAR) -> Iterator[ParseItem]:
    day: date | None = None
    in_header = True
    pending: tuple[int, str] | None = None  # a title waiting for its abstract
    for number, line in iter_lines(stream, name):
        if isinstance(line, Rejected):
            if pending:
                yield Rejected(name, f"line {pending[0]}", "title has no readable abstract")
                pending = None
            yield line
            continue
        text = line.strip()
        if not text:
            continue
        if in_header:
            if _HEADER.match(text):
                continue
            if text.lower().startswith("subscribe") and len(text) > len("subscribe"):
                text = text[len("subscribe"):].strip()  # `Subscribe` glued to the first title
            elif (found := _page_day(text, year)) is not None:
                day = found
                continue
            in_header = False
        if pending is None:
            pending = (number, text)
            continue
        title_line, title = pending
        if len(text) < _MIN_ABSTRACT_CHARS and len(text) <= len(title) * 1.5:
            # Two title-like lines in a row: the first has no abstract.
            yield Rejected(name, f"line {title_line}", "title has no abstract")
            pending = (number, text)
            continue
        pending = None
        # the captures lost most backslashes and dollar signs of the LaTeX: put back what can be told
        yield paper_or_rejection(name, f"line {title_line}", title=repair(title), abstract=repair(text),
                                 source=FORMAT, listed_on=day)
    if pending:
        yield Rejected(name, f"line {pending[0]}", "title has no abstract (file ends)")
