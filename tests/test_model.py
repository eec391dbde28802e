"""Paper ids, title ids, text clean-up and link extraction."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperwire.model import (
    _URL,
    InvalidPaperId,
    _url_matches,
    canonical_id,
    clean_text,
    collapse_whitespace,
    extract_links,
    make_paper,
    merge_papers,
    normalise_title,
    parse_arxiv_id,
    title_id,
)


@pytest.mark.parametrize("text, expected_id, version", [
    ("2401.01234", "2401.01234", None),
    ("2401.01234v2", "2401.01234", 2),
    ("arXiv:2401.01234", "2401.01234", None),
    ("arxiv:2401.01234v12", "2401.01234", 12),
    ("https://arxiv.org/abs/2401.01234v3", "2401.01234", 3),
    ("http://arxiv.org/abs/2401.01234", "2401.01234", None),
    ("https://arxiv.org/pdf/2401.01234v1.pdf", "2401.01234", 1),
    ("https://arxiv.org/pdf/2401.01234", "2401.01234", None),
    ("https://export.arxiv.org/abs/2401.01234v2", "2401.01234", 2),
    ("arxiv.org/abs/2401.01234v2", "2401.01234", 2),
    ("  2401.01234v2\n", "2401.01234", 2),
    ("0704.0001", "0704.0001", None),
    ("hep-th/9901001", "hep-th/9901001", None),
    ("hep-th/9901001v1", "hep-th/9901001", 1),
    ("math.GT/0309136v2", "math.GT/0309136", 2),
    ("math.gt/0309136", "math.GT/0309136", None),
    ("https://arxiv.org/abs/math.GT/0309136v2", "math.GT/0309136", 2),
])
def test_arxiv_id_forms_normalise_with_version_kept(text: str, expected_id: str, version: int | None) -> None:
    parsed = parse_arxiv_id(text)
    assert parsed is not None, text
    assert (parsed.id, parsed.version) == (expected_id, version)
    assert canonical_id(text) == expected_id
    assert str(parsed) == expected_id + (f"v{version}" if version else "")


@pytest.mark.parametrize("text", ["", "2401", "2401.012", "2401.012345", "hello world", "pw-xyz",
                                  "https://example.org/abs/2401.01234", "2401.01234v", "hep-th/99"])
def test_not_arxiv_ids(text: str) -> None:
    assert parse_arxiv_id(text) is None
    with pytest.raises(InvalidPaperId):
        canonical_id(text)


def test_all_forms_of_one_paper_are_one_record() -> None:
    forms = ["2401.01234", "2401.01234v2", "arXiv:2401.01234", "https://arxiv.org/abs/2401.01234v3",
             "https://arxiv.org/pdf/2401.01234v1.pdf"]
    papers = [make_paper(title="T", abstract="A", arxiv_id=f, source="test") for f in forms]
    assert {p.id for p in papers} == {"2401.01234"}
    assert [p.version for p in papers] == [None, 2, None, 3, 1]


def test_title_ids_are_stable_and_ignore_case_spacing_punctuation_accents() -> None:
    base = title_id("Neural Collapse in Deep Linear Networks")
    assert base.startswith("pw-") and len(base) == len("pw-") + 12
    assert base == "pw-" + __import__("hashlib").sha1(b"neural collapse in deep linear networks").hexdigest()[:12]
    for variant in ["neural  collapse in deep linear networks", "Neural Collapse in Deep Linear Networks.",
                    " NEURAL COLLAPSE IN DEEP\nLINEAR NETWORKS "]:
        assert title_id(variant) == base
    assert title_id("Neural Collapse in Deep Nonlinear Networks") != base
    assert normalise_title("Héllo Wörld: {\\em LaTeX}") == "hello world latex"
    assert canonical_id(base) == base
    paper = make_paper(title="Neural Collapse in Deep Linear Networks", abstract="x", source="t")
    assert paper.id == base and paper.arxiv_id is None


@pytest.mark.parametrize("raw, clean", [
    (r"improves accuracy by 12\% on", "improves accuracy by 12% on"),
    (r"a {\em very} simple method", "a very simple method"),
    (r"{\bf bold} and \emph{emphasis}", "bold and emphasis"),
    ("an ell_2 penalty", "an ℓ₂ penalty"),
    ("in mathcal{O}(n log n) time", "in O(n log n) time"),
    ("$x^2$ grows", "x² grows"),
    (r"$\alpha$-divergence with $\epsilon_1$", "α-divergence with ε₁"),
    (r"R\&D and \#tags", "R&D and #tags"),
    ("  spaced\n\tout   text ", "spaced out text"),
    ("plain text stays plain", "plain text stays plain"),
    ("snake_case_name and AUC_ROC but x^y", "snake_case_name and AUC_ROC but xʸ"),
    # the text form of math: Unicode scripts where they exist, the hyphen after math kept, no braces left
    (r"$\ell_1$-regularised $\mathcal{O}(n^{-1/2})$", "ℓ₁-regularised O(n^(-1/2))"),
    (r"$\tilde\Theta(d^{k})$ and $\sigma_{\max}^2$", "Θ̃(dᵏ) and σ_max²"),
    (r"$\mathbb{R}^d \rightarrow \mathbb{R}$, $\sqrt[3]{\log n}$, $\frac{a+b}{2}$", "ℝᵈ → ℝ, ∛(log n), (a+b)/2"),
    ("costs $5 and $10", "costs $5 and $10"),
    (r"as in prior work~\citep{nichani2023provable}, \method{} wins", "as in prior work, method wins"),
    (r"na\"{\i}ve, ``quoted'' and (~50%)", "naïve, “quoted” and (∼50%)"),
    # names inside words and braces after other words are left alone (the cheap checks in front of the regexes)
    ("a well modelled parallel cell with alphabets", "a well modelled parallel cell with alphabets"),
    ("ell at the start and sigma_1 later", "ℓ at the start and σ₁ later"),
    # braces group in LaTeX; literal ones are written \{ \}
    ("a set {a, b} and textbf{y} and \\{c\\}", "a set a, b and y and {c}"),
    ("", ""),
])
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_make_paper_keeps_raw_text_and_cleans_display_text() -> None:
    paper = make_paper(title=r"Fast {\em Sparse}  Attention", abstract=r"Cuts cost by 40\%.", source="t")
    assert paper.title == "Fast Sparse Attention" and paper.raw_title == r"Fast {\em Sparse} Attention"
    assert paper.abstract == "Cuts cost by 40%." and paper.raw_abstract == r"Cuts cost by 40\%."


def test_extract_links_strips_trailing_punctuation() -> None:
    text = ("Code is at https://github.com/org/repo. Project page (https://example.org/proj), "
            "data: https://huggingface.co/datasets/x/y; see also www.example.com/demo! "
            "and github.com/org/other, and \"https://quoted.example.org/a\". "
            "Wiki https://en.wikipedia.org/wiki/Foo_(bar) and again https://github.com/org/repo.")
    assert extract_links(text) == [
        "https://github.com/org/repo",
        "https://example.org/proj",
        "https://huggingface.co/datasets/x/y",
        "https://www.example.com/demo",
        "https://github.com/org/other",
        "https://quoted.example.org/a",
        "https://en.wikipedia.org/wiki/Foo_(bar)",
    ]
    assert extract_links("no links here, e.g. 3.5 and v1.2.") == []
    assert make_paper(title="t", abstract=text, source="s").links[0] == "https://github.com/org/repo"


def test_merge_newer_version_replaces_text_keeps_earliest_days() -> None:
    v1 = make_paper(title="Old title", abstract="Old abstract", arxiv_id="2401.01234v1", source="s",
                    published="2024-01-02", updated="2024-01-02", listed_on="2024-01-03", upvotes=5)
    v2 = make_paper(title="New title", abstract="New abstract", arxiv_id="2401.01234v2", source="s",
                    published="2024-02-01", updated="2024-02-01", listed_on="2024-02-02", upvotes=2)
    merged = merge_papers(v1, v2)
    assert (merged.title, merged.abstract, merged.version) == ("New title", "New abstract", 2)
    assert (merged.published, merged.listed_on, merged.upvotes) == ("2024-01-02", "2024-01-03", 5)
    # an older capture arriving later changes no text
    assert merge_papers(merged, v1).title == "New title"
    assert merge_papers(merged, v1) == merged


_URL_PIECES = ["http://", "https://", "HTTP://", "www.", "Www.", "github.com/", "GitHub.com/", "x.org", "a",
               ".", "/", "(", ")", " ", '"', "é", "İ", "\n"]


@given(st.lists(st.sampled_from(_URL_PIECES), max_size=30).map("".join))
@settings(max_examples=500, deadline=None)
def test_url_matches_are_the_patterns_own_matches(text: str) -> None:
    # Links are found by trying the URL pattern only where a possible start was seen; that must find
    # exactly what scanning every position with the pattern finds.
    found = [m.span() for m in _url_matches(text, text.lower())]
    assert found == [m.span() for m in _URL.finditer(text)]


_SPACE_PIECES = [" ", "  ", "\n", "\r\n", "\t", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u2003", "a",
                 "word", "é", ".", ""]


@given(st.lists(st.sampled_from(_SPACE_PIECES), max_size=30).map("".join))
@settings(max_examples=500, deadline=None)
def test_collapse_whitespace_is_split_and_join(text: str) -> None:
    # The fast path (ASCII text broken only by newlines and single spaces) and the general one agree
    # with str.split on every kind of whitespace, at the ends and in runs.
    assert collapse_whitespace(text) == " ".join(text.split())


def test_collapse_whitespace_of_an_abstract_as_the_snapshot_writes_it() -> None:
    raw = "  We study sparse\nexperts at scale.\nResults  improve\n"
    assert collapse_whitespace(raw) == "We study sparse experts at scale. Results improve"
    assert collapse_whitespace("line one\nline two\n") == "line one line two"


@pytest.mark.parametrize("hostile", [
    "{" * 20000 + "x" + "}" * 20000, "$" + "{" * 5000 + "x$", "x^{" * 3000, "\\frac" * 3000, "\\sqrt" * 3000,
    "\\tilde" * 5000, "\\emph" * 3000, "\\emph{" * 3000, "$x^{" * 2000 + "$", "\\href{" * 2000,
    "x_\\frac" * 2000, "\\textbf{\\frac{" * 2000,
])
def test_deeply_nested_latex_is_read_without_recursing_deeply(hostile: str) -> None:
    from paperwire.web.views import markdown_text, math_html

    assert len(clean_text(hostile)) <= len(hostile)
    assert math_html(hostile) is not None and markdown_text(hostile) is not None
