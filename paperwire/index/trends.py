"""Trends: how many papers match a query in each month or ISO week, and their share of all papers.

The counts are the lexical index's own (LexicalIndex.count_by_days): the query's masks are counted per
day range, so a trend over a million papers costs a few array passes and never reads a paper. A paper
counts when it has every free word of the query (in any field) and passes its phrases, field
prefixes, exclusions and date: filters, with the search's syntax. A paper's day is its first version's
(published) day, as for date: filters.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from paperwire.index.lexical import LexicalIndex
from paperwire.index.query import QueryError, day_bound, parse_query

BY_CHOICES = ("auto", "month", "week")
MAX_QUERIES = 3
MAX_PERIODS = {"month": 1200, "week": 520}
# With by=auto a range up to this long is counted by weeks (about six months), longer ones by months.
WEEKS_UP_TO_DAYS = 183
# Without a start date the range begins where the corpus does, its earliest 0.1% of papers aside: a
# few stray decades-old papers would otherwise stretch the axis over years of zeros.
DEFAULT_TRIM = 0.001


@dataclass(frozen=True)
class TrendPeriod:
    key: str  # 2025-03 or 2025-W11
    first: str  # its first day within the range
    last: str  # its last day within the range
    papers: int  # all indexed papers of those days


@dataclass
class TrendSeries:
    query: str
    counts: list[int]
    shares: list[float]  # counts / all papers of the period (0 where there are none)

    @property
    def papers(self) -> int:
        return sum(self.counts)


@dataclass
class Trends:
    by: str  # month | week
    first: str
    last: str
    periods: list[TrendPeriod] = field(default_factory=list)
    series: list[TrendSeries] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, "from": self.first, "until": self.last,
                "periods": [{"key": p.key, "first": p.first, "last": p.last, "papers": p.papers}
                            for p in self.periods],
                "series": [{"q": s.query, "papers": s.papers, "counts": s.counts, "shares": s.shares}
                           for s in self.series]}


def _day(number: int) -> date:
    return date(number // 10000, number // 100 % 100, number % 100)


def _number(day: date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def _periods(first: date, last: date, by: str) -> list[tuple[str, date, date]]:
    """(key, first day, last day) of each month or ISO week that overlaps [first, last], clipped to it."""
    out = []
    start = first
    while start <= last:
        if by == "month":
            end = date(start.year, start.month, calendar.monthrange(start.year, start.month)[1])
            key = f"{start.year:04d}-{start.month:02d}"
        else:
            end = start + timedelta(days=6 - start.weekday())
            iso = start.isocalendar()
            key = f"{iso.year:04d}-W{iso.week:02d}"
        end = min(end, last)
        out.append((key, start, end))
        if end >= date.max - timedelta(days=1):
            break
        start = end + timedelta(days=1)
    return out


def _period_count(first: date, last: date, by: str) -> int:
    if by == "month":
        return (last.year - first.year) * 12 + last.month - first.month + 1
    return ((last - timedelta(days=last.weekday())) - (first - timedelta(days=first.weekday()))).days // 7 + 1


def _range(lexical: LexicalIndex, date_from: str | None, date_to: str | None) -> tuple[date, date]:
    """The days to count over: as given, else where the corpus's papers begin and end."""
    start = day_bound(date_from, end=False, where="the from date") if date_from else None
    stop = day_bound(date_to, end=True, where="the until date") if date_to else None
    if start and stop and start > stop:
        raise QueryError(f"the from date {start} is after the until date {stop}")
    span = lexical.day_span(DEFAULT_TRIM) if start is None or stop is None else None
    today = datetime.now(UTC).date()
    corpus_first, corpus_last = (_day(span[0]), _day(span[1])) if span else (today, today)
    if start:
        first = date.fromisoformat(start)
    else:  # the corpus's start, or the until date if that comes first
        first = min(corpus_first, date.fromisoformat(stop)) if stop else corpus_first
    last = date.fromisoformat(stop) if stop else max(corpus_last, first)
    return first, last


def compute_trends(lexical: LexicalIndex, queries: Sequence[str], *, by: str = "auto", date_from: str | None = None,
                   date_to: str | None = None) -> Trends:
    """Matching papers per period for up to MAX_QUERIES queries over one shared range. QueryError (one
    line, naming the query when there are several) for a bad query, by, date or range."""
    queries = list(queries)
    if not queries:
        raise QueryError("give a query to count")
    if len(queries) > MAX_QUERIES:
        raise QueryError(f"{len(queries)} queries; at most {MAX_QUERIES} side by side")
    if by not in BY_CHOICES:
        raise QueryError(f"unknown period {str(by)[:20]!r}; use month or week")
    parsed = []
    for number, text in enumerate(queries, 1):
        try:
            parsed.append(parse_query(text))
        except QueryError as exc:
            raise QueryError(f"query {number}: {exc}" if len(queries) > 1 else str(exc)) from None
    first, last = _range(lexical, date_from, date_to)
    if by == "auto":
        by = "week" if (last - first).days <= WEEKS_UP_TO_DAYS else "month"
    count = _period_count(first, last, by)
    if count > MAX_PERIODS[by]:
        raise QueryError(f"{first} to {last} is {count:,} {by}s; at most {MAX_PERIODS[by]:,}: "
                         f"{'count by month or ' if by == 'week' else ''}give a shorter range")
    spans = _periods(first, last, by)
    edges = [_number(start) for _, start, _ in spans] + [_number(spans[-1][2]) + 1]
    totals = lexical.count_by_days(None, edges).tolist()
    series = []
    for number, (text, query) in enumerate(zip(queries, parsed, strict=True), 1):
        try:
            counts = lexical.count_by_days(query, edges).tolist()
        except QueryError as exc:
            raise QueryError(f"query {number}: {exc}" if len(queries) > 1 else str(exc)) from None
        shares = [round(c / t, 6) if t else 0.0 for c, t in zip(counts, totals, strict=True)]
        series.append(TrendSeries(text, counts, shares))
    periods = [TrendPeriod(key, start.isoformat(), end.isoformat(), total)
               for (key, start, end), total in zip(spans, totals, strict=True)]
    return Trends(by, first.isoformat(), last.isoformat(), periods, series)
