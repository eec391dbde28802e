"""Import a personal library (BibTeX, CSL-JSON, or a list of arXiv ids) into a user's saved papers.

Each reference is matched to a stored paper by arXiv id, then DOI, then normalised title; what
does not match is listed, never guessed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from paperwire.model import normalise_title, parse_arxiv_id
from paperwire.sources import bibtex, csl_json
from paperwire.sources.base import LibraryEntry, Rejected
from paperwire.store.library import Library

FORMATS = ("auto", "bibtex", "csl-json", "ids")


@dataclass
class ImportReport:
    entries: int = 0
    matched: int = 0
    added: int = 0  # new to the tag
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    matched_by: dict[str, int] = field(default_factory=lambda: {"arxiv_id": 0, "doi": 0, "title": 0})

    def to_dict(self) -> dict[str, Any]:
        return {"entries": self.entries, "matched": self.matched, "added": self.added,
                "matched_by": self.matched_by, "unmatched": self.unmatched, "rejected": self.rejected}


def read_id_list(stream: BinaryIO, name: str) -> Iterator[LibraryEntry | Rejected]:
    """One arXiv id or arXiv URL per line; blank lines and # comments skipped."""
    for number, raw in enumerate(stream, 1):
        line = raw.decode("utf-8", errors="replace").split("#", 1)[0].strip()
        if not line:
            continue
        parsed = parse_arxiv_id(line)
        if parsed is None:
            yield Rejected(name, f"line {number}", f"not an arXiv id: {line[:80]!r}")
        else:
            yield LibraryEntry(key=f"line {number}", title="", arxiv_id=parsed.id)


def detect(path: Path, head: bytes) -> str:
    text = head.decode("utf-8", errors="replace")
    suffix = path.suffix.lower()
    if suffix in (".bib", ".bibtex") or bibtex.looks_like(text):
        return "bibtex"
    if suffix == ".json" or csl_json.looks_like(text):
        return "csl-json"
    return "ids"


def read_entries(path: Path, fmt: str = "auto") -> Iterator[LibraryEntry | Rejected]:
    with open(path, "rb") as fh:
        if fmt == "auto":
            fmt = detect(path, fh.read(4096))
            fh.seek(0)
        reader = {"bibtex": bibtex.read_library_entries, "csl-json": csl_json.read_library_entries,
                  "ids": read_id_list}[fmt]
        yield from reader(fh, str(path))


def match_entries(store: Any, entries: list[LibraryEntry]) -> list[tuple[LibraryEntry, str | None, str]]:
    """(entry, stored paper id or None, how it matched)."""
    by_arxiv = store.get_papers([e.arxiv_id for e in entries if e.arxiv_id])
    dois = sorted({e.doi.lower() for e in entries if e.doi})
    titles = sorted({normalise_title(e.title) for e in entries if e.title})
    by_doi = store.ids_by_doi(dois)
    by_title = store.ids_by_title(t for t in titles if t)
    out: list[tuple[LibraryEntry, str | None, str]] = []
    for entry in entries:
        if entry.arxiv_id and entry.arxiv_id in by_arxiv:
            out.append((entry, by_arxiv[entry.arxiv_id].id, "arxiv_id"))
        elif entry.doi and entry.doi.lower() in by_doi:
            out.append((entry, by_doi[entry.doi.lower()], "doi"))
        elif entry.title and normalise_title(entry.title) in by_title:
            out.append((entry, by_title[normalise_title(entry.title)], "title"))
        else:
            out.append((entry, None, ""))
    return out


def import_library(store: Any, user_id: int, path: Path, *, tag: str | None = None,
                   fmt: str = "auto") -> ImportReport:
    """Save every matched reference for the user (under `tag`), in one transaction."""
    report = ImportReport()
    entries: list[LibraryEntry] = []
    for item in read_entries(path, fmt):
        if isinstance(item, Rejected):
            report.rejected.append(str(item))
        else:
            entries.append(item)
    report.entries = len(entries)
    matched: list[str] = []
    for entry, paper_id, how in match_entries(store, entries):
        if paper_id is None:
            report.unmatched.append({"key": entry.key, "title": entry.title, "arxiv_id": entry.arxiv_id,
                                     "doi": entry.doi})
            continue
        report.matched += 1
        report.matched_by[how] += 1
        matched.append(paper_id)
    report.added = Library(store).save(user_id, list(dict.fromkeys(matched)), tag)
    return report
