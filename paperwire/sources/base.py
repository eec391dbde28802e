"""What every parser shares: the rejection record and safe line reading."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from paperwire.model import Paper

# A record larger than this is refused rather than held in memory (the arXiv snapshot's
# largest real record is well under 100 kB).
MAX_RECORD_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Rejected:
    """A record a parser could not turn into a Paper: where it was and why."""

    file: str
    location: str  # "line 12", "record 3", "entry smith2020"
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.location}: {self.reason}"


class SourceError(Exception):
    """A whole input could not be read (missing file, unknown format)."""


ParseItem = Paper | Rejected


@dataclass(frozen=True)
class LibraryEntry:
    """One reference from a personal library (BibTeX, CSL-JSON); abstracts not needed.

    Matched to stored papers by arXiv id, DOI or normalised title."""

    key: str
    title: str
    arxiv_id: str | None = None
    doi: str | None = None
    authors: list[str] = field(default_factory=list)
    year: int | None = None


def _has_surrogates(paper: Paper) -> bool:
    # Lone surrogates come from JSON escapes such as "\ud800" or bytes decoded with surrogateescape;
    # SQLite and every UTF-8 writer refuse them.
    texts = [paper.title, paper.abstract, paper.raw_title, paper.raw_abstract, paper.id, paper.doi or "",
             paper.submitted_by or "", *paper.authors, *paper.categories, *paper.links]
    try:
        "".join(texts).encode("utf-8")  # strict UTF-8 fails exactly on lone surrogates; one pass is cheap
    except UnicodeEncodeError:
        return True
    return False


def iter_lines(stream: BinaryIO, name: str, *, first_line: int = 1) -> Iterator[tuple[int, str | Rejected]]:
    """Yield (line number, text) for each line that is not blank, or a Rejected for an oversize or
    non-UTF-8 line.

    Reads in bounded pieces so that a multi-GB file or a 10 MB line never sits whole in memory.
    `first_line` numbers a piece cut from the middle of a file. Runs of blank lines are skipped a buffer
    at a time where the stream can peek, so a file of nothing but newlines costs little.
    """
    number = first_line - 1
    peek = getattr(stream, "peek", None)
    while True:
        chunk = stream.readline(MAX_RECORD_BYTES + 1)
        if not chunk:
            return
        number += 1
        if len(chunk) > MAX_RECORD_BYTES and not chunk.endswith(b"\n"):
            size = len(chunk)
            while chunk and not chunk.endswith(b"\n"):  # skip the rest of the long line
                chunk = stream.readline(MAX_RECORD_BYTES)
                size += len(chunk)
            yield number, Rejected(name, f"line {number}",
                                   f"line of {size:,} bytes exceeds the {MAX_RECORD_BYTES:,}-byte limit")
            continue
        if chunk.isspace():  # stops at the first other byte: cheap for a line with text
            if peek is not None:
                number += _skip_blank_lines(stream, peek)
            continue
        try:
            yield number, chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, Rejected(name, f"line {number}", f"invalid UTF-8 at byte {exc.start}")


_ASCII_WHITESPACE = b" \t\n\r\x0b\x0c"  # what bytes.isspace() counts


def _skip_blank_lines(stream: BinaryIO, peek: Callable[[int], bytes]) -> int:
    """Consume the whole blank lines at the head of `stream`'s buffer, refilling it while they go on;
    return how many there were."""
    skipped = 0
    while True:
        buffered = peek(1)
        blank = len(buffered) - len(buffered.lstrip(_ASCII_WHITESPACE))
        end = buffered.rfind(b"\n", 0, blank) + 1
        if not end:
            return skipped
        skipped += buffered.count(b"\n", 0, end)
        stream.read(end)


def paper_or_rejection(name: str, location: str, *, valid_unicode: bool = False, **fields: object) -> ParseItem:
    """make_paper with the checks every source shares; a bad record becomes a Rejected. `valid_unicode`:
    the caller knows its text holds no lone surrogates (strict UTF-8 read by a decoder that refuses
    surrogate escapes), so that check is skipped."""
    from paperwire.model import make_paper

    title = str(fields.get("title") or "").strip()
    if not title:
        return Rejected(name, location, "record has no title")
    if not str(fields.get("abstract") or "").strip():
        return Rejected(name, location, f"title {title[:60]!r} has no abstract")
    try:
        paper = make_paper(**fields)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        return Rejected(name, location, str(exc))
    except RecursionError:  # text cleaning reads nested braces recursively
        return Rejected(name, location, "text nested too deeply (braces or markup inside each other)")
    if not valid_unicode and _has_surrogates(paper):
        return Rejected(name, location, "text is not valid Unicode (invalid UTF-8 or a lone surrogate escape)")
    if not paper.title.strip() or not paper.abstract.strip():  # only markup, e.g. a title of one backslash
        part = "title" if not paper.title.strip() else "abstract"
        return Rejected(name, location, f"the {part} {title[:60]!r} holds no text once its TeX markup is read")
    return paper
