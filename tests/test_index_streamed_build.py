"""A big index build streams through files (postings sorted per block of rows, then merged a range of
terms at a time) instead of holding the corpus's postings in memory: the index it makes equals, array
for array, the one built in memory in one go, and so do its search results."""

from __future__ import annotations

import gc
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_home

from paperwire.index import engine as engine_module
from paperwire.index import lexical as lexical_module
from paperwire.index import open_index
from paperwire.index.engine import index_dir
from paperwire.index.lexical import LexicalIndex
from paperwire.index.query import parse_query
from paperwire.model import Paper
from paperwire.store import open_store

SEGMENT_ARRAYS = ("tokens", "offsets", "cats", "cat_offsets", "indptr", "indices", "weights", "masks",
                  "max_weights", "champ_indptr", "champ_rows", "cat_indptr", "cat_rows")
QUERIES = ["w1 w2", "w5 w300 w12", '"w1 w2"', "cat:cs w3", "ti:w4 -w7", "au:a3 w9", "w2 date:2024-03-01..2024-06-30",
           "w40 w41 w42 w43"]


def _papers(n: int, seed: int = 3) -> list[Paper]:
    """Papers over a Zipf-like vocabulary: a few terms in most papers (long posting lists with
    champions), a long tail of rare ones."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = [f"w{min(int(rng.paretovariate(0.9)), 5000)}" for _ in range(rng.randint(5, 90))]
        out.append(Paper(id=f"p{i:05d}", title=" ".join(words[:6]), abstract=" ".join(words),
                         authors=[f"A{i % 13} B{i % 7}"],
                         categories=[("cs.LG", "cs.CL", "stat.ML")[i % 3], *(["math.ST"] if i % 5 == 0 else [])],
                         published=f"2024-0{1 + i % 9}-1{i % 10}"))
    return out


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every merge streams, in many blocks of rows and many ranges of terms."""
    monkeypatch.setattr(lexical_module, "STREAM_ROWS", 1)
    monkeypatch.setattr(lexical_module, "MERGE_BLOCK_ROWS", 97)
    monkeypatch.setattr(lexical_module, "MERGE_SLICE_POSTINGS", 700)
    monkeypatch.setattr(lexical_module, "SEAL_ROWS", 64)


def _assert_same_segments(a: LexicalIndex, b: LexicalIndex) -> None:
    for name in SEGMENT_ARRAYS:
        x, y = getattr(a._base, name), getattr(b._base, name)
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), name
    assert a._ids == b._ids and np.array_equal(a._df, b._df) and np.array_equal(a._avg_len, b._avg_len)
    assert np.array_equal(a._days, b._days) and a._terms == b._terms


def _assert_same_results(a: LexicalIndex, b: LexicalIndex) -> None:
    for q in QUERIES:
        assert a.search(parse_query(q), 50) == b.search(parse_query(q), 50), q


def test_streamed_merge_equals_the_build_in_memory(tmp_path: Path, small_blocks: None) -> None:
    papers = _papers(3000)
    updated = [p.with_changes(title="w1 revised", abstract="w2 w3 entirely new w4") for p in papers[:300:7]]
    in_memory = LexicalIndex()  # no spill directory: merges run in memory
    in_memory.add(papers)
    in_memory.add(updated)
    in_memory.remove([papers[11].id, papers[2500].id])
    in_memory.compact()

    streamed = LexicalIndex()
    streamed.spill_dir = tmp_path
    with streamed.bulk():
        for lo in range(0, 3000, 250):
            streamed.add(papers[lo:lo + 250])
        streamed.add(updated)
        streamed.remove([papers[11].id, papers[2500].id])
    assert streamed.delta_rows == 0 and streamed._base.files  # merged once, through files
    assert len(in_memory._base.champ_rows) > 0  # long posting lists had champions to pick
    _assert_same_segments(in_memory, streamed)
    _assert_same_results(in_memory, streamed)


def test_a_streamed_base_merges_again_and_survives_save_and_load(tmp_path: Path, small_blocks: None) -> None:
    papers = _papers(2000, seed=5)
    expected = LexicalIndex()
    expected.add(papers[:1200])
    expected.add(papers[1200:])
    expected.remove([papers[3].id])
    expected.compact()

    index = LexicalIndex()
    index.spill_dir = tmp_path / "spill"
    index.add(papers[:1200])
    index.compact()
    first_spill = index._base.files["tokens"].parent
    index.add(papers[1200:])
    index.remove([papers[3].id])
    index.compact()  # the memory-mapped base and the delta, streamed again
    _assert_same_segments(expected, index)

    index.save(tmp_path / "lex")
    header_files = {p.name for p in (tmp_path / "lex").iterdir()}
    saved = next(name for name in header_files if name.startswith("base_indices."))
    # the spilled file itself became the saved one (a link), not a copy made through memory
    assert os.stat(tmp_path / "lex" / saved).st_ino == os.stat(index._base.files["indices"]).st_ino
    loaded = LexicalIndex.load(tmp_path / "lex")
    _assert_same_results(expected, loaded)
    index.add(papers[:5])  # replaced: the delta's terms and the base's dead rows
    index.save(tmp_path / "lex")
    _assert_same_results(index, LexicalIndex.load(tmp_path / "lex"))

    # each spill directory goes when its segment does
    gc.collect()
    assert not first_spill.exists()
    del index
    gc.collect()
    assert list((tmp_path / "spill").iterdir()) == []


def _home_without_index(seed_home: Path, target: Path) -> Path:
    home = copy_home(seed_home, target)
    for path in index_dir(home).iterdir():
        if path.name.startswith("gen-") or path.name == "manifest.json":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return home


def test_home_index_built_in_small_blocks_equals_one_built_in_one_go(seed_home: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    one_go = _home_without_index(seed_home, tmp_path / "one")
    blocks = _home_without_index(seed_home, tmp_path / "blocks")
    # a spill left by a build that was killed (its process is gone) is cleared by the next build
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    stale = index_dir(blocks) / f"spill-{int(dead.stdout)}-x"
    stale.mkdir()
    (stale / "tokens.npy").write_bytes(b"left over")
    mine = index_dir(blocks) / f"spill-{os.getpid()}-y"
    mine.mkdir()
    store_a, store_b = open_store(one_go), open_store(blocks)
    monkeypatch.setattr(lexical_module, "COMPACT_MIN", 50)  # both builds end with a merge into the base
    try:
        expected = open_index(one_go, store_a, embedder="minilm")
        assert expected.lexical.delta_rows == 0 and not any(index_dir(one_go).glob("spill-*"))
        monkeypatch.setattr(engine_module, "UPDATE_BATCH", 37)
        monkeypatch.setattr(lexical_module, "STREAM_ROWS", 1)
        monkeypatch.setattr(lexical_module, "MERGE_BLOCK_ROWS", 50)
        monkeypatch.setattr(lexical_module, "MERGE_SLICE_POSTINGS", 500)
        monkeypatch.setattr(lexical_module, "SEAL_ROWS", 16)
        built = open_index(blocks, store_b, embedder="minilm")
        assert not stale.exists() and mine.exists()
        assert any(p.name.startswith("spill-") for p in index_dir(blocks).iterdir() if p != mine)  # it streamed
        _assert_same_segments(expected.lexical, built.lexical)
        assert expected.dense.ids() == built.dense.ids()
        assert np.array_equal(expected.all_vectors(), built.all_vectors())
        queries = ["sparse attention long context", "diffusion models for video", "robot policy learning",
                   '"language models"', "cat:cs.CV segmentation", "reinforcement -robot"]
        for mode in ("hybrid", "lexical", "semantic"):
            for q in queries:
                got = [(h.id, h.score, h.snippet) for h in built.search(q, mode=mode, limit=20)]
                assert got == [(h.id, h.score, h.snippet) for h in expected.search(q, mode=mode, limit=20)], (mode, q)
        some = expected.all_ids()[5]
        assert [h.id for h in built.similar(some)] == [h.id for h in expected.similar(some)]
        reopened = open_index(blocks, store_b)
        for q in queries:
            assert [(h.id, h.score) for h in reopened.search(q)] == [(h.id, h.score) for h in expected.search(q)], q
        assert reopened.verify().ok
    finally:
        store_a.close()
        store_b.close()
