"""The known-item benchmark's query file: real targets, no title copying, both splits."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "bench" / "known_items.py"
_spec = importlib.util.spec_from_file_location("bench_known_items", _PATH)
known_items = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = known_items
_spec.loader.exec_module(known_items)


@pytest.fixture(scope="module")
def titles() -> dict[str, str]:
    return known_items.seed_titles()


@pytest.fixture(scope="module")
def items() -> list[dict]:
    return known_items.load_known_items()


def test_sample_corpus_is_the_one_the_queries_were_written_for(titles: dict[str, str]) -> None:
    assert len(titles) == 407


def test_query_file_has_no_problems(items: list[dict], titles: dict[str, str]) -> None:
    assert known_items.problems(items, titles) == []
    assert len(items) >= 60


def test_splits_and_kinds_are_mixed(items: list[dict]) -> None:
    splits = Counter(item["split"] for item in items)
    assert 0.2 <= splits["tune"] / len(items) <= 0.45, splits
    kinds = Counter(item["kind"] for item in items)
    assert set(kinds) == set(known_items.KINDS), kinds
    pages = Counter(item["page"] for item in items)
    assert len(pages) == 5 and min(pages.values()) >= 10, pages


def test_checks_catch_a_bad_file(items: list[dict], titles: dict[str, str]) -> None:
    some_id, title = next(iter(titles.items()))
    copied = {"query": f"that paper about {title.lower()}", "id": some_id, "kind": "vague", "split": "tune"}
    unknown = {"query": "a paper nobody wrote", "id": "pw-000000000000", "kind": "concept", "split": "test"}
    found = known_items.problems([copied, unknown, {"query": "no id"}], titles)
    assert any("repeats title words" in line for line in found), found
    assert any("not in the sample corpus" in line for line in found), found
    assert any("missing" in line for line in found), found
    assert any("at least 60" in line for line in found), found
    only_tune = [{**item, "split": "tune"} for item in items]
    assert "no 'test' queries" in known_items.problems(only_tune, titles)


def test_title_runs_split_on_punctuation() -> None:
    title = "Two Layer ReLU Networks"
    assert known_items.shared_title_runs("a two-layer ReLU net", title) == {("two", "layer", "relu")}
    assert known_items.shared_title_runs("layer two relu", title) == set()
