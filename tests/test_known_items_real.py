"""The known-item queries for real arXiv papers (bench/known_items_real.json): the same rules as the
sample-corpus set, and targets that are exactly the papers bench/draw_real_items.py draws.

The checks against titles need the real metadata file: PAPERWIRE_REAL_ARXIV names it, else
../shared/data/arxiv-real-187k.jsonl.gz beside the repository is used; without it they are skipped."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections import Counter
from pathlib import Path

import pytest
from test_known_items import known_items

_ROOT = Path(__file__).resolve().parents[1]
REAL_ITEMS = _ROOT / "bench" / "known_items_real.json"
REAL_DATA = Path(os.environ.get("PAPERWIRE_REAL_ARXIV",
                                _ROOT.parent / "shared" / "data" / "arxiv-real-187k.jsonl.gz"))
# New-style (2504.09816) or old-style (hep-th/9901001) arXiv ids, no version suffix.
ARXIV_ID = re.compile(r"(\d{4}\.\d{4,5}|[a-z-]+(\.[A-Z]{2})?/\d{7})")


def _load_draw_script():
    path = _ROOT / "bench" / "draw_real_items.py"
    spec = importlib.util.spec_from_file_location("bench_draw_real_items", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def items() -> list[dict]:
    return known_items.load_known_items(REAL_ITEMS)


@pytest.fixture(scope="module")
def drawn() -> list[dict]:
    if not REAL_DATA.is_file():
        pytest.skip(f"real arXiv metadata not found at {REAL_DATA} (set PAPERWIRE_REAL_ARXIV)")
    return _load_draw_script().draw(str(REAL_DATA))


def test_items_are_well_formed(items: list[dict]) -> None:
    assert len(items) >= 60
    ids = [item["id"] for item in items]
    assert len(set(ids)) == len(ids), [i for i, n in Counter(ids).items() if n > 1]
    for item in items:
        assert set(item) == {"query", "id", "kind", "split", "field"}, item
        assert ARXIV_ID.fullmatch(item["id"]), item["id"]
        assert item["kind"] in known_items.KINDS, item
        assert item["split"] in known_items.SPLITS, item
        assert re.fullmatch(r"[a-z-]+", item["field"]), item
        if item["kind"] == "vague":
            assert 3 <= len(item["query"].split()) <= 6, item


def test_splits_and_kinds_are_mixed(items: list[dict]) -> None:
    splits = Counter(item["split"] for item in items)
    assert 0.25 <= splits["tune"] / len(items) <= 0.4, splits
    kinds = Counter(item["kind"] for item in items)
    assert set(kinds) == set(known_items.KINDS), kinds
    assert len({item["field"] for item in items}) >= 3, "physics papers were skipped"


def test_targets_are_the_drawn_papers(items: list[dict], drawn: list[dict]) -> None:
    assert [item["id"] for item in items] == [paper["id"] for paper in drawn]
    for item, paper in zip(items, drawn, strict=True):
        assert item["field"] == paper["categories"].split()[0].split(".")[0], item


def test_queries_do_not_copy_titles(items: list[dict], drawn: list[dict]) -> None:
    titles = {paper["id"]: paper["title"] for paper in drawn}
    assert known_items.problems(items, titles) == []
