"""The card parts rendered once per paper (paperwire/web/card_parts.py): reused while the paper's shown
fields are unchanged, rendered anew when any of them changes, and bounded in number."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from paperwire.model import make_paper
from paperwire.web.card_parts import CardPartsCache
from paperwire.web.site import Site
from paperwire.web.views import paper_links

PAPER = make_paper(title="Sparse Kernels for σ_{max} Bounds", abstract="We bound σ_{max}. " * 30, source="test",
                   authors=["Ada One", "Bea Two"], categories=["cs.LG", "stat.ML"], listed_on="2025-03-11",
                   arxiv_id="2503.01234", extra_links=["https://github.com/x/kernels"])


def parts_of(cache: CardPartsCache, paper: object) -> object:
    return cache(paper, paper_links(paper))  # type: ignore[arg-type]


def pieces(parts: object) -> str:
    return "".join(str(getattr(parts, name)) for name in ("title", "authors", "tags", "day", "abstract"))


def test_parts_are_reused_until_a_shown_field_changes(tmp_path: Path) -> None:
    cache = Site(tmp_path / "home").templates.globals["card_parts"]
    first = parts_of(cache, PAPER)
    assert "<sub>max</sub>" in first.title and "Ada One, Bea Two" in first.authors
    assert 'href="https://github.com/x/kernels"' in first.tags and "2025-03-11" in first.day
    assert parts_of(cache, dataclasses.replace(PAPER, upvotes=7)) is first  # votes are not part of them
    before = pieces(first)
    for change in ({"title": "Dense Kernels"}, {"abstract": "Another abstract."}, {"authors": ["Cy Three"]},
                   {"categories": ["math.OC"]}, {"listed_on": "2025-03-12"}, {"links": []}):
        parts = parts_of(cache, dataclasses.replace(PAPER, **change))
        assert parts is not first and pieces(parts) != before, change


def test_the_least_recently_used_paper_is_dropped_first(tmp_path: Path) -> None:
    site = Site(tmp_path / "home")
    cache = CardPartsCache(site.templates, entries=2)
    papers = [dataclasses.replace(PAPER, id=f"pw-{i}") for i in range(3)]
    a, b = parts_of(cache, papers[0]), parts_of(cache, papers[1])
    assert parts_of(cache, papers[0]) is a  # a is now the most recently used
    parts_of(cache, papers[2])  # b goes
    assert parts_of(cache, papers[0]) is a and parts_of(cache, papers[1]) is not b
