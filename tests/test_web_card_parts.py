"""The card parts rendered once per paper (paperwire/web/card_parts.py): reused while the paper's shown
fields are unchanged, rendered anew when any of them changes, and bounded in number."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from paperwire.model import make_paper
from paperwire.web.card_parts import CardPartsCache, day_label
from paperwire.web.site import Site
from paperwire.web.views import paper_links

PAPER = make_paper(title="Sparse Kernels for σ_{max} Bounds", abstract="We bound σ_{max}. " * 30, source="test",
                   authors=["Ada One", "Bea Two"], categories=["cs.LG", "stat.ML"], listed_on="2025-03-11",
                   arxiv_id="2503.01234", extra_links=["https://github.com/x/kernels"], submitted_by="ada",
                   thumbnail="https://cdn.example.org/fig.png")


def parts_of(cache: CardPartsCache, paper: object) -> object:
    return cache(paper, paper_links(paper))  # type: ignore[arg-type]


def pieces(parts: object) -> str:
    return "".join(str(getattr(parts, name)) for name in ("title", "authors", "tags", "day", "abstract", "submitter",
                                                          "thumb"))


def test_parts_are_reused_until_a_shown_field_changes(tmp_path: Path) -> None:
    cache = Site(tmp_path / "home").templates.globals["card_parts"]
    first = parts_of(cache, PAPER)
    assert "<sub>max</sub>" in first.title
    assert '>Ada One</a>, <a class="author" href="/authors/Bea%20Two">Bea Two</a>' in first.authors
    assert 'href="https://github.com/x/kernels"' in first.tags and "2025-03-11" in first.day
    assert parts_of(cache, dataclasses.replace(PAPER, upvotes=7)) is first  # votes are not part of them
    before = pieces(first)
    # pages render titles and abstracts from the raw text (formulas as written), which changes with them
    for change in ({"title": "Dense Kernels", "raw_title": "Dense Kernels"},
                   {"abstract": "Another abstract.", "raw_abstract": "Another abstract."}, {"authors": ["Cy Three"]},
                   {"categories": ["math.OC"]}, {"listed_on": "2025-03-12"}, {"links": []},
                   {"submitted_by": "bea"}, {"thumbnail": "https://cdn.example.org/other.png"}):
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


def test_day_chips_carry_the_year_only_when_it_is_not_the_current_one() -> None:
    assert day_label("2026-12-06", "2026-12-31") == "Dec 6"
    assert day_label("1997-11-27", "2026-12-06") == "Nov 27, 1997"
    assert day_label("2025-03-11", "2026-01-01") == "Mar 11, 2025"
    assert day_label("not a day", "2026-01-01") == "not a day"


def test_the_day_part_follows_the_current_year(tmp_path: Path) -> None:
    cache = Site(tmp_path / "home").templates.globals["card_parts"]
    this_year = datetime.now(UTC).date()
    today = dataclasses.replace(PAPER, listed_on=this_year.isoformat())
    assert f">{this_year:%b} {this_year.day}</time>" in cache(today, []).day
    old = dataclasses.replace(PAPER, id="2503.00002", listed_on="1997-11-27")
    assert '<time datetime="1997-11-27">Nov 27, 1997</time>' in cache(old, []).day
    # a page for another day (a new year began since) renders the chip anew
    parts = cache(PAPER, [], "2025-06-01")
    assert ">Mar 11</time>" in parts.day and cache(PAPER, [], "2026-01-01") is not parts
    assert ">Mar 11, 2025</time>" in cache(PAPER, [], "2026-01-01").day


def test_submitter_and_thumbnail_parts_are_escaped_and_only_web_images_are_shown(tmp_path: Path) -> None:
    cache = Site(tmp_path / "home").templates.globals["card_parts"]
    parts = parts_of(cache, PAPER)
    assert str(parts.submitter) == '<span class="submitter">submitted by <span class="name">ada</span></span>'
    thumb = str(parts.thumb)
    for attribute in ('src="https://cdn.example.org/fig.png"', 'loading="lazy"', 'width="128"', 'height="72"',
                      'alt=""', 'referrerpolicy="no-referrer"'):
        assert attribute in thumb
    odd = dataclasses.replace(PAPER, id="2503.00003", submitted_by='<b>x</b>"',
                              thumbnail='https://cdn.example.org/a.png?q="><script>alert(1)</script>')
    parts = parts_of(cache, odd)
    assert "&lt;b&gt;x&lt;/b&gt;&#34;" in parts.submitter and "<script>" not in str(parts.thumb)
    assert 'src="https://cdn.example.org/a.png?q=&#34;&gt;&lt;script&gt;' in parts.thumb
    for bad in ("javascript:alert(1)", "data:image/png;base64,AAAA", "//cdn.example.org/x.png", "/local.png"):
        assert str(parts_of(cache, dataclasses.replace(PAPER, id="2503.00004", thumbnail=bad)).thumb) == "", bad
    none = parts_of(cache, dataclasses.replace(PAPER, id="2503.00005", submitted_by=None, thumbnail=None))
    assert str(none.submitter) == str(none.thumb) == ""
