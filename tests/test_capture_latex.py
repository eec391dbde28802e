"""LaTeX that the sample page captures lost, repaired at ingest: every sample paper reads without debris,
and words inside formulas are still found by search."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from paperwire.index.lexical import LexicalIndex
from paperwire.index.query import parse_query
from paperwire.model import Paper, clean_text, link_spans, make_paper
from paperwire.sources import hf_page
from paperwire.sources.capture_latex import repair

# What the issue found in the captures, and what readers should see instead.
DEBRIS = re.compile(r"\b(rightarrow|leftarrow|circ|widetilde|mathcal|mathbb|mathbf|mathrm|ell_|frac|sqrt|cdot|leq|"
                    r"geq|infty|emph|textbf)\b|\{\}|~|\\|\$")


def sample_papers(seeds: list[Path]) -> list[Paper]:
    papers: dict[str, Paper] = {}
    for path in seeds:
        with open(path, "rb") as stream:
            for item in hf_page.parse(stream, str(path)):
                if isinstance(item, Paper):
                    papers[item.id] = item
    return list(papers.values())


def without_urls(text: str) -> str:
    for start, end, _ in reversed(link_spans(text)):
        text = text[:start] + text[end:]
    return text


def test_no_sample_paper_keeps_latex_debris(seeds: list[Path]) -> None:
    papers = sample_papers(seeds)
    assert len(papers) == 407
    for paper in papers:
        for name in ("title", "abstract"):
            text = without_urls(getattr(paper, name))
            found = DEBRIS.search(text)
            assert found is None, f"{paper.id} {name}: {text[max(0, found.start() - 40):found.end() + 40]!r}"
            depth = 0
            for ch in text:
                depth += {"{": 1, "}": -1}.get(ch, 0)
                assert depth >= 0, f"{paper.id} {name}: a }} without its {{"
            assert depth == 0, f"{paper.id} {name}: a {{ without its }}"


@pytest.mark.parametrize("capture, shown", [
    ("the form h = g circ p where p : R^d rightarrow R is", "the form h = g ∘ p where p : Rᵈ → R is"),
    ("a sample size of widetildeTheta(d^4). Our proof", "a sample size of Θ̃(d⁴). Our proof"),
    ("which require widetilde Theta(d^{kq}) samples", "which require Θ̃(d^kq) samples"),
    ("an improvement over prior work~nichani2023provable requiring", "an improvement over prior work requiring"),
    (r"abbreviated as \method{}. Our", "abbreviated as method. Our"),
    (r"failure modes: {\em entropy collapse} in", "failure modes: entropy collapse in"),
    (r"improves 28.4\% to 43.9\% on", "improves 28.4% to 43.9% on"),
    ("have a small ell_2-norm and", "have a small ℓ₂-norm and"),
    ("a bound of mathcal{O}(min{S, T/(n T)}) on n tasks", "a bound of O(min{S, T/(n T)}) on n tasks"),
    ("defined by mathcal O_i(u) = sigmaleft( sum_j mathcal W_{ij} u + mathcal B_{ij}right). Here",
     "defined by Oᵢ(u) = σ( ∑ⱼ Wᵢⱼ u + Bᵢⱼ). Here"),
    ("where (xi cdot 100%) of labels", "where (ξ · 100%) of labels"),
    ("around 5 times 10^5 additional", "around 5 × 10⁵ additional"),
    ("a dataset X subset R^d, output", "a dataset X ⊂ Rᵈ, output"),
    ("bounded above by o(sqrt[3]{log n}) then", "bounded above by o(∛(log n)) then"),
    ("ReLU$^2$ Wins", "ReLU² Wins"),
    ("f(x)=xtanh(softplus(x)).", "f(x)=x tanh(softplus(x))."),
    # words stay words: English that happens to be a command's name, and addresses
    ("in this case the sharp increase of partial labels from 6 to 10 times",
     "in this case the sharp increase of partial labels from 6 to 10 times"),
    ("the Delta Activation Layer and a circle", "the Delta Activation Layer and a circle"),
    ("code at https://github.com/mohofar/Beta-Rank and https://www.robots.ox.ac.uk/~vgg/x",
     "code at https://github.com/mohofar/Beta-Rank and https://www.robots.ox.ac.uk/~vgg/x"),
])
def test_capture_repairs(capture: str, shown: str) -> None:
    assert clean_text(repair(capture)) == shown


def test_words_inside_formulas_are_found_by_search(seeds: list[Path]) -> None:
    papers = sample_papers(seeds)
    mish = next(p for p in papers if "softplus" in p.abstract)
    assert "x tanh(softplus(x))" in mish.abstract  # the capture had "xtanh", which no query for tanh matched
    written = make_paper(title="Kernel attention", source="t",
                         abstract=r"We replace $\mathrm{softmax}(QK^\top/\sqrt{d})$ by a random-feature kernel "
                                  r"and bound the error by $\tilde{O}(\epsilon^{-2})$ samples.")
    index = LexicalIndex()
    index.add([*papers, written])
    assert mish.id in [pid for pid, _ in index.search(parse_query("tanh"), 50)]
    assert [pid for pid, _ in index.search(parse_query("softmax kernel"), 3)][0] == written.id
