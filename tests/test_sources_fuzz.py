"""Property tests: whatever the bytes, every parser yields only Papers and Rejected, and never raises.

A Paper that comes out is always storable: a canonical id, a title, an abstract, valid Unicode."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperwire.cli import seed_paths
from paperwire.model import Paper, canonical_id
from paperwire.sources import FORMATS, Rejected, parse_stream
from paperwire.sources.base import LibraryEntry

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE = {
    "hf-page": seed_paths()[0].read_bytes()[:6000],
    "arxiv-snapshot": (FIXTURES / "arxiv_snapshot.jsonl").read_bytes(),
    "arxiv-atom": (FIXTURES / "arxiv_query.atom").read_bytes(),
    "hf-daily": (FIXTURES / "hf_daily_papers.json").read_bytes(),
    "bibtex": (FIXTURES / "library.bib").read_bytes(),
    "csl-json": (FIXTURES / "library.csl.json").read_bytes(),
}
ALL = sorted(SAMPLE)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(fmt: str, data: bytes) -> list[Paper | Rejected]:
    items = list(parse_stream(io.BytesIO(data), "fuzz", fmt))
    for item in items:
        assert isinstance(item, (Paper, Rejected)), item
        if isinstance(item, Rejected):
            assert item.file == "fuzz" and item.location and item.reason
            continue
        assert item.title.strip() and item.abstract.strip()
        assert canonical_id(item.id) == item.id
        json.dumps(item.to_dict(), ensure_ascii=False).encode("utf-8")  # no lone surrogates
    return items


def check_library(fmt: str, data: bytes) -> None:
    module = FORMATS[fmt]
    for item in module.read_library_entries(io.BytesIO(data), "fuzz"):
        assert isinstance(item, (LibraryEntry, Rejected)), item


def test_samples_parse_cleanly() -> None:
    for fmt, data in SAMPLE.items():
        assert any(isinstance(i, Paper) for i in check(fmt, data)), fmt


@FUZZ
@given(fmt=st.sampled_from(ALL), data=st.binary(max_size=2000))
def test_arbitrary_bytes(fmt: str, data: bytes) -> None:
    check(fmt, data)


@FUZZ
@given(fmt=st.sampled_from(ALL), text=st.text(max_size=1500))
def test_arbitrary_text(fmt: str, text: str) -> None:
    check(fmt, text.encode("utf-8", "surrogatepass"))


@st.composite
def mutated(draw: st.DrawFn, fmt: str) -> bytes:
    data = bytearray(SAMPLE[fmt])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "truncate", "duplicate"]))
        at = draw(st.integers(0, len(data)))
        if kind == "delete":
            del data[at:at + draw(st.integers(1, 200))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=40) | st.sampled_from(
                [b"\xff", b"\xc3", b"\x00", b"{", b"}", b"[", b"]", b'"', b"\\", b"<", b"&", b"@misc{", b"\n\n",
                 b"\\ud800", b"</entry>", b"<entry>", b","]))
        elif kind == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "duplicate":
            end = min(len(data), at + draw(st.integers(1, 400)))
            data[at:at] = data[at:end]
    return bytes(data)


@FUZZ
@given(data=st.data(), fmt=st.sampled_from(ALL))
def test_mutated_fixtures(data: st.DataObject, fmt: str) -> None:
    blob = data.draw(mutated(fmt))
    check(fmt, blob)
    if fmt in ("bibtex", "csl-json"):
        check_library(fmt, blob)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(fmt=st.sampled_from(["arxiv-snapshot", "hf-daily", "csl-json"]), value=JSON)
def test_arbitrary_json(fmt: str, value: object) -> None:
    check(fmt, json.dumps(value).encode())
    check(fmt, json.dumps([value, value]).encode())


def _field(values: st.SearchStrategy) -> st.SearchStrategy:
    return values | JSON


# records with the right keys and wrong, odd or hostile values reach deeper than arbitrary JSON
ID = st.sampled_from(["2503.07536", "2503.07536v2", "hep-th/9901001", "arXiv:2401.01234", "x", ""]) | st.text()
DAY = st.sampled_from(["2025-03-11T00:22:45.236Z", "2025-02-30", "yesterday", "2025-03-11"]) | st.text()
TEXT = st.text(max_size=80) | st.sampled_from(["\\ud800", "{\\em x}", "$\\ell_2$", "a" * 300])
HF_PAPER = st.fixed_dictionaries({}, optional={
    "id": _field(ID), "title": _field(TEXT), "summary": _field(TEXT), "publishedAt": _field(DAY),
    "upvotes": _field(st.integers()), "authors": _field(st.lists(st.fixed_dictionaries({"name": _field(TEXT)}))),
    "githubRepo": _field(TEXT), "submittedOnDailyBy": _field(st.fixed_dictionaries({"user": _field(TEXT)})),
})
HF_RECORD = st.fixed_dictionaries({}, optional={
    "paper": _field(HF_PAPER), "title": _field(TEXT), "submittedOnDailyAt": _field(DAY), "publishedAt": _field(DAY),
    "numComments": _field(st.integers()), "submittedBy": _field(st.fixed_dictionaries({"name": _field(TEXT)})),
})
CSL_ITEM = st.fixed_dictionaries({"type": st.just("article")}, optional={
    "id": _field(TEXT), "title": _field(TEXT), "abstract": _field(TEXT), "DOI": _field(TEXT), "URL": _field(TEXT),
    "author": _field(st.lists(st.fixed_dictionaries({}, optional={"family": _field(TEXT), "given": _field(TEXT),
                                                                  "literal": _field(TEXT)}))),
    "issued": _field(st.fixed_dictionaries({"date-parts": _field(st.lists(st.lists(_field(st.integers()))))})),
    "eprint": _field(ID), "note": _field(TEXT), "number": _field(ID),
})
SNAPSHOT = st.fixed_dictionaries({}, optional={
    "id": _field(ID), "title": _field(TEXT), "abstract": _field(TEXT), "authors": _field(TEXT),
    "authors_parsed": _field(st.lists(st.lists(_field(TEXT)))), "categories": _field(TEXT),
    "versions": _field(st.lists(st.fixed_dictionaries({"version": _field(TEXT), "created": _field(TEXT)}))),
    "update_date": _field(DAY), "doi": _field(TEXT),
})


@FUZZ
@given(records=st.lists(HF_RECORD | HF_PAPER, max_size=4))
def test_hf_daily_shaped_records(records: list) -> None:
    check("hf-daily", json.dumps(records).encode())


@FUZZ
@given(items=st.lists(CSL_ITEM, max_size=4))
def test_csl_shaped_items(items: list) -> None:
    data = json.dumps(items).encode()
    check("csl-json", data)
    check_library("csl-json", data)


@FUZZ
@given(records=st.lists(SNAPSHOT, max_size=4))
def test_snapshot_shaped_records(records: list) -> None:
    check("arxiv-snapshot", b"\n".join(json.dumps(r).encode() for r in records))


BIB_VALUE = st.text(max_size=60) | st.sampled_from(
    ["{\\\"u}", "\\c{c}", "$\\ell_2$", "{unbalanced", "arXiv:2401.01234", "2401.01234v2", "abs/1706.03762", "\\"])


@FUZZ
@given(entries=st.lists(st.tuples(st.sampled_from(["article", "misc", "inproceedings", "string"]),
                                  st.text("abcxyz019_:-", min_size=1, max_size=10),
                                  st.dictionaries(st.sampled_from(["title", "abstract", "author", "year", "eprint",
                                                                   "archiveprefix", "doi", "url", "journal", "note",
                                                                   "month", "date", "volume"]),
                                                  BIB_VALUE, max_size=7)),
                        max_size=4))
def test_bibtex_shaped_entries(entries: list) -> None:
    text = "\n".join("@{}{{{},\n{}}}\n".format(kind, key, ",\n".join(f"  {k} = {{{v}}}" for k, v in fields.items()))
                     for kind, key, fields in entries)
    data = text.encode("utf-8", "surrogatepass")
    check("bibtex", data)
    check_library("bibtex", data)


# Nesting: the standard JSON decoder recurses once per level and orjson stops at 1,024, so a record (or a
# field) nested deeper must be one rejection of that record, the records around it still read.
GOOD_JSON = {
    "arxiv-snapshot": [line.decode() for line in SAMPLE["arxiv-snapshot"].splitlines()],
    "hf-daily": [json.dumps(r) for r in json.loads(SAMPLE["hf-daily"])[:2]],
    "csl-json": [json.dumps(r) for r in json.loads(SAMPLE["csl-json"]) if r.get("abstract")][:2],
}
DEEP_FIELD = {
    "arxiv-snapshot": '{"id": "2401.09999", "title": %s, "abstract": "x"}',
    "hf-daily": '{"paper": {"id": "2401.09999", "title": "T", "summary": "S", "authors": %s}}',
    "csl-json": '{"type": "article", "id": "deep", "title": "T", "abstract": "S", "author": %s}',
}


def nested(depth: int, openers: list[str]) -> str:
    """A value `depth` levels deep, cycling through `openers` ("[" or '{"k":')."""
    chosen = [openers[i % len(openers)] for i in range(depth)]
    return "".join(chosen) + "1" + "".join("]" if o == "[" else "}" for o in reversed(chosen))


def with_deep_record(fmt: str, deep: str) -> bytes:
    first, second = GOOD_JSON[fmt]
    if fmt == "arxiv-snapshot":
        return "\n".join([first, deep, second]).encode() + b"\n"
    return ("[" + ",\n".join([first, deep, second]) + "]").encode()


@FUZZ
@given(fmt=st.sampled_from(sorted(GOOD_JSON)), depth=st.integers(1, 3000),
       openers=st.lists(st.sampled_from(["[", '{"k":']), min_size=1, max_size=3), in_field=st.booleans())
def test_deeply_nested_json_costs_only_its_record(fmt: str, depth: int, openers: list[str], in_field: bool) -> None:
    deep = nested(depth, openers)
    items = check(fmt, with_deep_record(fmt, DEEP_FIELD[fmt] % deep if in_field else deep))
    assert len(items) == 3
    assert isinstance(items[0], Paper) and isinstance(items[2], Paper)
    if depth > 1100 and not in_field:  # a record of nothing but nesting
        assert isinstance(items[1], Rejected), items[1]


@pytest.mark.parametrize("depth", [1000, 100_000])
@pytest.mark.parametrize("fmt", sorted(GOOD_JSON))
def test_nesting_of_a_thousand_and_a_hundred_thousand_levels(fmt: str, depth: int) -> None:
    for deep in (nested(depth, ["["]), DEEP_FIELD[fmt] % nested(depth, ['{"k":', "["])):
        items = check(fmt, with_deep_record(fmt, deep))
        assert [type(i) for i in items] == [Paper, Rejected, Paper], items
        assert "nested too deeply" in items[1].reason or "not a JSON object" in items[1].reason, items[1]
        assert "\n" not in str(items[1])


def test_nesting_in_the_library_readers() -> None:
    deep = nested(100_000, ["["])
    for fmt in ("csl-json",):
        entries = list(FORMATS[fmt].read_library_entries(io.BytesIO(with_deep_record(fmt, deep)), "fuzz"))
        assert [type(e) for e in entries] == [LibraryEntry, Rejected, LibraryEntry]
        assert "nested too deeply" in entries[1].reason


def test_markup_only_title_or_abstract_is_rejected() -> None:
    """A title of one backslash reads as no text at all: a rejection with its reason, not an empty card."""
    records = [{"id": "2503.07536", "title": "\\\\", "abstract": "An abstract."},
               {"id": "2503.07537", "title": "A title", "abstract": "\\\\"}]
    items = check("arxiv-snapshot", b"\n".join(json.dumps(r).encode() for r in records))
    assert [type(item).__name__ for item in items] == ["Rejected", "Rejected"]
    assert "holds no text" in items[0].reason and "title" in items[0].reason
    assert "abstract" in items[1].reason
