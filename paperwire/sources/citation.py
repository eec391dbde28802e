"""Fields that bibliographic records (BibTeX, CSL-JSON) share: arXiv ids hidden in free text, DOIs,
years. Reference managers put the arXiv id in many places (eprint, journal, URL, note, number, an
arXiv DOI), so each is searched."""

from __future__ import annotations

import re
from datetime import date

from paperwire.model import parse_arxiv_id

_ID = r"(?:\d{4}\.\d{4,5}|[a-z]+(?:-[a-z]+)*(?:\.[A-Za-z]{2})?/\d{7})(?:v\d+)?"
_IN_TEXT = [
    re.compile(rf"arxiv\.org/(?:abs|pdf|html)/({_ID})", re.IGNORECASE),
    re.compile(rf"10\.48550/arxiv\.({_ID})", re.IGNORECASE),  # arXiv's own DataCite DOIs
    re.compile(rf"\barxiv\s*:?\s*(?:preprint\s+)?(?:arxiv\s*:\s*)?({_ID})", re.IGNORECASE),
    re.compile(rf"^abs/({_ID})$", re.IGNORECASE),  # DBLP: journal = {CoRR}, volume = {abs/1706.03762}
]
_DOI = re.compile(r"\b(10\.\d{4,9}/\S+)", re.IGNORECASE)
_YEAR = re.compile(r"\b(1[5-9]\d\d|2\d\d\d)\b")


def arxiv_id_of(eprint: str | None, prefix: str | None, *texts: str | None) -> str | None:
    """The arXiv id (with version if given) of a reference, else None.

    `eprint` counts as an arXiv id when `prefix` (archivePrefix / eprinttype) says arXiv or is absent;
    `texts` (journal, URL, note, DOI, …) are searched for `arXiv:ID`, arxiv.org URLs and arXiv DOIs."""
    if eprint and (not prefix or prefix.strip().lower() == "arxiv"):
        parsed = parse_arxiv_id(eprint.strip().removeprefix("arXiv:").removeprefix("arxiv:"))
        if parsed:
            return str(parsed)
    for text in texts:
        if not text:
            continue
        for pattern in _IN_TEXT:
            match = pattern.search(text.strip())
            if match and (parsed := parse_arxiv_id(match.group(1))):
                return str(parsed)
    return None


def doi_of(*texts: str | None) -> str | None:
    """The first DOI in `texts` (a bare DOI, doi: prefix or a doi.org URL), lower-cased."""
    for text in texts:
        match = _DOI.search(text or "")
        if match:
            return match.group(1).rstrip(".,;)]}").lower()
    return None


def year_of(text: str | int | None) -> int | None:
    if isinstance(text, int) and not isinstance(text, bool):
        return text if 1500 <= text <= 2999 else None
    match = _YEAR.search(str(text or ""))
    return int(match.group(1)) if match else None


def iso_day(year: int | None, month: int | None = None, day: int | None = None) -> str | None:
    """An ISO day from date parts; missing month or day become 1 (references often give only a year)."""
    if year is None:
        return None
    for candidate in ((year, month or 1, day or 1), (year, month or 1, 1), (year, 1, 1)):
        try:
            return date(*candidate).isoformat()
        except ValueError:
            continue
    return None
