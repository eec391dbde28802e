"""Trending and top: votes with a time decay, and plain vote counts over a window.

    score = (votes + 1) / (age_hours + 2) ** GRAVITY

`votes` is imported upvotes plus local votes; `age_hours` counts from the start (00:00 UTC) of the
day the paper was listed. The +1 lets a paper with no votes yet still be ordered by freshness; the
+2 keeps a brand-new paper from dividing by almost nothing. With GRAVITY = 1.5 a paper listed two
days ago needs about 3x the votes of one listed today to rank beside it.

Windows end today, not on the newest listing day: one new submission must not push every older
paper out. A window with too few papers is topped up from the same-length window that ends on the
newest listing day before it (a quiet month, or a collection whose papers are all from last year,
still shows papers); ages are always counted from now, so the new and the old rank on one scale.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

import humanize

from paperwire.model import Paper

GRAVITY = 1.5
FORMULA = "score = (votes + 1) / (age_hours + 2)^1.5"
TRENDING_WINDOW_DAYS = 30
TOP_PERIODS = {"week": 7, "month": 30, "year": 365}
MAX_FALLBACK_WINDOWS = 12  # how far back a sparse window is topped up, in windows


class ListingDays(Protocol):
    """What the windows read from the store (paperwire.store.accounts.Listings)."""

    def best_per_day(self, first: str, last: str, per_day: int) -> list[Paper]: ...

    def count_between(self, first: str, last: str, submitter: str | None = None) -> int: ...

    def newest_day(self, on_or_before: str | None = None) -> str | None: ...


@dataclass(frozen=True)
class Ranked:
    paper: Paper
    votes: int
    score: float
    hours: float = math.inf  # age when ranked


@dataclass(frozen=True)
class ScoreNote:
    """A trending score as people read it: a short label and the full working for a tooltip."""

    label: str
    title: str


def age_hours(listed_on: str | None, now: datetime) -> float:
    """Hours since the start of the listing day (never negative: a future day counts as now). A paper
    listed on no known day is treated as old, not as new: its score is 0."""
    if not listed_on:
        return math.inf
    start = datetime.combine(date.fromisoformat(listed_on), datetime.min.time(), tzinfo=UTC)
    return max(0.0, (now - start).total_seconds() / 3600.0)


def trending_score(votes: int, hours: float, gravity: float = GRAVITY) -> float:
    return (max(0, votes) + 1) / (max(0.0, hours) + 2) ** gravity


def rank_trending(papers: Iterable[Paper], local_votes: Mapping[str, int], *, now: datetime | None = None,
                  gravity: float = GRAVITY) -> list[Ranked]:
    """Papers best first by the decayed score; ties broken by votes, then newer listing, then id."""
    now = now or datetime.now(UTC)
    ranked = []
    for paper in papers:
        votes = paper.upvotes + local_votes.get(paper.id, 0)
        hours = age_hours(paper.listed_on, now)
        ranked.append(Ranked(paper, votes, trending_score(votes, hours, gravity), hours))
    ranked.sort(key=lambda r: (-r.score, -r.votes, _neg_day(r.paper.listed_on), r.paper.id))
    return ranked


def rank_top(papers: Iterable[Paper], local_votes: Mapping[str, int]) -> list[Ranked]:
    """Papers by total votes, most first; ties go to the newer listing."""
    ranked = [Ranked(p, votes, float(votes)) for p in papers for votes in [p.upvotes + local_votes.get(p.id, 0)]]
    ranked.sort(key=lambda r: (-r.votes, _neg_day(r.paper.listed_on), r.paper.id))
    return ranked


def window(end_day: str, days: int) -> tuple[str, str]:
    """The `days`-day window of listing days that ends on `end_day` (inclusive)."""
    end = date.fromisoformat(end_day)
    return (end - timedelta(days=days - 1)).isoformat(), end.isoformat()


def earlier_window(listings: ListingDays, first: str, days: int) -> tuple[str, str] | None:
    """The `days`-day window ending on the newest listing day before `first`, or None if there is none."""
    before = listings.newest_day((date.fromisoformat(first) - timedelta(days=1)).isoformat())
    return window(before, days) if before else None


def trending_candidates(listings: ListingDays, today: str, need: int) -> list[Paper]:
    """The papers trending ranks: the `need` most-voted of each day of the TRENDING_WINDOW_DAYS up to
    today, topped up from earlier windows while fewer than `need` are found. Within one day every
    paper has the same age, so the best `need` of the whole can only come from each day's best `need`."""
    papers: list[Paper] = []
    span: tuple[str, str] | None = window(today, TRENDING_WINDOW_DAYS)
    for _ in range(MAX_FALLBACK_WINDOWS):
        if span is None:
            break
        papers += listings.best_per_day(span[0], span[1], per_day=need)
        if len(papers) >= need:
            break
        span = earlier_window(listings, span[0], TRENDING_WINDOW_DAYS)
    return list({p.id: p for p in papers}.values())


def score_note(ranked: Ranked, best: float) -> ScoreNote:
    """"listed 3 hours ago · score 100": the score relative to the best one (100), with the formula
    and this paper's numbers in the tooltip (raw scores of old papers are unreadable, like 5.9e-07)."""
    relative = 100.0 * ranked.score / best if best > 0 else 0.0
    shown = f"{relative:.0f}" if relative >= 1 or relative == 0 else "<1"
    if math.isinf(ranked.hours):
        age, hours = "no listing day", "∞"
    else:
        age, hours = f"listed {humanize.naturaltime(timedelta(hours=ranked.hours))}", f"{ranked.hours:.0f}"
    working = (f"{FORMULA} = ({ranked.votes} + 1) / ({hours} + 2)^{GRAVITY:g} = {ranked.score:.3g}; "
               f"shown relative to the top paper's score (100)")
    return ScoreNote(f"{age} · score {shown}", working)


def _neg_day(day: str | None) -> int:
    return -date.fromisoformat(day).toordinal() if day else 1  # no known day: after every dated paper
