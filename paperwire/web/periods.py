"""Days, ISO weeks and months as [first, last] day ranges, with their neighbours and labels."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta


class BadPeriod(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    kind: str  # day | week | month
    key: str  # 2025-03-11 | 2025-W11 | 2025-03
    first: str
    last: str
    label: str
    prev_key: str
    next_key: str


def day_period(text: str) -> Period:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadPeriod(f"not a day (YYYY-MM-DD): {text[:20]!r}") from None
    return Period("day", day.isoformat(), day.isoformat(), day.isoformat(), f"{day:%A, %B} {day.day}, {day.year}",
                  _shift(day, -1).isoformat(), _shift(day, 1).isoformat())


def week_period(text: str) -> Period:
    match = re.fullmatch(r"(\d{4})-W(\d{1,2})", text.strip())
    if not match:
        raise BadPeriod(f"not an ISO week (YYYY-Www): {text[:20]!r}")
    try:
        monday = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except ValueError:
        raise BadPeriod(f"no such week: {text[:20]!r}") from None
    sunday = _shift(monday, 6)
    return Period("week", week_key(monday), monday.isoformat(), sunday.isoformat(),
                  f"Week {monday.isocalendar().week}, {monday:%b} {monday.day} – "
                  f"{sunday:%b} {sunday.day}, {sunday.year}",
                  week_key(_shift(monday, -7)), week_key(_shift(monday, 7)))


def month_period(text: str) -> Period:
    match = re.fullmatch(r"(\d{4})-(\d{1,2})", text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1:
        raise BadPeriod(f"not a month (YYYY-MM): {text[:20]!r}")
    year, month = int(match.group(1)), int(match.group(2))
    first = date(year, month, 1)
    last = date(year, month, calendar.monthrange(year, month)[1])
    prev_month = _shift(first, -1)
    next_month = _shift(last, 1)
    return Period("month", f"{year:04d}-{month:02d}", first.isoformat(), last.isoformat(), f"{first:%B %Y}",
                  month_key(prev_month), month_key(next_month))


def _shift(day: date, days: int) -> date:
    """`day` moved by `days`, clamped to the calendar's ends (year 1 and 9999)."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return day


def week_key(day: date) -> str:
    iso = day.isocalendar()
    return f"{iso.year:04d}-W{iso.week:02d}"


def month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"
