"""Query syntax: fields, phrases, exclusions, dates, ids, and bad input that must only ever give QueryError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperwire.index.query import MAX_QUERY_CHARS, QueryError, parse_query, tokenize


def test_free_words_phrases_exclusions_and_fields() -> None:
    q = parse_query('grokking -memorization "neural collapse" ti:transformer au:"Yann LeCun" cat:cs.LG all:sparse')
    assert q.terms == ["grokking", "sparse"]
    assert q.phrases == ["neural collapse"]
    assert q.excluded == ["memorization"]
    assert q.fields == {"ti": ["transformer"], "au": ["Yann LeCun"], "cat": ["cs.LG"]}
    assert q.text == "grokking sparse neural collapse"


def test_excluded_phrase_and_id_field() -> None:
    q = parse_query('diffusion -"image generation" id:2401.01234')
    assert q.excluded == ["image generation"]
    assert q.fields == {"id": ["2401.01234"]}


@pytest.mark.parametrize("text", ["2401.01234", "arXiv:2401.01234v2", "https://arxiv.org/abs/2401.01234",
                                  "http://arxiv.org/pdf/2401.01234v3.pdf", "  2401.01234  "])
def test_whole_query_arxiv_id(text: str) -> None:
    q = parse_query(text)
    assert q.arxiv_id == "2401.01234"
    assert q.terms == [] and q.text == ""


@pytest.mark.parametrize("text, start, end", [
    ("submittedDate:[20240101 TO 20240301]", "2024-01-01", "2024-03-01"),
    ("submittedDate:[202401010000 TO 202403012359]", "2024-01-01", "2024-03-01"),
    ("date:2024-01-01..2024-03-01", "2024-01-01", "2024-03-01"),
    ("date:2024-01-01..", "2024-01-01", None),
    ("date:..2024-03-01", None, "2024-03-01"),
    ("date:2024-02", "2024-02-01", "2024-02-29"),
    ("date:2023", "2023-01-01", "2023-12-31"),
])
def test_date_ranges(text: str, start: str | None, end: str | None) -> None:
    q = parse_query(f"transformers {text}")
    assert (q.date_from, q.date_to) == (start, end)
    assert q.terms == ["transformers"]


def test_colons_in_ordinary_text_are_not_fields() -> None:
    assert parse_query("BERT: pre-training of deep bidirectional transformers").terms[0] == "BERT:"
    q = parse_query("code at https://github.com/org/repo and doi:10.1000/xyz")
    assert "https://github.com/org/repo" in q.terms and not q.fields


def test_unknown_field_is_a_clear_error() -> None:
    with pytest.raises(QueryError, match=r"unknown field 'foo:'; use ti:, au:, abs:, cat:, id:, date:"):
        parse_query("foo:bar")


@pytest.mark.parametrize("text, message", [
    ("", "empty query"), ("   \t\n ", "empty query"), ("\x00\x01", "empty query"),
    ("x" * 10_000, "too long"), ("date:2024-02-30", "bad date"), ("submittedDate:[2024 TO]", "bad range"),
])
def test_bad_queries_raise_query_error(text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query(text)


def test_longest_allowed_query() -> None:
    assert parse_query("a" * (MAX_QUERY_CHARS - 2) + " b").terms
    with pytest.raises(QueryError, match="too long"):
        parse_query("a" * MAX_QUERY_CHARS + " ")


def test_only_stopwords_has_no_text() -> None:
    q = parse_query("the of and")
    assert q.text == "" and q.is_empty


def test_unbalanced_quote_runs_to_the_end() -> None:
    q = parse_query('scaling "laws for neural')
    assert q.terms == ["scaling"] and q.phrases == ["laws for neural"]


@pytest.mark.parametrize("text", ["'; DROP TABLE papers; --", "title:(a OR b)*", "NEAR/3 (a OR b)*",
                                  "a AND NOT b ^2 ~ {x} /* c */", "--", "-", '"', "\udcff invalid", "nul\x00byte"])
def test_operator_strings_are_text(text: str) -> None:
    q = parse_query(text)  # no exception
    assert all(isinstance(t, str) and t for t in q.terms + q.phrases + q.excluded)
    assert "\udcff" not in q.text and "\x00" not in q.text


def test_tokenizer_folds_stems_and_drops_stopwords() -> None:
    assert tokenize("The Naïve Résumés of GPT-4 models") == ["naiv", "resum", "gpt", "4", "model"]
    assert tokenize("Running models", stem=False) == ["running", "models"]
    assert tokenize("the of and") == []


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_a_query_or_query_error(text: str) -> None:
    try:
        q = parse_query(text)
    except QueryError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(q.text, str)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(['"', "-", ":", "ti:", "date:", "[", "]", " TO ", "..", "2024", "x", " ", "cat:",
                                 "submittedDate:", "*", "(", ")", "id:", "\\", "'"]), max_size=30))
def test_syntax_fragments_give_a_query_or_query_error(parts: list[str]) -> None:
    try:
        parse_query("".join(parts))
    except QueryError:
        pass
