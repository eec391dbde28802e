"""BibTeX and CSL-JSON: papers for ingest and LibraryEntry references for matching a personal library."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from paperwire.model import Paper
from paperwire.sources import Rejected, bibtex, csl_json
from paperwire.sources.base import LibraryEntry
from paperwire.sources.citation import arxiv_id_of, doi_of

FIXTURES = Path(__file__).parent / "fixtures"
BIB = (FIXTURES / "library.bib").read_bytes()
CSL = (FIXTURES / "library.csl.json").read_bytes()


def papers_of(module, data: bytes, name: str = "lib") -> list[Paper | Rejected]:
    return list(module.parse(io.BytesIO(data), name))


def entries_of(module, data: bytes, name: str = "lib") -> list[LibraryEntry | Rejected]:
    return list(module.read_library_entries(io.BytesIO(data), name))


# ---------------------------------------------------------------- BibTeX

def test_bibtex_fields_mapped_latex_decoded() -> None:
    items = papers_of(bibtex, BIB, "library.bib")
    papers = {p.id: p for p in items if isinstance(p, Paper)}
    assert list(papers) == ["1706.03762", "2403.01234", "1512.03385"]
    attention = papers["1706.03762"]
    assert attention.title == "Attention Is All You Need"  # protective braces removed
    assert attention.raw_title == "Attention Is {All} You Need"  # as written
    assert attention.authors[-2:] == ["Łukasz Kaiser", "Illia Polosukhin"]
    assert attention.authors[5] == "Aidan N. Gomez"
    assert attention.abstract.endswith("We propose the Transformer, based solely on attention mechanisms, and reach "
                                       "28.4 BLEU, improving results by over 2%.")
    assert (attention.published, attention.source) == ("2017-01-01", "bibtex")
    sparse = papers["2403.01234"]
    assert sparse.authors == ["Zoë Müller", "José Ñúñez", "François Ben Amar"]
    assert sparse.title == "Sparse ℓ₂ Attention for Long Contexts"
    assert sparse.abstract == ("We bound sparse attention in the ℓ₂ norm and obtain an O(n log n) algorithm. "
                               "Code: https://github.com/zmuller/sparse-l2.")
    assert sparse.links == ["https://github.com/zmuller/sparse-l2"]
    assert (sparse.version, sparse.doi, sparse.published) == (2, "10.48550/arxiv.2403.01234", "2024-03-01")
    resnet = papers["1512.03385"]  # arXiv id from the note, DOI from doi
    assert (resnet.doi, resnet.published) == ("10.1109/cvpr.2016.90", "2016-01-01")


def test_bibtex_entries_without_abstract_are_rejected_for_ingest() -> None:
    errors = [str(i) for i in papers_of(bibtex, BIB, "library.bib") if isinstance(i, Rejected)]
    assert errors == [
        "library.bib: entry devlin2018bert (line 45): title 'BERT: Pre-training of Deep Bidirectional Transformers "
        "for La' has no abstract",
        "library.bib: entry kingma2015adam (line 52): title 'Adam: A Method for Stochastic Optimization' "
        "has no abstract",
        "library.bib: entry knuth1984texbook (line 60): title 'The TeXbook' has no abstract",
    ]


def test_bibtex_library_entries_need_no_abstract() -> None:
    entries = entries_of(bibtex, BIB)
    assert all(isinstance(e, LibraryEntry) for e in entries)
    by_key = {e.key: e for e in entries}
    assert list(by_key) == ["vaswani2017attention", "mueller2024sparse", "he2016deep", "devlin2018bert",
                            "kingma2015adam", "knuth1984texbook"]
    assert by_key["devlin2018bert"] == LibraryEntry(
        key="devlin2018bert",
        title="BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding",
        arxiv_id="1810.04805", doi=None,
        authors=["Jacob Devlin", "Ming-Wei Chang", "Kenton Lee", "Kristina Toutanova"], year=2018)
    assert by_key["mueller2024sparse"].arxiv_id == "2403.01234"  # version dropped for matching
    assert by_key["vaswani2017attention"].arxiv_id == "1706.03762"  # DBLP eprinttype/eprint
    assert by_key["he2016deep"].doi == "10.1109/cvpr.2016.90"
    assert by_key["kingma2015adam"].arxiv_id is None and by_key["kingma2015adam"].year == 2015
    assert by_key["knuth1984texbook"].title == "The TeXbook"


def test_bibtex_syntax_error_names_the_line_and_keeps_the_rest() -> None:
    broken = BIB.replace(b"title         = {Deep Residual Learning for Image Recognition},",
                         b"title         = {Deep Residual Learning for Image Recognition,")
    items = papers_of(bibtex, broken, "b.bib")
    ids = [p.id for p in items if isinstance(p, Paper)]
    assert ids == ["1706.03762", "2403.01234"]
    malformed = [i for i in items if isinstance(i, Rejected) and "malformed" in i.reason]
    assert len(malformed) == 1 and malformed[0].location == "line 32"  # where the entry starts


def test_bibtex_duplicate_key_and_invalid_utf8() -> None:
    extra = (b"\n@misc{he2016deep, title={Again}, abstract={Dup}}\n"
             b"@misc{bad, title={Caf\xe9}, abstract={Broken bytes.}}\n")
    items = papers_of(bibtex, BIB + extra, "d.bib")
    errors = [i for i in items if isinstance(i, Rejected)]
    assert any(e.location.startswith("entry he2016deep (line") and "duplicate" in e.reason for e in errors)
    assert any(e.location.startswith("entry bad (line") and e.reason == "invalid UTF-8 in the entry" for e in errors)
    assert len([p for p in items if isinstance(p, Paper)]) == 3


# ---------------------------------------------------------------- CSL-JSON

def test_csl_fields_mapped() -> None:
    items = papers_of(csl_json, CSL, "lib.json")
    papers = [p for p in items if isinstance(p, Paper)]
    assert [p.id for p in papers] == ["1706.03762", "1512.03385"]
    attention, resnet = papers
    assert attention.authors == ["Ashish Vaswani", "Noam Shazeer", "Łukasz Kaiser"]
    assert (attention.published, attention.doi, attention.source) == ("2017-12-05", "10.48550/arxiv.1706.03762",
                                                                       "csl-json")
    assert attention.abstract.startswith("The dominant sequence transduction models")
    assert (resnet.published, resnet.doi) == ("2016-06-01", "10.1109/cvpr.2016.90")  # arXiv id from eprint
    errors = [i.location for i in items if isinstance(i, Rejected)]
    assert errors == ["record 3 (vanderwaals2023)", "record 4 (devlin2018bert)"]


def test_csl_library_entries() -> None:
    entries = entries_of(csl_json, CSL)
    assert [e.key for e in entries] == ["http://zotero.org/users/1234567/items/ABCD2345", "he2016deep",
                                        "vanderwaals2023", "devlin2018bert"]
    waals = entries[2]
    assert waals.authors == ["Johannes Diderik van der Waals", "The OpenPhysics Collaboration"]
    assert (waals.year, waals.arxiv_id, waals.doi) == (2023, None, None)
    assert (entries[3].arxiv_id, entries[3].year) == ("1810.04805", 2018)  # from container-title


def test_csl_bad_items() -> None:
    data = json.dumps([{"id": "a", "type": "article", "title": "T", "abstract": "A", "issued": {"date-parts": [["x"]]}},
                       "not an item", {"id": "b", "type": "book"}]).encode()
    items = papers_of(csl_json, data, "c.json")
    assert isinstance(items[0], Paper) and items[0].published is None
    assert items[1] == Rejected("c.json", "record 2", "record is not a JSON object")
    assert items[2] == Rejected("c.json", "record 3 (b)", "record has no title")
    assert entries_of(csl_json, data, "c.json")[2] == Rejected("c.json", "record 3 (b)",
                                                               "item has no title, arXiv id or DOI")


# ---------------------------------------------------------------- shared helpers

@pytest.mark.parametrize(("fields", "expected"), [
    (("2401.01234", "arXiv"), "2401.01234"),
    (("hep-th/9901001v2", None), "hep-th/9901001v2"),
    (("arXiv:2401.01234v3", "arxiv"), "2401.01234v3"),
    (("2401.01234", "PubMed", "https://arxiv.org/pdf/2402.00001v1"), "2402.00001v1"),
    ((None, None, "arXiv preprint arXiv:1810.04805"), "1810.04805"),
    ((None, None, "abs/1706.03762"), "1706.03762"),
    ((None, None, "10.48550/arXiv.2301.00001"), "2301.00001"),
    ((None, None, "arXiv:math.GT/0309136 [math]"), "math.GT/0309136"),
    ((None, None, "Proc. ICML 2021, pp. 1234.5678"), None),
])
def test_arxiv_id_found_wherever_references_put_it(fields: tuple, expected: str | None) -> None:
    assert arxiv_id_of(*fields) == expected


def test_doi_normalised() -> None:
    assert doi_of("https://doi.org/10.1109/CVPR.2016.90.") == "10.1109/cvpr.2016.90"
    assert doi_of("doi:10.1000/XYZ") == "10.1000/xyz"
    assert doi_of("", None, "no doi here") is None
