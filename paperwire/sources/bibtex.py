"""BibTeX libraries, read with bibtexparser 2.x.

LaTeX in titles, names and abstracts is decoded ({\\"u} → ü) by bibtexparser's LatexDecodingMiddleware;
identifier fields (url, doi, eprint) are read undecoded, since `%` and `_` are literal there.
The arXiv id comes from eprint (+ archivePrefix / eprinttype), DBLP's `volume = {abs/ID}`, or an
`arXiv:ID` / arxiv.org URL / arXiv DOI in journal, url, note, howpublished or doi.

Two readers: `parse` yields Papers for ingest (an entry without an abstract is rejected),
`read_library_entries` yields LibraryEntry references for matching a personal library.
A personal library is small, so the file is parsed whole (up to MAX_BIBTEX_BYTES).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from paperwire.model import clean_text, collapse_whitespace, parse_arxiv_id
from paperwire.sources.base import LibraryEntry, ParseItem, Rejected, paper_or_rejection
from paperwire.sources.citation import arxiv_id_of, doi_of, iso_day, year_of

if TYPE_CHECKING:
    from pylatexenc.latex2text import LatexNodes2Text

FORMAT = "bibtex"
EXTENSIONS = (".bib", ".bibtex")
MAX_BIBTEX_BYTES = 64 * 1024 * 1024

# Parse problems come back as Rejected records; the libraries' own log lines would only repeat them, in
# the server's log for every pasted or uploaded entry, so they stop at these loggers.
for _logger in ("bibtexparser", "pylatexenc"):
    logging.getLogger(_logger).addHandler(logging.NullHandler())
    logging.getLogger(_logger).propagate = False

_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of an invalid byte
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}


def looks_like(head: str) -> bool:
    return bool(re.search(r"^\s*@\s*(?:article|inproceedings|misc|book|incollection|techreport|phdthesis|"
                          r"mastersthesis|online|unpublished|proceedings|inbook|conference|preprint|string)\s*[{(]",
                          head, re.IGNORECASE | re.MULTILINE))


@dataclass
class _Record:
    """One entry's fields: decoded text fields and undecoded identifier fields."""

    key: str
    line: int
    text: dict[str, Any]
    raw: dict[str, str]
    source: str

    @property
    def location(self) -> str:
        return f"entry {self.key} (line {self.line})"

    def arxiv_id(self) -> str | None:
        raw, text = self.raw, self.text
        volume = raw.get("volume", "")
        return arxiv_id_of(raw.get("eprint"), raw.get("archiveprefix") or raw.get("eprinttype"),
                           volume if volume.lower().startswith("abs/") else None,
                           raw.get("url"), raw.get("doi"), _str(text.get("journal")), _str(text.get("note")),
                           _str(text.get("howpublished")), _str(text.get("journaltitle")))

    def doi(self) -> str | None:
        return doi_of(self.raw.get("doi"))

    def authors(self) -> list[str]:
        """Names split at top-level "and"s of the field as written, then decoded, so a braced name such as
        {Research and Development Team} stays one author."""
        from bibtexparser.middlewares.names import parse_single_name_into_parts, split_multiple_persons_names

        raw = self.raw.get("author")
        if not raw:
            return []
        names = []
        for name in split_multiple_persons_names(raw):
            try:
                parts = parse_single_name_into_parts(name, strict=False)
                name = parts.merge_first_name_first
            except Exception:  # noqa: BLE001 — a name the splitter cannot take is read as written
                pass
            decoded = clean_text(_decoder().latex_to_text(name))
            if decoded.strip():
                names.append(decoded)
        return names

    def published(self) -> str | None:
        date_field = _str(self.text.get("date"))
        if re.match(r"^\d{4}-\d{2}-\d{2}", date_field):
            parts = [int(x) for x in date_field[:10].split("-")]
            return iso_day(*parts)
        year = year_of(_str(self.text.get("year")) or date_field)
        month_text = _str(self.text.get("month")).strip().lower()
        month = _MONTHS.get(month_text[:3]) or (int(month_text) if month_text.isdecimal() else None)
        return iso_day(year, month if month and 1 <= month <= 12 else None)


@functools.cache
def _decoder() -> LatexNodes2Text:
    """bibtexparser's default decoder, plus the TeX logos it would otherwise drop ({\\TeX}book → TeXbook) and
    a plain caret for \\textasciicircum."""
    from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db

    context = get_default_latex_context_db()
    context.add_context_category("paperwire-bibtex", prepend=True, macros=[
        MacroTextSpec("url", simplify_repl="%s"),
        MacroTextSpec("TeX", simplify_repl="TeX"),
        MacroTextSpec("LaTeX", simplify_repl="LaTeX"),
        MacroTextSpec("BibTeX", simplify_repl="BibTeX"),
        MacroTextSpec("textasciicircum", simplify_repl="^"),  # the caret itself, not the modifier letter ˆ
    ])
    return LatexNodes2Text(latex_context=context, keep_braced_groups=False, math_mode="verbatim")


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _records(stream: BinaryIO, name: str) -> Iterator[_Record | Rejected]:
    # imported here: slow to import, and most commands never read BibTeX
    import bibtexparser
    from bibtexparser import middlewares
    from bibtexparser.exceptions import BlockAbortedException
    from bibtexparser.model import DuplicateBlockKeyBlock, Entry, ParsingFailedBlock

    data = stream.read(MAX_BIBTEX_BYTES + 1)
    if len(data) > MAX_BIBTEX_BYTES:
        yield Rejected(name, "file", f"larger than {MAX_BIBTEX_BYTES:,} bytes: not a personal library")
        return
    # surrogateescape: an invalid byte spoils only the entry that holds it
    text = data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    try:
        library = bibtexparser.parse_string(text, append_middleware=[middlewares.NormalizeFieldKeys()])
        raw = {block.key: {f.key: f.value for f in block.fields if isinstance(f.value, str)}
               for block in library.entries}
        library = middlewares.LatexDecodingMiddleware(decoder=_decoder()).transform(library)
    except Exception as exc:  # noqa: BLE001 — the library is the boundary; report, don't crash
        yield Rejected(name, "file", f"cannot parse BibTeX: {exc}")
        return
    for block in library.blocks:
        line = (block.start_line or 0) + 1
        if isinstance(block, DuplicateBlockKeyBlock):
            yield Rejected(name, f"entry {block.key} (line {line})", "duplicate entry key; the first one is kept")
            continue
        if isinstance(block, ParsingFailedBlock):
            fallback = block.ignore_error_block
            if not isinstance(fallback, Entry):
                error = block.error
                reason = error.abort_reason if isinstance(error, BlockAbortedException) else str(error)
                message = " ".join(reason.split()) or "syntax error"
                yield Rejected(name, f"line {line}", f"malformed BibTeX entry: {message[:200]}")
                continue
            block = fallback  # a name or LaTeX middleware failed: use the fields as written
        if not isinstance(block, Entry):
            continue  # @string, @preamble, @comment
        source = block.raw or ""
        if _ESCAPED_BYTE.search(source):
            yield Rejected(name, f"entry {block.key} (line {line})", "invalid UTF-8 in the entry")
            continue
        fields = {f.key: f.value for f in block.fields}
        yield _Record(block.key, line, fields, raw.get(block.key, {}), source)


def _to_item(record: _Record, name: str) -> ParseItem:
    title = _str(record.text.get("title"))
    abstract = _str(record.text.get("abstract"))
    arxiv_id = record.arxiv_id()
    item = paper_or_rejection(
        name, record.location,
        title=title, abstract=abstract, arxiv_id=arxiv_id, source=FORMAT, authors=record.authors(),
        published=record.published(), doi=record.doi(),
    )
    if isinstance(item, Rejected):
        return item
    # display text is decoded; the raw fields keep the LaTeX as written
    return item.with_changes(raw_title=collapse_whitespace(record.raw.get("title", title)),
                             raw_abstract=collapse_whitespace(record.raw.get("abstract", abstract)))


def parse(stream: BinaryIO, name: str) -> Iterator[ParseItem]:
    for record in _records(stream, name):
        yield record if isinstance(record, Rejected) else _to_item(record, name)


def read_library_entries(stream: BinaryIO, name: str) -> Iterator[LibraryEntry | Rejected]:
    """Every reference in a BibTeX library, abstract or not (for matching to stored papers)."""
    for record in _records(stream, name):
        if isinstance(record, Rejected):
            yield record
            continue
        title = clean_text(_str(record.text.get("title")))
        arxiv = parse_arxiv_id(record.arxiv_id() or "")
        doi = record.doi()
        if not title and not arxiv and not doi:
            yield Rejected(name, record.location, "entry has no title, arXiv id or DOI")
            continue
        published = record.published()
        yield LibraryEntry(key=record.key, title=title, arxiv_id=arxiv.id if arxiv else None, doi=doi,
                           authors=record.authors(), year=int(published[:4]) if published else None)
