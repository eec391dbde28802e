"""Trending and top: votes with a time decay, and plain vote counts over a window.

    score = (votes + 1) / (age_hours + 2) ** GRAVITY

`votes` is imported upvotes plus local votes; `age_hours` counts from the start (00:00 UTC) of the
day the paper was listed. The +1 lets a paper with no votes yet still be ordered by freshness; the
+2 keeps a brand-new paper from dividing by almost nothing. With GRAVITY = 1.5 a paper listed two
days ago needs about 3x the votes of one listed today to rank beside it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from paperwire.model import Paper

GRAVITY = 1.5
FORMULA = "score = (votes + 1) / (age_hours + 2)^1.5"
TRENDING_WINDOW_DAYS = 30
TOP_PERIODS = {"week": 7, "month": 30, "year": 365}


@dataclass(frozen=True)
class Ranked:
    paper: Paper
    votes: int
    score: float


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
        ranked.append(Ranked(paper, votes, trending_score(votes, age_hours(paper.listed_on, now), gravity)))
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


def _neg_day(day: str | None) -> int:
    return -date.fromisoformat(day).toordinal() if day else 1  # no known day: after every dated paper
