"""BibTeX written by paperwire.bibtex_out reads back as the same text: any title, author, abstract and
note, through paperwire's own BibTeX reader (as `library import` reads it) and through bibtexparser."""

from __future__ import annotations

import io

import bibtexparser
from hypothesis import given, settings
from hypothesis import strategies as st

from paperwire.bibtex_out import BibItem, citation_key, write_bibtex
from paperwire.model import Paper, clean_text
from paperwire.sources.bibtex import _decoder, read_library_entries

# Any characters but control ones (a title or note is typed text), plus line breaks in notes; the TeX
# specials, dashes, quotes, `?`` and `@` at a line start are drawn often.
TRICKY = st.sampled_from(list("\\{}$%&#_^~\"'`-@?!") + ["--", "---", "''", "``", "?`", "\n@misc{", " and "])
TEXT = st.lists(st.one_of(TRICKY, st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=8)),
                min_size=1, max_size=12).map("".join)
WORDS = TEXT.map(lambda t: " ".join(t.split())).filter(bool)


def same(a: str, b: str) -> bool:
    return a.split() == b.split()


@settings(max_examples=300, deadline=None)
@given(title=WORDS, abstract=WORDS, note=TEXT, author=WORDS)
def test_any_text_reads_back_the_same(title: str, abstract: str, note: str, author: str) -> None:
    paper = Paper(id="2401.00001", title=title, abstract=abstract, authors=["Jo Müller", author],
                  arxiv_id="2401.00001", published="2024-01-02")
    text = write_bibtex([BibItem(paper, note), BibItem(Paper(id="pw-1", title="Second"), "")])

    entries = list(read_library_entries(io.BytesIO(text.encode()), "out.bib"))
    assert [type(e).__name__ for e in entries] == ["LibraryEntry", "LibraryEntry"], (text, entries)
    assert entries[0].arxiv_id == "2401.00001" and entries[0].year == 2024
    assert entries[0].title == clean_text(title)  # what an import of this very title would give
    assert entries[1].title == "Second"

    library = bibtexparser.parse_string(text, append_middleware=[
        bibtexparser.middlewares.LatexDecodingMiddleware(decoder=_decoder())])
    assert not library.failed_blocks and len(library.entries) == 2
    fields = library.entries[0].fields_dict
    assert same(fields["title"].value, title) and same(fields["abstract"].value, abstract)
    assert same(fields.get("annote").value if note.strip() else "", note)


def test_team_names_stay_whole_and_keys_are_unique_ascii() -> None:
    papers = [Paper(id=f"pw-{i}", title="The Same Title", authors=["Research and Development Team", "Ada Lovelace"],
                    published="2023-05-01") for i in range(3)]
    text = write_bibtex([BibItem(p) for p in papers], comment="three of a kind")
    entries = list(read_library_entries(io.BytesIO(text.encode()), "out.bib"))
    assert [e.key for e in entries] == ["team2023same", "team2023samea", "team2023sameb"]
    assert all(e.authors == ["Research and Development Team", "Ada Lovelace"] for e in entries)
    assert citation_key(Paper(id="x", title="Über Straße", authors=["Ödön Ärpád"], published="2020-01-01")) == \
        "arpad2020uber"
