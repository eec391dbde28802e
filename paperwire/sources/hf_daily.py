"""Hugging Face daily-papers API JSON (GET /api/daily_papers), in the shape huggingface_hub's
PaperInfo reads: an array of {paper: {id, authors: [{name}], publishedAt, title, summary, upvotes,
discussionId, githubRepo, projectPage, …}, title, submittedOnDailyAt, submittedBy: {name, fullname},
numComments, publishedAt, thumbnail, …}. A single paper object (GET /api/papers/{id}: id, title,
summary, authors, publishedAt, upvotes, mediaUrls, …) and JSON lines of either shape are read too.

The paper's publishedAt is its arXiv date; the day of submittedOnDailyAt is the day it was listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from paperwire.sources.base import ParseItem, Rejected, paper_or_rejection
from paperwire.sources.json_stream import iter_json_records

FORMAT = "hf-daily"
EXTENSIONS = (".json",)

# camelCase keys of the Hub API; CSL-JSON and the arXiv snapshot use none of them
_MARKERS = re.compile(r'"(?:paper|submittedOnDailyAt|submittedBy|submittedOnDailyBy|discussionId|upvotes|'
                      r'publishedAt|numComments|statusLastChangedAt)"\s*:')


def looks_like(head: str) -> bool:
    return head.lstrip()[:1] in ("[", "{") and bool(_MARKERS.search(head))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _authors(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    names = []
    for author in value:
        name = author.get("name") if isinstance(author, dict) else author
        if isinstance(name, str) and name.strip():
            names.append(name)
    return names


# mediaUrls holds videos too (.mp4); a card shows a still image
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif")
MAX_URL_CHARS = 2048


def _web_url(value: Any) -> str | None:
    """An absolute http(s) URL with a host, as given, else None (a page only ever gets web images)."""
    if not isinstance(value, str) or len(value) > MAX_URL_CHARS or not value.isprintable() or " " in value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def _thumbnail(*records: dict[str, Any]) -> str | None:
    """The first image among the records' mediaUrls, else the entry's thumbnail."""
    for record in records:
        media = record.get("mediaUrls")
        for url in media if isinstance(media, list) else ():
            url = _web_url(url)
            if url and urlsplit(url).path.lower().endswith(_IMAGE_EXTENSIONS):
                return url
    return next((url for record in records if (url := _web_url(record.get("thumbnail")))), None)


def _day(value: Any) -> str | None:
    """The UTC day of an API timestamp such as 2025-03-11T00:22:45.236Z."""
    text = _text(value).strip()
    return text[:10] if text else None


def record_to_item(record: Any, name: str, location: str) -> ParseItem:
    """One daily-paper entry (or a bare paper object) as a Paper, or a Rejected saying why not."""
    if not isinstance(record, dict):
        return Rejected(name, location, "record is not a JSON object")
    nested = "paper" in record
    paper = _dict(record.get("paper"))
    if nested and not paper:
        return Rejected(name, location, "record's 'paper' is not an object")
    arxiv_id = _text(paper.get("id")) or _text(record.get("id"))
    if not arxiv_id.strip():
        return Rejected(name, location, "record has no paper id")
    submitters = (_dict(record.get("submittedBy")), _dict(paper.get("submittedOnDailyBy")),
                  _dict(record.get("submittedOnDailyBy")))
    # the Hub calls the handle `name` on the entry and `user` on the paper
    handles = [_text(s.get("name")) or _text(s.get("user")) for s in submitters]
    links = [_text(source.get(key)) for source in (paper, record) for key in ("githubRepo", "projectPage")]
    if nested:
        # PaperInfo: the entry's own publishedAt is when it was listed; the paper's is the arXiv date
        published = paper.get("publishedAt")
        listed = record.get("submittedOnDailyAt") or paper.get("submittedOnDailyAt") or record.get("publishedAt")
    else:
        published = record.get("publishedAt")
        listed = record.get("submittedOnDailyAt")
    location = f"{location} ({arxiv_id.strip()[:40]})"
    return paper_or_rejection(
        name, location,
        title=_text(paper.get("title")) or _text(record.get("title")),
        abstract=_text(paper.get("summary")) or _text(record.get("summary")),
        arxiv_id=arxiv_id,
        source=FORMAT,
        authors=_authors(paper.get("authors") or record.get("authors")),
        published=_day(published),
        listed_on=_day(listed),
        upvotes=_count(paper.get("upvotes")) or _count(record.get("upvotes")),
        submitted_by=next((h for h in handles if h.strip()), None),
        num_comments=_count(record.get("numComments")),
        extra_links=[link for link in links if link.startswith(("http://", "https://"))],
        thumbnail=_thumbnail(paper, record),
    )


def parse(stream: BinaryIO, name: str) -> Iterator[ParseItem]:
    for item in iter_json_records(stream, name):
        if isinstance(item, Rejected):
            yield item
        else:
            number, record = item
            yield record_to_item(record, name, f"record {number}")
