"""What pages and APIs show of a paper: vote totals, the "new" badge, links, Markdown, dates."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlparse

from markupsafe import Markup, escape

from paperwire.model import Paper

NEW_HOURS = 24


@dataclass
class Card:
    """A paper as the feed shows it."""

    paper: Paper
    votes: int
    voted: bool = False
    is_new: bool = False
    snippet: Markup | None = None
    rank: int | None = None
    score: float | None = None
    links: list[tuple[str, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.paper.id


def is_new(listed_on: str | None, now: datetime | None = None) -> bool:
    """Whether the listing day overlaps the last 24 hours (listed today or yesterday, UTC)."""
    if not listed_on:
        return False
    now = now or datetime.now(UTC)
    start = datetime.combine(date.fromisoformat(listed_on), datetime.min.time(), tzinfo=UTC)
    return start <= now and now - (start + timedelta(days=1)) < timedelta(hours=NEW_HOURS)


def paper_links(paper: Paper) -> list[tuple[str, str]]:
    """(label, url) for the paper's arXiv pages and the code/project links in its abstract."""
    links: list[tuple[str, str]] = []
    if paper.arxiv_id:
        links.append(("arXiv", f"https://arxiv.org/abs/{paper.arxiv_id}"))
        links.append(("PDF", f"https://arxiv.org/pdf/{paper.arxiv_id}"))
    if paper.doi:
        links.append(("DOI", f"https://doi.org/{paper.doi}"))
    for url in paper.links:
        host = urlparse(url).netloc.lower().removeprefix("www.")
        if urlparse(url).scheme not in ("http", "https") or not host:
            continue  # only web links become hrefs
        label = "Code" if host in ("github.com", "gitlab.com", "bitbucket.org", "huggingface.co") else host
        links.append((label, url))
    return links


def make_cards(papers: list[Paper], local_votes: dict[str, int], voted: set[str],
               now: datetime | None = None) -> list[Card]:
    now = now or datetime.now(UTC)
    return [Card(p, p.upvotes + local_votes.get(p.id, 0), p.id in voted, is_new(p.listed_on, now),
                 links=paper_links(p)) for p in papers]


def highlight(text: str, query: str) -> Markup:
    """Escaped text with the query's words wrapped in <mark>."""
    words = sorted({w for w in re.findall(r"[\w-]{3,}", _strip_syntax(query))}, key=len, reverse=True)
    if not words:
        return escape(text)
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in words[:20]) + r")", re.IGNORECASE)
    out, last = [], 0
    for match in pattern.finditer(text):
        out.append(escape(text[last:match.start()]))
        out.append(Markup("<mark>") + escape(match.group(0)) + Markup("</mark>"))
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def _strip_syntax(query: str) -> str:
    query = re.sub(r"(?:^|\s)-\S+", " ", query)  # exclusions are not highlighted
    query = re.sub(r"\b(?:ti|au|abs|cat|id|date):", " ", query)
    return query


def iso_datetime(day: str | None) -> str | None:
    """A listing day as the timestamp the Hugging Face API uses."""
    return f"{day}T00:00:00.000Z" if day else None


def paper_markdown(paper: Paper, votes: int, url: str) -> str:
    """The Markdown view of a paper page (what `HfApi.read_paper` returns)."""
    lines = [f"# {paper.title}", ""]
    if paper.authors:
        lines += [f"Authors: {', '.join(paper.authors)}", ""]
    meta = [f"Listed: {paper.listed_on}" if paper.listed_on else "", f"Upvotes: {votes}"]
    if paper.published:
        meta.insert(0, f"Published: {paper.published}")
    if paper.arxiv_id:
        meta.insert(0, f"arXiv: {paper.arxiv_id}")
    if paper.categories:
        meta.append("Categories: " + ", ".join(paper.categories))
    lines += [" · ".join(m for m in meta if m), "", "## Abstract", "", paper.abstract or "(no abstract)", ""]
    links = paper_links(paper)
    if links:
        lines += ["## Links", ""] + [f"- [{label}]({href})" for label, href in links] + [""]
    lines += [f"Page: {url}", ""]
    return "\n".join(lines)
