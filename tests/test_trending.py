"""The trending formula shown on /trending, and top-by-votes ordering."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from paperwire.model import make_paper
from paperwire.rank.trending import (
    FORMULA,
    GRAVITY,
    Ranked,
    age_hours,
    earlier_window,
    rank_top,
    rank_trending,
    score_note,
    trending_candidates,
    trending_score,
    window,
)

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


# ------------------------------------------------------------ windows anchored to now

def _listings(home, papers):  # type: ignore[no-untyped-def]
    from paperwire.store import open_store
    from paperwire.store.accounts import Listings

    store = open_store(home)
    store.upsert_papers(papers)
    return store, Listings(store)


def test_trending_candidates_fall_back_to_the_newest_papers_when_the_month_is_empty(store_home) -> None:  # type: ignore[no-untyped-def]
    old = [_paper(f"Old {i}", f"2025-03-{10 + i % 3:02d}", upvotes=i) for i in range(12)]
    store, listings = _listings(store_home, old)
    try:
        # Nothing listed in the 30 days up to today: the month up to the newest listing day stands in.
        found = trending_candidates(listings, "2026-12-06", 5)
        assert {p.id for p in found} <= {p.id for p in old} and len(found) >= 5
        # One paper listed today does not push the others out, and ranks on the same scale.
        fresh = _paper("Listed today", "2026-12-06")
        store.upsert_papers([fresh])
        found = trending_candidates(listings, "2026-12-06", 5)
        assert fresh.id in {p.id for p in found} and len(found) >= 5
        ranked = rank_trending(found, {}, now=datetime(2026, 12, 6, 12, tzinfo=UTC))
        assert ranked[0].paper.id == fresh.id and ranked[1].paper.title == "Old 11"  # most votes of the old
        # A month with enough papers of its own needs no older ones.
        month = [_paper(f"Recent {i}", "2026-12-01") for i in range(5)]
        store.upsert_papers(month)
        assert {p.id for p in trending_candidates(listings, "2026-12-06", 5)} <= {p.id for p in month + [fresh]}
        # Nothing at all: nothing to rank, and no error.
        assert earlier_window(listings, "2025-01-01", 30) is None
    finally:
        store.close()


def test_score_note_is_relative_and_readable() -> None:
    old = _paper("Old but loved", "2024-03-09", upvotes=41)
    fresh = _paper("Fresh", "2025-03-12", upvotes=3)
    best, second = rank_trending([old, fresh], {}, now=NOW)
    top, other = score_note(best, best.score), score_note(second, best.score)
    assert best.paper is fresh and top.label == "listed 12 hours ago · score 100"
    assert other.label == "listed 1 year, 3 days ago · score <1"  # raw 5.05e-05: shown relative to the top
    assert other.title.startswith(f"{FORMULA} = (41 + 1) / (8844 + 2)^1.5 = 5.05e-05")
    assert "e-" not in top.label + other.label
    middle = Ranked(fresh, 1, best.score * 0.374, 30.0)
    assert score_note(middle, best.score).label == "listed a day ago · score 37"
