"""The trending formula shown on /trending, and top-by-votes ordering."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from paperwire.model import make_paper
from paperwire.rank.trending import FORMULA, GRAVITY, age_hours, rank_top, rank_trending, trending_score, window

NOW = datetime(2025, 3, 12, 12, 0, tzinfo=UTC)


def _paper(title: str, day: str | None, upvotes: int = 0):
    return make_paper(title=title, source="test", listed_on=day, upvotes=upvotes)


def test_formula_matches_the_text_shown_to_users() -> None:
    assert FORMULA == f"score = (votes + 1) / (age_hours + 2)^{GRAVITY}"
    assert trending_score(9, 18.0) == pytest.approx(10 / 20 ** 1.5)
    assert trending_score(0, 0.0) == pytest.approx(1 / 2 ** 1.5)
    assert age_hours("2025-03-12", NOW) == 12.0
    assert age_hours("2025-03-13", NOW) == 0.0  # a future day is not negative age


def test_a_paper_listed_on_no_known_day_ranks_as_old_not_new() -> None:
    unlisted = _paper("Undated capture", None, upvotes=0)
    dated = _paper("Listed long ago", "2024-01-01", upvotes=0)
    assert trending_score(5, age_hours(None, NOW)) == 0.0
    assert [r.paper.title for r in rank_trending([unlisted, dated], {}, now=NOW)] == ["Listed long ago",
                                                                                     "Undated capture"]
    assert [r.paper.title for r in rank_top([unlisted, dated], {})] == ["Listed long ago", "Undated capture"]


def test_decay_lets_fresh_papers_overtake_older_ones_with_more_votes() -> None:
    old = _paper("Old but loved", "2025-03-09", upvotes=20)  # 84 h old
    fresh = _paper("Fresh", "2025-03-12", upvotes=3)  # 12 h old
    ranked = rank_trending([old, fresh], {}, now=NOW)
    assert [r.paper.title for r in ranked] == ["Fresh", "Old but loved"]
    assert ranked[0].score == pytest.approx(4 / 14 ** 1.5)
    # enough votes for the old paper puts it back on top
    ranked = rank_trending([old, fresh], {old.id: 60}, now=NOW)
    assert ranked[0].paper.title == "Old but loved" and ranked[0].votes == 80


def test_local_votes_add_to_imported_upvotes_and_ties_are_stable() -> None:
    a, b = _paper("A", "2025-03-12", upvotes=5), _paper("B", "2025-03-12", upvotes=5)
    ranked = rank_trending([a, b], {b.id: 1}, now=NOW)
    assert [r.paper.title for r in ranked] == ["B", "A"]
    assert [r.votes for r in ranked] == [6, 5]
    same = rank_trending([b, a], {}, now=NOW)
    assert [r.paper.id for r in same] == sorted([a.id, b.id])


def test_top_orders_by_votes_then_newer_day() -> None:
    papers = [_paper("x", "2025-03-01", 3), _paper("y", "2025-03-05", 3), _paper("z", "2025-02-01", 9)]
    assert [r.paper.title for r in rank_top(papers, {})] == ["z", "y", "x"]
    assert window("2025-03-11", 7) == ("2025-03-05", "2025-03-11")
