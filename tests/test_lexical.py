"""The BM25F lexical index: ranking, query semantics, incremental updates, persistence, crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from paperwire.index import lexical as lexical_module
from paperwire.index.lexical import LexicalIndex
from paperwire.index.query import QueryError, parse_query
from paperwire.index.snippets import snippet, snippets
from paperwire.model import Paper, make_paper
from paperwire.sources import read_source


def paper(pid: str, title: str, abstract: str = "", **kw) -> Paper:
    return Paper(id=pid, title=title, abstract=abstract, **kw)


def ids(results: list[tuple[str, float]]) -> list[str]:
    return [pid for pid, _ in results]


def search(index: LexicalIndex, text: str, limit: int = 10, **kw) -> list[str]:
    return ids(index.search(parse_query(text), limit, **kw))


@pytest.fixture
def small() -> LexicalIndex:
    index = LexicalIndex()
    index.add([
        paper("2401.00001", "Sparse attention for long documents",
              "We make transformers read long documents with sparse attention patterns.",
              authors=["Ada Lovelace", "Alan Turing"], categories=["cs.CL", "cs.LG"], published="2024-01-10"),
        paper("2401.00002", "Graph neural networks for molecules",
              "Message passing on molecular graphs predicts properties; attention is not used.",
              authors=["Marie Curie"], categories=["cs.LG"], published="2024-02-15"),
        paper("2401.00003", "Protein folding with diffusion",
              "A diffusion model folds proteins. Long range attention helps protein structure.",
              authors=["Alan Kay"], categories=["q-bio.BM"], published="2024-03-20"),
        paper("pw-0123456789ab", "Scaling laws revisited",
              "Loss follows a power law in model size and data for language models with sparse attention.",
              authors=["Grace Hopper"], categories=["stat.ML"], listed_on="2025-03-11"),
    ])
    return index


# ---------------------------------------------------------------- ranking and semantics

def test_or_semantics_ranked(small: LexicalIndex) -> None:
    found = search(small, "sparse attention")
    assert found[0] == "2401.00001"  # both words, in the title
    assert set(found) == {"2401.00001", "2401.00002", "2401.00003", "pw-0123456789ab"}
    scores = [s for _, s in small.search(parse_query("sparse attention"), 10)]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0


def test_title_hit_beats_abstract_hit() -> None:
    index = LexicalIndex()
    index.add([paper("a", "A study of things", "Here we discuss grokking in small networks at length."),
               paper("b", "Grokking in small networks", "A study of things at length, here we discuss.")])
    assert search(index, "grokking") == ["b", "a"]


def test_authors_rank_below_title_and_abstract() -> None:
    index = LexicalIndex()
    index.add([paper("a", "Other work", "Other words entirely here.", authors=["Hinton Smith"]),
               paper("b", "Other work", "This is about Hinton diagrams.", authors=["Someone Else"])])
    assert search(index, "hinton") == ["b", "a"]


def test_phrase_must_be_contiguous(small: LexicalIndex) -> None:
    assert set(search(small, '"sparse attention"')) == {"2401.00001", "pw-0123456789ab"}
    assert search(small, '"attention sparse"') == []
    assert search(small, '"long documents"') == ["2401.00001"]
    # stopwords inside a phrase are skipped, as they are in the index
    assert search(small, '"power law in model size"') == ["pw-0123456789ab"]
    # a phrase never spans the title/abstract boundary
    assert search(small, '"documents we make"') == []


def test_exclusions(small: LexicalIndex) -> None:
    assert "2401.00003" not in search(small, "attention -protein")
    assert set(search(small, "attention -\"sparse attention\"")) == {"2401.00002", "2401.00003"}
    # only exclusions: everything else, so the caller can use it as a filter
    assert set(search(small, "-diffusion", limit=10)) == {"2401.00001", "2401.00002", "pw-0123456789ab"}


def test_field_prefixes(small: LexicalIndex) -> None:
    assert search(small, "ti:attention") == ["2401.00001"]
    assert set(search(small, "abs:attention")) == {"2401.00001", "2401.00002", "2401.00003", "pw-0123456789ab"}
    assert set(search(small, "au:alan")) == {"2401.00001", "2401.00003"}
    assert search(small, 'au:"alan turing"') == ["2401.00001"]
    assert search(small, 'au:"turing alan"') == []
    assert search(small, "ti:protein abs:diffusion") == ["2401.00003"]
    assert search(small, "ti:nonexistentword") == []


def test_categories_prefix_match(small: LexicalIndex) -> None:
    assert set(search(small, "attention cat:cs")) == {"2401.00001", "2401.00002"}
    assert set(search(small, "cat:cs.LG")) == {"2401.00001", "2401.00002"}
    assert search(small, "cat:cs.CL") == ["2401.00001"]
    assert search(small, "cat:q-bio") == ["2401.00003"]
    assert search(small, "cat:c") == []  # a prefix is a whole archive, not any string prefix
    assert set(search(small, "attention", categories=["stat", "q-bio.BM"])) == {"2401.00003", "pw-0123456789ab"}


def test_dates_use_published_then_listed_on(small: LexicalIndex) -> None:
    assert set(search(small, "attention date:2024-01-01..2024-02-28")) == {"2401.00001", "2401.00002"}
    assert set(search(small, "attention submittedDate:[20240201 TO 20240401]")) == {"2401.00002", "2401.00003"}
    assert search(small, "attention date:2025..") == ["pw-0123456789ab"]
    assert search(small, "attention", date_from="2024-03-01", date_to="2024-12-31") == ["2401.00003"]
    # the query's range and the caller's range both apply
    assert search(small, "attention date:2024-01-01..2024-02-28", date_from="2024-02-01") == ["2401.00002"]


def test_id_field_and_arxiv_id_query(small: LexicalIndex) -> None:
    assert search(small, "id:2401.00002") == ["2401.00002"]
    assert search(small, "id:arXiv:2401.00002v3 molecules") == ["2401.00002"]
    assert search(small, "https://arxiv.org/abs/2401.00003v2") == ["2401.00003"]
    assert search(small, "2409.99999") == []
    hits = small.search(parse_query("arXiv:2401.00003"), 5)
    assert hits[0][0] == "2401.00003" and hits[0][1] > 0


def test_unknown_words_and_stopwords_match_nothing(small: LexicalIndex) -> None:
    assert search(small, "zyxwvut") == []
    assert search(small, "the of and") == []
    assert search(small, '"zyxwvut attention"') == []


@pytest.mark.parametrize("text", ['attention "sparse attention', "'; DROP TABLE papers; --", "title:(a OR b)*",
                                  "NEAR/3 (attention OR sparse)*", "attention^2 ~diffusion {x} /* y */",
                                  "\udcff attention", "attention\x00", "--", "a" * 999])
def test_odd_queries_give_a_sensible_result(small: LexicalIndex, text: str) -> None:
    results = small.search(parse_query(text), 10)
    assert isinstance(results, list)
    if "attention" in text:
        assert results


@pytest.mark.parametrize("text", ["", "  ", "x" * 10_240, "foo:bar attention"])
def test_bad_queries_are_query_errors(text: str) -> None:
    with pytest.raises(QueryError):
        parse_query(text)


def test_limit(small: LexicalIndex) -> None:
    assert len(search(small, "attention", limit=2)) == 2
    assert search(small, "attention", limit=0) == []


# ---------------------------------------------------------------- updates

def test_add_replaces_by_id(small: LexicalIndex) -> None:
    small.add([paper("2401.00002", "Reinforcement learning for robots", "Robots learn to walk.")])
    assert len(small) == 4
    assert search(small, "molecules") == []
    assert search(small, "robots") == ["2401.00002"]
    assert sorted(small.ids()) == ["2401.00001", "2401.00002", "2401.00003", "pw-0123456789ab"]


def test_remove(small: LexicalIndex) -> None:
    small.remove(["2401.00001", "not-there"])
    assert len(small) == 3 and not small.contains("2401.00001") and small.contains("2401.00002")
    assert "2401.00001" not in search(small, "sparse attention")
    assert search(small, "id:2401.00001") == []
    small.add([paper("2401.00001", "Sparse attention returns", "Back.")])
    assert search(small, "ti:returns") == ["2401.00001"]


def _corpus(n: int) -> list[Paper]:
    words = ("model data training attention graph learning sparse diffusion protein language vision robot "
             "policy reward loss scaling transformer kernel bayesian causal").split()
    out = []
    for i in range(n):
        pick = [words[(i * k + k * k) % len(words)] for k in range(1, 9)]
        out.append(paper(f"p{i:05d}", " ".join(pick[:3]), " ".join(pick * 2) + f" token{i % 7}",
                         authors=[f"Author {i % 5}"], categories=[("cs.LG", "stat.ML", "cs.CV")[i % 3]],
                         published=f"2024-0{1 + i % 9}-1{i % 10}"))
    return out


QUERIES = ["attention model", "sparse diffusion protein", '"graph learning"', "ti:robot -kernel", "token3",
           "cat:stat loss", "au:author reward", "causal date:2024-03-01..2024-06-30", "-language",
           "bayesian scaling transformer policy"]


def test_delta_then_compaction_equals_a_full_build() -> None:
    papers = _corpus(300)
    updated = [p.with_changes(title=p.title + " revised", abstract="entirely new text about kernels")
               for p in papers[:40:3]]
    full = LexicalIndex()
    full.add(papers[40:] + papers[1:40] + updated)
    full.remove([papers[5].id])
    full.compact()

    incremental = LexicalIndex()
    incremental.add(papers[:150])
    incremental.compact()
    for start in range(150, 300, 50):  # several delta batches on top of the base
        incremental.add(papers[start:start + 50])
    incremental.add(updated)
    incremental.remove([papers[5].id])
    assert incremental.delta_rows > 0
    assert sorted(incremental.ids()) == sorted(full.ids()) and len(incremental) == len(full)
    before = {q: search(incremental, q, limit=300) for q in QUERIES}
    incremental.compact()
    assert incremental.delta_rows == 0
    for q in QUERIES:
        expected = full.search(parse_query(q), 300)
        got = incremental.search(parse_query(q), 300)
        assert {pid: round(s, 4) for pid, s in got} == {pid: round(s, 4) for pid, s in expected}, q
        # before compaction only the length normalisation differs slightly: the same papers match
        assert set(before[q]) == set(ids(got)), q


def test_auto_compaction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexical_module, "COMPACT_MIN", 50)
    index = LexicalIndex()
    papers = _corpus(200)
    index.add(papers[:60])
    assert index.delta_rows == 0  # 60 > COMPACT_MIN: merged at once
    index.add(papers[60:70])
    assert index.delta_rows == 10
    index.add(papers[70:200])
    assert index.delta_rows == 0 and len(index) == 200


def test_idf_counts_live_papers_only() -> None:
    index = LexicalIndex()
    index.add([paper("a", "rare word here"), paper("b", "common"), paper("c", "common")])
    before = dict(index.search(parse_query("rare"), 5))["a"]
    index.add([paper("b", "rare common")])  # b now also has "rare": lower IDF for it
    after = dict(index.search(parse_query("rare"), 5))["a"]
    assert after < before


# ---------------------------------------------------------------- persistence

def test_save_load_round_trip(tmp_path: Path, small: LexicalIndex) -> None:
    small.compact()
    small.add([paper("2401.00005", "Delta paper on attention", "not yet compacted")])
    assert small.delta_rows == 1
    small.save(tmp_path / "lex")
    loaded = LexicalIndex.load(tmp_path / "lex")
    assert sorted(loaded.ids()) == sorted(small.ids()) and len(loaded) == len(small)
    for q in ["attention", '"sparse attention"', "au:alan", "cat:cs", "attention date:2024", "-protein",
              "2401.00003", "ti:delta"]:
        assert loaded.search(parse_query(q), 10) == small.search(parse_query(q), 10), q
    # the loaded index keeps working incrementally
    loaded.add([paper("2401.00001", "Replaced title", "nothing")])
    loaded.remove(["2401.00003"])
    assert search(loaded, "sparse documents") == ["pw-0123456789ab"]
    loaded.compact()
    loaded.save(tmp_path / "lex")
    again = LexicalIndex.load(tmp_path / "lex")
    assert sorted(again.ids()) == ["2401.00001", "2401.00002", "2401.00005", "pw-0123456789ab"]


def test_an_index_saved_without_champions_gets_them_on_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Indexes saved before champion lists existed load with the same champions and rankings."""
    import json

    monkeypatch.setattr(lexical_module, "CHAMPIONS", 5)
    index = LexicalIndex()
    index.add(_corpus(300))
    index.compact()
    index.save(tmp_path / "lex")
    header_path = tmp_path / "lex" / "header.json"
    header = json.loads(header_path.read_text())
    for name in ("base_champ_indptr", "base_champ_rows"):
        (tmp_path / "lex" / header["files"].pop(name)).unlink()
    header_path.write_text(json.dumps(header))
    loaded = LexicalIndex.load(tmp_path / "lex")
    base, old = loaded._base, index._base
    assert len(base.champ_rows) and (base.champ_rows == old.champ_rows).all()
    assert (base.champ_indptr == old.champ_indptr).all()
    for q in ["attention model token3", "bayesian scaling transformer policy token5", "robot reward kernel data"]:
        assert loaded.search(parse_query(q), 7) == index.search(parse_query(q), 7), q


def test_load_rejects_missing_or_foreign_index(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no lexical index"):
        LexicalIndex.load(tmp_path)
    (tmp_path / "header.json").write_text('{"format": 99, "kind": "paperwire-lexical"}')
    with pytest.raises(ValueError, match="rebuild"):
        LexicalIndex.load(tmp_path)


def test_old_files_are_removed_after_save(tmp_path: Path, small: LexicalIndex) -> None:
    small.save(tmp_path)
    first = {p.name for p in tmp_path.iterdir()}
    small.save(tmp_path)
    second = {p.name for p in tmp_path.iterdir()}
    assert len(first) == len(second) and first != second


def test_crash_inside_save_keeps_previous_index(tmp_path: Path, small: LexicalIndex,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    small.save(tmp_path)
    small.add([paper("2401.00009", "Something new", "text")])

    def crash(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(lexical_module.os, "replace", crash)  # all new files written, header not switched
    with pytest.raises(OSError):
        small.save(tmp_path)
    monkeypatch.undo()
    loaded = LexicalIndex.load(tmp_path)
    assert not loaded.contains("2401.00009") and len(loaded) == 4
    assert search(loaded, "sparse attention")[0] == "2401.00001"
    loaded.save(tmp_path)  # the next save cleans up the leftovers
    assert not list(tmp_path.glob("*.tmp"))


_SAVER = textwrap.dedent("""
    import sys
    from paperwire.index.lexical import LexicalIndex
    from paperwire.model import Paper
    index = LexicalIndex()
    index.add([Paper(id=f"n{i}", title=f"paper number {i} about kernels", abstract="words " * 100)
               for i in range(8000)])
    index.compact()
    print("ready", flush=True)
    while True:
        index.save(sys.argv[1])
""")


@pytest.mark.slow
def test_sigkill_during_save_leaves_a_loadable_index(tmp_path: Path, small: LexicalIndex) -> None:
    small.save(tmp_path)
    for delay in (0.05, 0.2, 0.5):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                                cwd=Path(__file__).resolve().parents[1])
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        loaded = LexicalIndex.load(tmp_path)  # either the old index or a complete new one
        assert len(loaded) in (4, 8000)
        assert search(loaded, "kernels" if len(loaded) == 8000 else "sparse attention")


# ---------------------------------------------------------------- the sample corpus

@pytest.fixture(scope="module")
def seeds_index(seeds: list[Path]) -> tuple[LexicalIndex, dict[str, Paper]]:
    papers: dict[str, Paper] = {}
    for path in seeds:
        for item in read_source(path, "hf-page"):
            if isinstance(item, Paper):
                papers.setdefault(item.id, item)
    index = LexicalIndex()
    index.add(list(papers.values()))
    return index, papers


@pytest.fixture(scope="module")
def seeds() -> list[Path]:
    from paperwire.cli import seed_paths

    return list(seed_paths())


def _id_by_title(papers: dict[str, Paper], fragment: str) -> str:
    return next(p.id for p in papers.values() if fragment.lower() in p.title.lower())


def test_sample_corpus(seeds_index: tuple[LexicalIndex, dict[str, Paper]]) -> None:
    index, papers = seeds_index
    assert len(index) == len(papers) == 407
    target = _id_by_title(papers, "Neural Collapse in Deep Linear Networks")
    assert target in search(index, "neural collapse deep linear networks imbalanced", limit=3)
    grok = search(index, "ti:grokking", limit=50)
    assert grok and all("grok" in papers[p].title.lower() for p in grok)
    excluded = search(index, "grokking -memorization", limit=100)
    assert excluded and all("memoriz" not in (papers[p].title + papers[p].abstract).lower() for p in excluded)
    phrase = search(index, '"weight decay"', limit=100)
    assert phrase and all("weight decay" in (papers[p].title + " " + papers[p].abstract).lower() for p in phrase)
    listed = search(index, "transformer date:2025-03-11..2025-03-11", limit=100)
    assert listed and all(papers[p].listed_on == "2025-03-11" for p in listed)


def test_snippet_shows_the_matching_window() -> None:
    abstract = ("Intro words " * 40) + "the grokking phenomenon appears after long training with weight decay. " + (
        "Closing words " * 40)
    p = make_paper(title="T", abstract=abstract, source="test")
    text = snippet(p, parse_query("grokking weight decay"), width=120)
    assert "grokking" in text and "weight decay" in text
    assert text.startswith("…") and text.endswith("…") and len(text) <= 122
    assert snippet(p, parse_query("zzz"), width=50).startswith("Intro words")
    short = make_paper(title="T", abstract="Short abstract.", source="test")
    assert snippet(short, parse_query("anything")) == "Short abstract."
    # cuts fall between words
    body = text.strip("…")
    assert body.split()[0] in abstract.split() and body.split()[-1] in abstract.split()


def test_snippets_of_many_abstracts_at_once() -> None:
    filler = "Opening words about nothing in particular. " * 12
    texts = [filler + "Grokking follows weight decay. " + filler,
             "Short: grokking.",
             "\n  " + filler.replace(" ", "\t ", 5) + "Late grokking\u2003after weight\ndecay. " + filler + "  ",
             filler * 2,
             filler + "GROKKING, (grokking) and grokked." + filler]
    papers = [Paper(id=f"s{i}", title="T", abstract=text) for i, text in enumerate(texts)]
    query = parse_query("grokking weight decay")
    together = snippets(papers, query, width=100)
    assert together == [snippet(p, query, width=100) for p in papers]
    assert together[1] == "Short: grokking."
    assert "Grokking follows weight decay." in together[0] and together[0].startswith("…")
    assert "grokking\u2003after weight\ndecay." in together[2]
    assert together[3] == texts[3][:together[3].index("…")] + "…" and not together[3].startswith("…")
    assert "GROKKING, (grokking) and grokked." in together[4]
    assert snippets(papers, None, width=100)[3] == together[3]


def test_snippets_from_many_threads_while_new_words_arrive() -> None:
    import sys
    from concurrent.futures import ThreadPoolExecutor

    def abstract(t: int, i: int) -> str:
        # spans no other abstract has, one of them holding the query word: every call numbers new spans
        # while other threads look up the spans that hold it
        return " ".join(f"w{t}x{i}x{k}" for k in range(60)) + f" grokking-{t}x{i} " + " ".join(
            f"v{t}y{i}y{k}" for k in range(60))

    def run(t: int) -> bool:
        papers = [Paper(id=f"t{t}-{i}", title="T", abstract=abstract(t, i)) for i in range(20)]
        texts = snippets(papers, parse_query("grokking"), width=200)
        return all(f"grokking-{t}x{i}" in text for i, text in enumerate(texts))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(run, range(64)))
    finally:
        sys.setswitchinterval(interval)


def test_pruned_top_k_equals_exhaustive_ranking() -> None:
    index = LexicalIndex()
    index.add(_corpus(300))
    index.add(_corpus(320)[300:])  # some rows in the delta too
    for q in ["attention model token3", "bayesian scaling transformer policy token5", "robot reward kernel data",
              "token1 token2 graph", "model -causal data"]:
        top = index.search(parse_query(q), 5)
        everything = index.search(parse_query(q), 10_000)
        assert [round(s, 4) for _, s in top] == [round(s, 4) for _, s in everything[:5]], q
        assert set(ids(top)) <= {pid for pid, s in everything if s >= everything[4][1] - 1e-4}, q


def test_scores_of_given_papers_equal_their_search_scores() -> None:
    index = LexicalIndex()
    index.add(_corpus(300))
    index.add(_corpus(320)[300:])  # some rows in the delta too
    index.remove(["p00007"])
    for q in ["attention model token3", "bayesian scaling transformer policy", "robot reward kernel data"]:
        everything = dict(index.search(parse_query(q), 10_000))
        wanted = ["p00001", "p00007", "p00150", "p00310", "no-such-paper", *list(everything)[:5]]
        scores = index.scores(parse_query(q), wanted)
        assert list(scores) == list(dict.fromkeys(wanted))
        for pid in wanted:
            assert scores[pid] == pytest.approx(everything.get(pid, 0.0), rel=1e-5, abs=1e-6), (q, pid)
    assert index.scores(parse_query("p00007"), ["p00007"]) == {"p00007": 0.0}


@pytest.mark.parametrize("champions", [3, 40, 10_000])
def test_maxscore_equals_scoring_every_paper(monkeypatch: pytest.MonkeyPatch, champions: int) -> None:
    """The pruned ranking (champion threshold, then MaxScore) against the score of every paper, on a
    Zipf-like vocabulary where common words have long lists; with removed papers, a delta and exclusions.
    Few champions per word make the first threshold weak, many make it the whole list."""
    import numpy as np

    monkeypatch.setattr(lexical_module, "CHAMPIONS", champions)
    rng = np.random.default_rng(champions)
    vocab = [f"w{i}" for i in range(400)]
    probs = 1.0 / np.arange(1, len(vocab) + 1)
    probs /= probs.sum()

    def words(k: int) -> str:
        return " ".join(rng.choice(vocab, k, p=probs))

    papers = [paper(f"p{i:05d}", words(int(rng.integers(3, 9))), words(int(rng.integers(20, 80))))
              for i in range(1500)]
    index = LexicalIndex()
    index.add(papers[:1300])
    index.compact()
    index.add(papers[1300:])  # delta rows
    index.remove([f"p{i:05d}" for i in range(0, 1500, 37)])
    every_id = [p.id for p in papers]
    for q in range(60):
        text = " ".join(rng.choice(vocab[:120], int(rng.integers(1, 7)), replace=False))
        if q % 5 == 0:
            text += f" -{vocab[int(rng.integers(0, 20))]}"
        query = parse_query(text)
        limit = int(rng.choice([1, 5, 10, 40]))
        got = index.search(query, limit)
        truth = index.scores(query, every_id)
        excluded = {p.id for p in papers for word in query.excluded if word in (p.title + " " + p.abstract).split()}
        ranked = sorted((s for pid, s in truth.items() if s > 0 and pid not in excluded and index.contains(pid)),
                        reverse=True)
        assert [s for _, s in got] == pytest.approx(ranked[:limit], rel=1e-5), text
        for pid, s in got:
            assert truth[pid] == pytest.approx(s, rel=1e-5) and pid not in excluded and index.contains(pid)
