"""Field-weighted BM25 (BM25F) over papers, as sparse term->paper postings with precomputed weights.

Layout. Every paper is a row. Rows 0..base_rows-1 form the base segment: CSC postings (for each term
the sorted rows that contain it, a float32 BM25F weight and a uint8 mask of the fields it occurs in).
Newer rows form the delta segment, rebuilt from its token arrays when it changed; it is merged into
the base by compact(), automatically when it outgrows a fraction of the base. A replaced or removed
paper's row is masked dead, never edited in place. Document frequencies are kept over live rows
of both segments, so IDF (applied at query time) is the same as after a full build.

A big merge (the first build of a large home, the compaction of a large index) goes through files
next to the index a block of rows at a time (_merge_streamed): its memory does not grow with the
corpus's postings, and its result is the same, array for array, as a merge in memory.

Each row also keeps its token ids per field (title, abstract, authors). They are the source for
rebuilding postings without re-tokenising, and phrase queries check contiguity against them.
"""

from __future__ import annotations

import bisect
import json
import os
import secrets
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paperwire.index.query import ParsedQuery, QueryError, tokenize
from paperwire.model import InvalidPaperId, Paper, canonical_id

FORMAT_VERSION = 1
TITLE, ABSTRACT, AUTHORS = 0, 1, 2
NFIELDS = 3
FIELD_OF = {"ti": TITLE, "abs": ABSTRACT, "au": AUTHORS}
# Tokens kept per field: bounds the per-field term counts packed into 10-bit lanes below.
FIELD_LIMITS = (100, 1000, 200)
_LANE_BITS = 10
# The delta is merged into the base once it holds this fraction of the base (and at least COMPACT_MIN rows).
COMPACT_FRACTION = 0.25
COMPACT_MIN = 2000
_CHUNK_ROWS = 50_000
# Per term, the rows where it weighs most are kept apart (its champions): scoring them first gives
# MaxScore a threshold before any long posting list is read.
CHAMPIONS = 256
# A phrase check reads its candidates' tokens with a gather that costs about this many times a plain
# pass over the same number of tokens; past that share of a segment, one pass over all its tokens wins.
SCAN_COST = 8
_SCAN_SLICE = 1 << 22
# A merge of at least this many rows (the first build of a big corpus, a compaction of a big index) goes
# through files next to the index instead of memory: the rows' postings are sorted a block at a time and
# spilled, then assembled term range by term range. Memory then holds one block's sort and one range of
# the output, not the whole corpus's postings (at 1M papers a merge in memory peaked at several GB).
STREAM_ROWS = 200_000
MERGE_BLOCK_ROWS = 32_768
MERGE_SLICE_POSTINGS = 1 << 23
# Rows added one at a time are packed into blocks of this many (a few arrays per block, not per row).
SEAL_ROWS = 8192


@dataclass(frozen=True)
class Bm25Params:
    """BM25F: per-field weights and length normalisation, one saturation k1. Chosen on the tune split."""

    k1: float = 1.2
    b: tuple[float, float, float] = (0.5, 0.75, 0.5)
    weights: tuple[float, float, float] = (3.0, 1.0, 0.5)
    stem: bool = True

    @classmethod
    def from_dict(cls, data: dict) -> Bm25Params:
        return cls(float(data["k1"]), tuple(data["b"]), tuple(data["weights"]), bool(data["stem"]))


class _Segment:
    """Rows with their tokens, categories and (once built) CSC postings. Arrays may be memory-mapped."""

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, cats: np.ndarray, cat_offsets: np.ndarray) -> None:
        self.tokens = tokens  # int32 term ids, rows concatenated, fields in order within a row
        self.offsets = offsets  # int64, 3*rows+1: row r field f is tokens[offsets[3r+f]:offsets[3r+f+1]]
        self.cats = cats  # int32 category ids, rows concatenated
        self.cat_offsets = cat_offsets  # int64, rows+1
        self.indptr = np.zeros(1, np.int64)
        self.indices = np.zeros(0, np.int32)
        self.weights = np.zeros(0, np.float32)
        self.masks = np.zeros(0, np.uint8)
        self.cat_indptr = np.zeros(1, np.int64)
        self.cat_rows = np.zeros(0, np.int32)
        self.max_weights = np.zeros(0, np.float32)  # per term: its largest weight, an upper bound for pruning
        # CSR by term: the CHAMPIONS heaviest rows (ascending) of terms with more rows than that
        self.champ_indptr = np.zeros(1, np.int64)
        self.champ_rows = np.zeros(0, np.int32)
        # Arrays of this segment that are whole .npy files (name -> path): a save links them, not rewrites.
        self.files: dict[str, Path] = {}

    @property
    def rows(self) -> int:
        return len(self.cat_offsets) - 1

    @property
    def n_terms(self) -> int:
        return len(self.indptr) - 1

    def field_lengths(self) -> np.ndarray:
        return np.diff(self.offsets).reshape(self.rows, NFIELDS)

    def row_terms(self, row: int) -> np.ndarray:
        return np.unique(self.tokens[self.offsets[NFIELDS * row]:self.offsets[NFIELDS * row + NFIELDS]])

    def champions(self, term: int) -> np.ndarray:
        """The rows where the term weighs most (all its rows when it has few), ascending."""
        if term >= self.n_terms:
            return _EMPTY_I
        start, end = self.champ_indptr[term], self.champ_indptr[term + 1]
        if start == end:
            return self.indices[self.indptr[term]:self.indptr[term + 1]]
        return self.champ_rows[start:end]

    def build_champions(self) -> None:
        counts = np.diff(self.indptr)
        long = np.flatnonzero(counts > CHAMPIONS)
        self.champ_indptr = np.zeros(self.n_terms + 1, np.int64)
        self.champ_indptr[long + 1] = CHAMPIONS
        np.cumsum(self.champ_indptr, out=self.champ_indptr)
        self.champ_rows = np.empty(len(long) * CHAMPIONS, np.int32)
        for i, term in enumerate(long.tolist()):
            start, end = self.indptr[term], self.indptr[term + 1]
            heaviest = np.argpartition(-np.asarray(self.weights[start:end]), CHAMPIONS - 1)[:CHAMPIONS]
            self.champ_rows[i * CHAMPIONS:(i + 1) * CHAMPIONS] = np.sort(self.indices[start:end][heaviest])

    def max_weight(self, term: int) -> float:
        return float(self.max_weights[term]) if term < len(self.max_weights) else 0.0

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if term >= self.n_terms:
            return _EMPTY_I, _EMPTY_F, _EMPTY_U
        start, end = self.indptr[term], self.indptr[term + 1]
        return self.indices[start:end], self.weights[start:end], self.masks[start:end]

    def build(self, n_terms: int, n_cats: int, avg_len: np.ndarray, params: Bm25Params) -> None:
        self.indptr, self.indices, self.weights, self.masks = _build_postings(self, n_terms, avg_len, params)
        self.max_weights = np.zeros(n_terms, np.float32)
        nonempty = np.diff(self.indptr) > 0
        if nonempty.any():
            self.max_weights[nonempty] = np.maximum.reduceat(self.weights, self.indptr[:-1][nonempty])
        self.build_champions()
        self.build_categories(n_cats)

    def build_categories(self, n_cats: int) -> None:
        cat_row = np.repeat(np.arange(self.rows, dtype=np.int32), np.diff(self.cat_offsets))
        order = np.argsort(self.cats, kind="stable")
        self.cat_rows = cat_row[order].astype(np.int32)
        self.cat_indptr = np.concatenate([[0], np.cumsum(np.bincount(self.cats, minlength=n_cats))]).astype(np.int64)


_EMPTY_I = np.zeros(0, np.int32)
_EMPTY_F = np.zeros(0, np.float32)
_EMPTY_U = np.zeros(0, np.uint8)


def _gather(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """values[starts[i]:starts[i]+lengths[i]] for all i, concatenated, without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return values[:0].copy()
    first = np.cumsum(lengths) - lengths
    idx = np.arange(total, dtype=np.int64) + np.repeat(starts.astype(np.int64) - first, lengths)
    return values[idx]


def _chunk_postings(tok: np.ndarray, lens: np.ndarray, first_row: int,
                    rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(term, row, packed per-field counts) of consecutive rows from `first_row` (tokens `tok`, field
    lengths `lens`, one row of three per paper), sorted by term then row; `rows` is the segment's size."""
    lane = (np.int32(1) << (_LANE_BITS * np.arange(NFIELDS))).astype(np.int32)
    fld = np.repeat(np.tile(np.arange(NFIELDS, dtype=np.int8), len(lens)), lens.ravel())
    row = np.repeat(np.arange(first_row, first_row + len(lens), dtype=np.int64), lens.sum(axis=1))
    # One sort groups equal (term, row) pairs; order within a term is by row, as CSC needs.
    key = np.asarray(tok).astype(np.int64) * rows + row
    order = np.argsort(key, kind="stable")
    key = key[order]
    if not len(key):
        return _EMPTY_I, _EMPTY_I, _EMPTY_I
    packed = lane[fld[order]]
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    unique = key[starts]
    # (reduceat widens the sums to int64; the lanes hold at most 30 bits)
    return ((unique // rows).astype(np.int32), (unique % rows).astype(np.int32),
            np.add.reduceat(packed, starts).astype(np.int32))


def _field_norms(lengths: np.ndarray, avg_len: np.ndarray, params: Bm25Params) -> np.ndarray:
    """Per row and field: w_f / (1 - b_f + b_f len_f / avglen_f)."""
    norm = np.empty((len(lengths), NFIELDS), np.float32)
    for f in range(NFIELDS):
        b = params.b[f]
        norm[:, f] = params.weights[f] / (1.0 - b + b * lengths[:, f] / max(float(avg_len[f]), 1.0))
    return norm


def _bm25_weights(packed: np.ndarray, rows: np.ndarray, norm: np.ndarray,
                  params: Bm25Params) -> tuple[np.ndarray, np.ndarray]:
    """BM25F weights and field masks of postings (packed counts, their rows)."""
    weights = np.empty(len(packed), np.float32)
    masks = np.empty(len(packed), np.uint8)
    step = 10_000_000
    for lo in range(0, len(packed), step):
        p = packed[lo:lo + step]
        r = rows[lo:lo + step]
        tf = np.zeros(len(p), np.float32)
        m = np.zeros(len(p), np.uint8)
        for f in range(NFIELDS):
            count = (p >> (_LANE_BITS * f)) & ((1 << _LANE_BITS) - 1)
            tf += count * norm[r, f]
            m |= (count > 0).astype(np.uint8) << f
        weights[lo:lo + step] = tf * (params.k1 + 1.0) / (tf + params.k1)
        masks[lo:lo + step] = m
    return weights, masks


def _build_postings(seg: _Segment, n_terms: int, avg_len: np.ndarray,
                    params: Bm25Params) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CSC postings of a segment. Per (term, row) the per-field counts are summed in packed 10-bit
    lanes, then turned into BM25F weights: tf' = sum_f w_f tf_f / (1 - b_f + b_f len_f / avglen_f),
    weight = tf' (k1 + 1) / (tf' + k1). IDF is applied at query time."""
    rows = seg.rows
    lengths = seg.field_lengths()
    parts_terms, parts_rows, parts_packed = [], [], []
    for lo in range(0, rows, _CHUNK_ROWS):
        hi = min(rows, lo + _CHUNK_ROWS)
        tok = seg.tokens[seg.offsets[NFIELDS * lo]:seg.offsets[NFIELDS * hi]]
        terms, chunk_rows, packed = _chunk_postings(tok, lengths[lo:hi], lo, rows)
        parts_terms.append(terms)
        parts_rows.append(chunk_rows)
        parts_packed.append(packed)
    terms = np.concatenate(parts_terms) if parts_terms else _EMPTY_I
    counts = np.bincount(terms, minlength=n_terms)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    nnz = int(indptr[-1])
    indices = np.empty(nnz, np.int32)
    packed_all = np.empty(nnz, np.int32)
    cursor = indptr[:-1].copy()
    # Chunks come in row order and are term-sorted inside, so appending each term's run keeps rows sorted.
    for t, r, p in zip(parts_terms, parts_rows, parts_packed, strict=True):
        if not len(t):
            continue
        starts = np.flatnonzero(np.concatenate([[True], t[1:] != t[:-1]]))
        run_terms = t[starts]
        run_lens = np.diff(np.append(starts, len(t)))
        pos = np.repeat(cursor[run_terms] - starts, run_lens) + np.arange(len(t))
        indices[pos] = r
        packed_all[pos] = p
        cursor[run_terms] += run_lens
    del parts_terms, parts_rows, parts_packed
    weights, masks = _bm25_weights(packed_all, indices, _field_norms(lengths, avg_len, params), params)
    return indptr, indices, weights, masks


def _day_number(paper: Paper) -> int:
    day = paper.published or paper.listed_on
    if not day:
        return 0
    try:
        return int(day[:4]) * 10000 + int(day[5:7]) * 100 + int(day[8:10])
    except ValueError:
        return 0


def _day_value(day: str | None) -> int | None:
    return int(day[:4]) * 10000 + int(day[5:7]) * 100 + int(day[8:10]) if day else None


class LexicalIndex:
    """BM25F over papers with phrase, field, category, id and date filters. Thread-safe."""

    def __init__(self, params: Bm25Params | None = None) -> None:
        self.params = params or Bm25Params()
        self._lock = threading.RLock()
        self._terms: list[str] = []
        self._vocab: dict[str, int] = {}
        self._cat_names: list[str] = []
        self._cat_vocab: dict[str, int] = {}
        self._ids: list[str] = []
        self._row_of: dict[str, int] = {}
        self._live = np.zeros(0, bool)
        self._days = np.zeros(0, np.int32)
        self._df = np.zeros(0, np.int64)
        self._n_live = 0
        self._base = _empty_segment()
        self._avg_len = np.ones(NFIELDS, np.float32)
        # Delta rows (base.rows onwards), packed in blocks, until the delta segment is (re)built.
        self._fresh = _RowBlocks()
        self._delta: _Segment | None = _empty_segment()
        # Where big merges spill their intermediate files (None: they run in memory); see STREAM_ROWS.
        self.spill_dir: Path | None = None
        self.stream_rows = STREAM_ROWS
        self.merge_block_rows = MERGE_BLOCK_ROWS
        self._bulk_depth = 0  # inside bulk(): the delta is merged once at the end
        self._facts: dict[tuple, Any] = {}  # see _corpus_fact
        self._facts_state = -1
        self._writes = 0  # papers added or removed (what _corpus_fact's answers depend on)

    # ------------------------------------------------------------ size and membership

    def __len__(self) -> int:
        return self._n_live

    def ids(self) -> list[str]:
        with self._lock:
            return [pid for pid, alive in zip(self._ids, self._live, strict=True) if alive]

    def contains(self, paper_id: str) -> bool:
        row = self._row_of.get(paper_id)
        return row is not None and bool(self._live[row])

    __contains__ = contains

    @property
    def delta_rows(self) -> int:
        return len(self._fresh)

    # ------------------------------------------------------------ writing

    def _term_ids(self, tokens: list[str]) -> np.ndarray:
        vocab = self._vocab
        out = list(map(vocab.get, tokens))
        if None in out:
            for i, t in enumerate(tokens):
                if out[i] is None:
                    tid = vocab.get(t)
                    if tid is None:
                        tid = vocab[t] = len(self._terms)
                        self._terms.append(t)
                    out[i] = tid
        return np.asarray(out, dtype=np.int32)

    def _analyse(self, paper: Paper) -> tuple[np.ndarray, tuple[int, int, int], np.ndarray]:
        stem = self.params.stem
        fields = (tokenize(paper.title, stem=stem)[:FIELD_LIMITS[TITLE]],
                  tokenize(paper.abstract, stem=stem)[:FIELD_LIMITS[ABSTRACT]],
                  tokenize(" ; ".join(paper.authors), stem=stem)[:FIELD_LIMITS[AUTHORS]])
        tokens = self._term_ids([t for f in fields for t in f])
        cats = []
        for name in dict.fromkeys(paper.categories):
            cid = self._cat_vocab.get(name)
            if cid is None:
                cid = self._cat_vocab[name] = len(self._cat_names)
                self._cat_names.append(name)
            cats.append(cid)
        return tokens, (len(fields[0]), len(fields[1]), len(fields[2])), np.asarray(cats, dtype=np.int32)

    def add(self, papers: Sequence[Paper]) -> None:
        """Index papers; a paper whose id is already indexed is replaced (its old text no longer matches)."""
        latest = {p.id: p for p in papers}  # the last copy of an id in one batch wins
        if not latest:
            return
        with self._lock:
            rows = []
            for paper in latest.values():
                self._kill(paper.id)
                tokens, lens, cats = self._analyse(paper)
                self._fresh.append(tokens, lens, cats)
                self._row_of[paper.id] = len(self._ids)
                self._ids.append(paper.id)
                rows.append((tokens, _day_number(paper)))
            self._grow_df()
            for tokens, _ in rows:
                self._df[np.unique(tokens)] += 1
            self._live = np.concatenate([self._live, np.ones(len(rows), bool)])
            self._days = np.concatenate([self._days, np.fromiter((d for _, d in rows), np.int32, len(rows))])
            self._n_live += len(rows)
            self._writes += 1
            self._delta = None
            if not self._bulk_depth:
                self._compact_if_due()

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Many `add` calls in a row (a build or a big ingest): the delta is merged into the base once at
        the end instead of every time it reaches a quarter of the base (a geometric series of merges)."""
        with self._lock:
            self._bulk_depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._bulk_depth -= 1
                if not self._bulk_depth:
                    self._compact_if_due()

    def _compact_if_due(self) -> None:
        if self.delta_rows > max(COMPACT_MIN, COMPACT_FRACTION * self._base.rows):
            self.compact()

    def remove(self, ids: Iterable[str]) -> None:
        with self._lock:
            for pid in ids:
                self._kill(pid)

    def _kill(self, paper_id: str) -> None:
        row = self._row_of.pop(paper_id, None)
        if row is None or not self._live[row]:
            return
        self._live[row] = False
        self._n_live -= 1
        self._writes += 1
        if row < self._base.rows:
            terms = self._base.row_terms(row)
        else:
            terms = np.unique(self._fresh.row_tokens(row - self._base.rows))
        self._df[terms] -= 1

    def _grow_df(self) -> None:
        if len(self._df) < len(self._terms):
            self._df = np.concatenate([self._df, np.zeros(len(self._terms) - len(self._df), np.int64)])

    def _delta_segment(self) -> _Segment:
        """The delta's postings, rebuilt after writes (weights use the base's average lengths)."""
        if self._delta is None:
            seg = self._fresh.segment()
            avg = self._avg_len if self._base.rows else _average_lengths(seg)
            seg.build(len(self._terms), len(self._cat_names), avg, self.params)
            self._delta = seg
        return self._delta

    def compact(self) -> None:
        """Merge the delta into the base and drop dead rows; results equal a build from scratch."""
        with self._lock:
            base = self._base
            nb = base.rows
            parts = [(base, np.flatnonzero(self._live[:nb]))]
            keep = [parts[0][1]]
            for start, block in self._fresh.sealed():
                rows = np.flatnonzero(self._live[nb + start:nb + start + block.rows])
                parts.append((block, rows))
                keep.append(rows + (nb + start))
            kept = sum(len(rows) for _, rows in parts)
            if self.spill_dir is not None and kept >= self.stream_rows:
                seg = _merge_streamed(parts, len(self._terms), len(self._cat_names), self.params,
                                      Path(self.spill_dir), self.merge_block_rows)
            else:
                seg = _merge_in_memory(parts, len(self._terms), len(self._cat_names), self.params)
            self._avg_len = _average_lengths(seg)
            kept_rows = np.concatenate(keep)
            self._ids = [self._ids[r] for r in kept_rows.tolist()]
            self._row_of = {pid: r for r, pid in enumerate(self._ids)}
            self._days = np.ascontiguousarray(self._days[kept_rows])
            self._live = np.ones(len(kept_rows), bool)
            self._df = np.diff(seg.indptr).astype(np.int64)
            self._n_live = len(kept_rows)
            self._base = seg
            self._fresh = _RowBlocks()
            self._delta = _empty_segment()

    # ------------------------------------------------------------ reading

    def _segments(self) -> list[tuple[int, _Segment]]:
        return [(0, self._base), (self._base.rows, self._delta_segment())]

    def _idf(self, term: int) -> float:
        df = float(self._df[term]) if term < len(self._df) else 0.0
        return float(np.log1p((self._n_live - df + 0.5) / (df + 0.5)))

    def _term_mask(self, term: int, field_bits: int) -> np.ndarray:
        """Rows whose fields in `field_bits` contain the term."""
        out = np.zeros(len(self._ids), bool)
        for start, seg in self._segments():
            rows, _, masks = seg.postings(term)
            if field_bits != 0b111:
                rows = rows[(masks & field_bits) != 0]
            out[rows.astype(np.int64) + start] = True
        return out

    def _phrase_mask(self, terms: list[int], fields: tuple[int, ...]) -> np.ndarray:
        """Rows where the terms occur contiguously (stopwords aside) within one of `fields`."""
        bits = sum(1 << f for f in fields)
        mask = self._term_mask(terms[0], bits)
        for term in terms[1:]:
            mask &= self._term_mask(term, bits)
        if len(terms) == 1:
            return mask
        candidates = np.flatnonzero(mask)
        mask[:] = False
        want = np.asarray(terms, dtype=np.int32)
        for start, seg in self._segments():
            local = candidates[(candidates >= start) & (candidates < start + seg.rows)] - start
            if not len(local):
                continue
            read = sum(int((seg.offsets[NFIELDS * local + f + 1] - seg.offsets[NFIELDS * local + f]).sum())
                       for f in fields)
            if read * SCAN_COST > len(seg.tokens):
                mask[_contiguous_scan(seg, local, fields, want) + start] = True
                continue
            for f in fields:
                hit = _contiguous(seg, local, f, want)
                mask[hit + start] = True
        return mask

    def _category_mask(self, prefixes: Iterable[str]) -> np.ndarray:
        """cat:cs matches cs and cs.*, cat:cs.LG matches exactly (case-insensitive)."""
        wanted = [p.strip().rstrip("*").rstrip(".").lower() for p in prefixes]
        cids = [cid for cid, name in enumerate(self._cat_names)
                if any(w and (name.lower() == w or name.lower().startswith(w + ".")) for w in wanted)]
        out = np.zeros(len(self._ids), bool)
        for start, seg in self._segments():
            for cid in cids:
                if cid + 1 < len(seg.cat_indptr):
                    out[seg.cat_rows[seg.cat_indptr[cid]:seg.cat_indptr[cid + 1]].astype(np.int64) + start] = True
        return out

    def _id_mask(self, values: Iterable[str]) -> np.ndarray:
        out = np.zeros(len(self._ids), bool)
        for value in values:
            try:
                pid = canonical_id(value)
            except InvalidPaperId:
                pid = value.strip()
            row = self._row_of.get(pid)
            if row is not None:
                out[row] = True
        return out

    def _tokens(self, text: str) -> list[int] | None:
        """Term ids of `text`; None if a word is in no paper (so nothing can match it)."""
        ids = [self._vocab.get(t) for t in tokenize(text, stem=self.params.stem)]
        return None if any(i is None for i in ids) else ids  # type: ignore[return-value]

    def search(self, query: ParsedQuery, limit: int = 10, *, categories: list[str] | None = None,
               date_from: str | None = None, date_to: str | None = None) -> list[tuple[str, float]]:
        """(id, score) best first. Free words rank (any may match); phrases, fields, exclusions, categories
        and dates filter. A query with nothing to match on returns []."""
        if limit <= 0:
            return []
        with self._lock:
            first = self._arxiv_hit(query)
            ranked = self._search(query, limit, categories, date_from, date_to)
            if first is None:
                return ranked
            top = max((s for _, s in ranked), default=0.0)
            return [(first, top + 1.0), *[r for r in ranked if r[0] != first]][:limit]

    def scores(self, query: ParsedQuery, ids: Sequence[str]) -> dict[str, float]:
        """BM25F scores of the given papers for the query's words (free words, phrase and field words
        alike; nothing filters), 0.0 for a paper that matches none of them or is not indexed. Costs a
        binary search per word and paper instead of a pass over every posting list."""
        with self._lock:
            counts: dict[int, float] = {}
            words = [*query.terms, *query.phrases, *(v for name in ("ti", "abs", "au")
                                                      for v in query.fields.get(name, []))]
            for t in tokenize(" ".join(words), stem=self.params.stem):
                tid = self._vocab.get(t)
                if tid is not None:
                    counts[tid] = counts.get(tid, 0.0) + 1.0
            rows = np.fromiter((self._row_of.get(pid, -1) for pid in ids), np.int64, len(ids))
            known = rows >= 0
            rows[known] = np.where(self._live[rows[known]], rows[known], -1)  # removed papers score nothing
            out = np.zeros(len(ids), np.float32)
            segments = self._segments()
            for tid, count in counts.items():
                out += self._term_weights(tid, rows, segments) * np.float32(self._idf(tid) * count)
            return {pid: float(score) for pid, score in zip(ids, out, strict=True)}

    def _arxiv_hit(self, query: ParsedQuery) -> str | None:
        if not query.arxiv_id:
            return None
        row = self._row_of.get(query.arxiv_id)
        return query.arxiv_id if row is not None and self._live[row] else None

    def _constraints(self, query: ParsedQuery, categories: list[str] | None, date_from: str | None,
                     date_to: str | None, *, every_word: bool = False) -> _Constraints | None:
        """What a query asks of a paper: the rows it requires (phrases, fields, categories, dates; with
        `every_word` also each free word), the rows it leaves out, and the terms that rank. None when
        nothing can match (a required word that no paper has)."""
        required: np.ndarray | None = None
        scoring: dict[int, float] = {}

        def need(mask: np.ndarray) -> None:
            nonlocal required
            required = mask if required is None else required & mask

        constrained = False
        for t in tokenize(" ".join(query.terms), stem=self.params.stem):
            tid = self._vocab.get(t)
            if every_word:
                constrained = True
                if tid is None:
                    return None
                need(self._term_mask(tid, 0b111))
            if tid is not None:
                scoring[tid] = scoring.get(tid, 0.0) + 1.0
        for phrase in query.phrases:
            ids = self._tokens(phrase)
            if ids == []:
                continue  # only stopwords: no constraint
            constrained = True
            if ids is None:
                return None
            need(self._phrase_mask(ids, (TITLE, ABSTRACT)))
            for tid in ids:
                scoring[tid] = scoring.get(tid, 0.0) + 1.0
        for name, values in query.fields.items():
            constrained = True
            if name == "cat":
                need(self._category_mask(values))
            elif name == "id":
                need(self._id_mask(values))
            elif name in FIELD_OF:
                for value in values:
                    ids = self._tokens(value)
                    if ids == []:
                        continue
                    if ids is None:
                        return None
                    need(self._phrase_mask(ids, (FIELD_OF[name],)))
                    for tid in ids:
                        scoring[tid] = scoring.get(tid, 0.0) + 1.0
        if categories:
            constrained = True
            need(self._category_mask(categories))
        lo = max(filter(None, (_day_value(query.date_from), _day_value(date_from))), default=None)
        hi = min(filter(None, (_day_value(query.date_to), _day_value(date_to))), default=None)
        if lo is not None or hi is not None:
            constrained = True
            days = self._days
            need((days >= (lo or 0)) & (days <= (hi or 99999999)) & (days > 0))
        excluded: np.ndarray | None = None
        for value in query.excluded:
            ids = self._tokens(value)
            if not ids:
                continue  # stopwords, or a word no paper has
            constrained = True
            mask = self._term_mask(ids[0], 0b111) if len(ids) == 1 else self._phrase_mask(ids, (TITLE, ABSTRACT))
            excluded = mask if excluded is None else excluded | mask
        return _Constraints(required, excluded, scoring, constrained)

    def count_by_days(self, query: ParsedQuery | None, edges: Sequence[int]) -> np.ndarray:
        """How many papers match `query` (every paper when None) in each day range [edges[i], edges[i+1]),
        days written as numbers YYYYMMDD, ascending. A paper matches when it has every free word (in any
        field) and passes the phrases, fields, exclusions and date filters, as in search; an arXiv id
        query matches that paper. Counted on the index's own masks: no paper is fetched or ranked.
        Papers without a day are in no range. QueryError if the query has nothing to match on."""
        bounds = np.asarray(edges, dtype=np.int64)
        with self._lock:
            if query is None:
                # every paper: the same for every query of a chart, kept until the index changes
                return self._corpus_fact(("counts", tuple(bounds.tolist())),
                                         lambda: _bin_days(self._days[self._live], bounds)).copy()
            else:
                mask = self._match_mask(query)
                days = self._days[mask] if mask is not None else self._days[:0]
        return _bin_days(days, bounds)

    def _corpus_fact(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """`compute()` of the whole corpus, remembered until the next write."""
        if self._facts_state != self._writes:
            self._facts, self._facts_state = {}, self._writes
        if key not in self._facts:
            if len(self._facts) >= 64:
                self._facts.clear()
            self._facts[key] = compute()
        return self._facts[key]

    def _match_mask(self, query: ParsedQuery) -> np.ndarray | None:
        """The live rows that match `query` for counting; None when none can."""
        if query.arxiv_id:
            row = self._row_of.get(query.arxiv_id)
            if row is None:
                return None
            mask = np.zeros(len(self._ids), bool)
            mask[row] = True
            return mask & self._live
        found = self._constraints(query, None, None, None, every_word=True)
        if found is None:
            return None
        if not found.constrained:
            raise QueryError("the query has no words to count (only very common words)")
        mask = self._live.copy() if found.required is None else found.required & self._live
        if found.excluded is not None:
            mask &= ~found.excluded
        return mask

    def day_span(self, trim: float = 0.0) -> tuple[int, int] | None:
        """The earliest and latest day (YYYYMMDD) of the indexed papers that have one; `trim` leaves out
        that fraction of the earliest (a few stray old papers). None when no paper has a day."""
        def span() -> tuple[int, int] | None:
            days = self._days[self._live]
            days = days[days > 0]
            if not len(days):
                return None
            skip = int(trim * (len(days) - 1))
            first = int(np.partition(days, skip)[skip]) if skip else int(days.min())
            return first, int(days.max())

        with self._lock:
            return self._corpus_fact(("span", trim), span)

    def _search(self, query: ParsedQuery, limit: int, categories: list[str] | None, date_from: str | None,
                date_to: str | None) -> list[tuple[str, float]]:
        n = len(self._ids)
        if n == 0 or self._n_live == 0:
            return []
        found = self._constraints(query, categories, date_from, date_to)
        if found is None:
            return []
        required, excluded, scoring, constrained = found.required, found.excluded, found.scoring, found.constrained
        if required is None and scoring:
            return self._ranked(scoring, excluded, limit)

        scores = np.zeros(n, np.float32)
        segments = self._segments()
        for tid, weight in scoring.items():
            rows, weights = self._postings(tid, segments)
            scores[rows] += weights * np.float32(self._idf(tid) * weight)
        if required is not None:
            candidates = required & self._live
        elif scoring:
            candidates = (scores > 0) & self._live
        elif constrained:
            candidates = self._live.copy()
        else:
            return []
        if excluded is not None:
            candidates &= ~excluded
        rows = np.flatnonzero(candidates)
        return self._top(rows, scores[rows], limit)

    def _ranked(self, scoring: dict[int, float], excluded: np.ndarray | None, limit: int) -> list[tuple[str, float]]:
        """Exact top-k of a ranked-only query, MaxScore style. Terms go in order of their largest
        possible contribution (rare terms first); the terms' champions, scored in full, give a first
        threshold theta (a k-th best score). While the terms not yet read could together lift an unseen
        paper above theta, each term's postings are added in full and its new papers become candidates;
        after that, the remaining (common) terms only complete the candidates that can still reach
        theta, and theta is raised after every term. Work is proportional to the postings read, never
        to the corpus size, apart from one zeroed score array."""
        n = len(self._ids)
        segments = self._segments()
        # papers that may be returned; None: all rows (nothing removed or excluded)
        ok = None if excluded is None and self._n_live == n else self._live if excluded is None \
            else self._live & ~excluded
        terms = []
        for tid, count in scoring.items():
            idf = np.float32(self._idf(tid) * count)
            bound = float(idf) * max(seg.max_weight(tid) for _, seg in segments)
            if bound > 0:
                terms.append((bound, idf, tid, *self._postings(tid, segments)))
        terms.sort(key=lambda term: -term[0])
        remaining = sum(term[0] for term in terms)
        theta = self._champion_theta(terms, segments, ok, limit)
        scores = np.zeros(n, np.float32)
        fresh_parts: list[np.ndarray] = []
        done = 0
        for bound, idf, _, rows, weights in terms:
            if theta > remaining * (1 + 1e-5) + 1e-6:
                break
            if done:
                seen = scores[rows]
                fresh_parts.append(rows[seen == 0])
                scores[rows] = seen + weights * idf
            else:
                fresh_parts.append(rows)
                scores[rows] = weights * idf
            remaining -= bound
            done += 1
        cand = np.concatenate(fresh_parts) if len(fresh_parts) > 1 else fresh_parts[0] if fresh_parts else _EMPTY_I
        if ok is not None:
            cand = cand[ok[cand]]
        partial = scores[cand]
        theta = self._kth_best(partial, limit, theta)
        for bound, idf, _, rows, weights in terms[done:]:
            keep = partial + remaining * (1 + 1e-5) + 1e-6 >= theta
            if not keep.all():
                cand, partial = cand[keep], partial[keep]
            if 4 * len(cand) < len(rows):
                found = _weights_at(rows, weights, cand) * idf
                partial += found
                scores[cand] += found
            else:
                scores[rows] += weights * idf
                partial = scores[cand]
            remaining -= bound
            theta = self._kth_best(partial, limit, theta)
        return self._top(cand, partial, limit)

    def _champion_theta(self, terms: list, segments: list[tuple[int, _Segment]], ok: np.ndarray | None,
                        k: int) -> float:
        """A lower bound for the k-th best score before any posting list is read in full: the papers
        with the highest weights for each term (its champions), scored completely by binary search.
        Any paper's full score bounds the k-th best from below; a high bound early keeps MaxScore from
        reading the common terms' long lists."""
        parts = [seg.champions(tid) + start if start else seg.champions(tid)
                 for start, seg in segments for _, _, tid, _, _ in terms]
        pool = np.unique(np.concatenate(parts)) if parts else _EMPTY_I
        if ok is not None:
            pool = pool[ok[pool]]
        if len(pool) < k:
            return -1.0
        full = np.zeros(len(pool), np.float32)
        for _, idf, _, rows, weights in terms:
            full += _weights_at(rows, weights, pool) * idf
        return self._kth_best(full, k, -1.0)

    @staticmethod
    def _kth_best(values: np.ndarray, k: int, floor: float) -> float:
        """The k-th largest value, or `floor` if that is higher or there are fewer than k."""
        if len(values) < k:
            return floor
        return max(floor, float(np.partition(values, len(values) - k)[len(values) - k]))

    @staticmethod
    def _postings(term: int, segments: list[tuple[int, _Segment]]) -> tuple[np.ndarray, np.ndarray]:
        """A term's rows, ascending across segments, and their weights (before IDF)."""
        rows_parts, weight_parts = [], []
        for start, seg in segments:
            rows, weights, _ = seg.postings(term)
            if len(rows):
                rows_parts.append(rows + start if start else rows)
                weight_parts.append(weights)
        if len(rows_parts) == 1:
            return rows_parts[0], weight_parts[0]
        if not rows_parts:
            return _EMPTY_I, _EMPTY_F
        return np.concatenate(rows_parts), np.concatenate(weight_parts)

    @staticmethod
    def _term_weights(term: int, rows: np.ndarray, segments: list[tuple[int, _Segment]]) -> np.ndarray:
        """The term's BM25F weight (before IDF) in each of `rows` (row numbers; -1 or a row without the
        term gets 0): a binary search per row in the term's postings, not a pass over them."""
        return _weights_at(*LexicalIndex._postings(term, segments), rows)

    def _top(self, rows: np.ndarray, scores: np.ndarray, limit: int) -> list[tuple[str, float]]:
        if len(rows) > limit:
            part = np.argpartition(-scores, limit - 1)[:limit]
            rows, scores = rows[part], scores[part]
        order = np.lexsort((rows, -scores))  # best first, then older rows first
        ids = self._ids
        return [(ids[r], score) for r, score in zip(rows[order].tolist(), scores[order].tolist(), strict=True)]

    # ------------------------------------------------------------ persistence

    def save(self, directory: Path) -> None:
        """Write the index under `directory` atomically: new files under fresh names, then header.json
        switches to them (os.replace); files of older saves are removed afterwards."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            delta = self._delta_segment()
            base = self._base
            tag = secrets.token_hex(6)
            arrays = {
                "live": self._live, "days": self._days, "df": self._df, "avg_len": self._avg_len,
                "base_tokens": base.tokens, "base_offsets": base.offsets, "base_cats": base.cats,
                "base_cat_offsets": base.cat_offsets, "base_indptr": base.indptr, "base_indices": base.indices,
                "base_weights": base.weights, "base_masks": base.masks, "base_cat_indptr": base.cat_indptr,
                "base_cat_rows": base.cat_rows, "base_max_weights": base.max_weights,
                "base_champ_indptr": base.champ_indptr, "base_champ_rows": base.champ_rows,
                "delta_tokens": delta.tokens, "delta_offsets": delta.offsets, "delta_cats": delta.cats,
                "delta_cat_offsets": delta.cat_offsets,
            }
            files: dict[str, str] = {}
            for name, array in arrays.items():
                files[name] = f"{name}.{tag}.npy"
                source = base.files.get(name[len("base_"):]) if name.startswith("base_") else None
                if source is not None and _link_or_copy(source, directory / files[name]):
                    continue  # the same bytes are already on disk: no pass through memory
                with open(directory / files[name], "wb") as fh:
                    np.save(fh, np.asarray(array), allow_pickle=False)
                    fh.flush()
                    os.fsync(fh.fileno())
            for name, lines in (("ids", self._ids), ("terms", self._terms), ("categories", self._cat_names)):
                files[name] = f"{name}.{tag}.txt"
                with open(directory / files[name], "w", encoding="utf-8") as fh:
                    fh.write("\n".join(lines))
                    fh.flush()
                    os.fsync(fh.fileno())
            header = {"format": FORMAT_VERSION, "kind": "paperwire-lexical", "params": asdict(self.params),
                      "rows": len(self._ids), "base_rows": base.rows, "live": self._n_live, "files": files}
            tmp = directory / f"header.{tag}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(header, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, directory / "header.json")
            _fsync_dir(directory)
            # The base never changes in place: the next save links these files instead of writing it again.
            base.files = {name[len("base_"):]: directory / file for name, file in files.items()
                          if name.startswith("base_")}
            current = set(files.values()) | {"header.json"}
            for path in directory.iterdir():
                if path.name not in current and path.suffix in (".npy", ".txt", ".tmp"):
                    path.unlink(missing_ok=True)

    @classmethod
    def load(cls, directory: Path, *, mmap: bool = True) -> LexicalIndex:
        """Load a saved index; the large read-only arrays are memory-mapped. Raises ValueError if unusable."""
        directory = Path(directory)
        try:
            header = json.loads((directory / "header.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"no lexical index in {directory}: {exc}") from None
        if header.get("format") != FORMAT_VERSION or header.get("kind") != "paperwire-lexical":
            raise ValueError(f"lexical index in {directory} has format {header.get('format')!r}, "
                             f"expected {FORMAT_VERSION}; rebuild it")
        files = header["files"]

        def array(name: str, writable: bool = False) -> np.ndarray:
            # np.asarray: a plain view of the map; slicing a np.memmap costs a Python-level call each time
            return np.asarray(np.load(directory / files[name], mmap_mode=None if writable or not mmap else "r",
                                      allow_pickle=False))

        def lines(name: str) -> list[str]:
            text = (directory / files[name]).read_text(encoding="utf-8")
            return text.split("\n") if text else []

        index = cls(Bm25Params.from_dict(header["params"]))
        index._ids = lines("ids")
        index._terms = lines("terms")
        index._cat_names = lines("categories")
        index._vocab = {t: i for i, t in enumerate(index._terms)}
        index._cat_vocab = {c: i for i, c in enumerate(index._cat_names)}
        index._live = array("live", writable=True)
        index._days = array("days", writable=True)
        index._df = array("df", writable=True)
        index._avg_len = array("avg_len", writable=True)
        index._row_of = {pid: r for r, (pid, alive) in enumerate(zip(index._ids, index._live, strict=True)) if alive}
        index._n_live = int(index._live.sum())
        base = _Segment(array("base_tokens"), array("base_offsets"), array("base_cats"), array("base_cat_offsets"))
        base.indptr, base.indices = array("base_indptr"), array("base_indices")
        base.weights, base.masks = array("base_weights"), array("base_masks")
        base.cat_indptr, base.cat_rows = array("base_cat_indptr"), array("base_cat_rows")
        base.max_weights = array("base_max_weights")
        if "base_champ_rows" in files:
            base.champ_indptr, base.champ_rows = array("base_champ_indptr"), array("base_champ_rows")
        else:  # saved before champions existed
            base.build_champions()
        base.files = {name[len("base_"):]: directory / file for name, file in files.items()
                      if name.startswith("base_")}
        index._base = base
        index._fresh.add_block(_Segment(array("delta_tokens", True), array("delta_offsets", True),
                                        array("delta_cats", True), array("delta_cat_offsets", True)))
        index._delta = None
        if len(index._ids) != header["rows"] or base.rows + index.delta_rows != len(index._ids):
            raise ValueError(f"lexical index in {directory} is inconsistent; rebuild it")
        return index


def _bin_days(days: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """How many of `days` (YYYYMMDD numbers, 0 for none) fall in each [bounds[i], bounds[i+1])."""
    if len(bounds) < 2:
        return np.zeros(0, np.int64)
    slot = np.searchsorted(bounds, days, side="right") - 1
    slot = slot[(slot >= 0) & (slot < len(bounds) - 1) & (days > 0)]
    return np.bincount(slot, minlength=len(bounds) - 1).astype(np.int64)


def _weights_at(postings: np.ndarray, weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The weight each of `rows` has in a posting list (ascending rows, their weights); 0 where the list
    lacks the row (or the row is -1). A binary search per row, not a pass over the list."""
    out = np.zeros(len(rows), np.float32)
    if len(postings) and len(rows):
        pos = np.minimum(np.searchsorted(postings, rows), len(postings) - 1)
        hit = postings[pos] == rows
        out[hit] = weights[pos[hit]]
    return out


@dataclass
class _Constraints:
    required: np.ndarray | None  # rows that may match (None: any)
    excluded: np.ndarray | None  # rows that must not
    scoring: dict[int, float]  # term id -> how often the query has it
    constrained: bool  # something beyond ranking words decides what matches


def _empty_segment() -> _Segment:
    seg = _Segment(_EMPTY_I, np.zeros(1, np.int64), _EMPTY_I, np.zeros(1, np.int64))
    return seg


def _average_lengths(seg: _Segment) -> np.ndarray:
    if seg.rows == 0:
        return np.ones(NFIELDS, np.float32)
    return np.maximum(seg.field_lengths().mean(axis=0), 1.0).astype(np.float32)


def _rows_tokens(seg: _Segment, rows: np.ndarray) -> np.ndarray:
    if len(rows) == seg.rows:
        return np.asarray(seg.tokens)
    starts = seg.offsets[NFIELDS * rows]
    return _gather(np.asarray(seg.tokens), starts, seg.offsets[NFIELDS * rows + NFIELDS] - starts)


def _contiguous(seg: _Segment, rows: np.ndarray, field: int, want: np.ndarray) -> np.ndarray:
    """The rows (local) whose `field` contains the term sequence `want`."""
    starts = seg.offsets[NFIELDS * rows + field]
    lengths = seg.offsets[NFIELDS * rows + field + 1] - starts
    keep = lengths >= len(want)
    rows, starts, lengths = rows[keep], starts[keep], lengths[keep]
    seq = _gather(np.asarray(seg.tokens), starts, lengths)
    span = len(seq) - len(want) + 1
    if span <= 0:
        return _EMPTY_I
    ok = seq[:span] == want[0]
    for k in range(1, len(want)):
        ok &= seq[k:k + span] == want[k]
    pos = np.flatnonzero(ok)
    if not len(pos):
        return _EMPTY_I
    first = np.cumsum(lengths) - lengths
    which = np.searchsorted(first, pos, side="right") - 1
    inside = pos + len(want) <= first[which] + lengths[which]
    return np.unique(rows[which[inside]])


def _contiguous_scan(seg: _Segment, rows: np.ndarray, fields: tuple[int, ...], want: np.ndarray) -> np.ndarray:
    """The rows (local, among `rows`) where one of `fields` contains the term sequence `want`, found by
    one pass over the segment's whole token array: cheaper than gathering the candidates' tokens once
    they make up more than 1/SCAN_COST of it (a common phrase such as "large language model")."""
    tokens = np.asarray(seg.tokens)
    span = len(tokens) - len(want) + 1
    if span <= 0:
        return _EMPTY_I
    # in slices: the comparison's booleans stay in cache (about twice as fast as one pass over 150M tokens)
    parts = [np.flatnonzero(tokens[lo:min(lo + _SCAN_SLICE, span)] == want[0]) + lo
             for lo in range(0, span, _SCAN_SLICE)]
    pos = np.concatenate(parts) if parts else _EMPTY_I
    for k in range(1, len(want)):
        pos = pos[tokens[pos + k] == want[k]]
    # offsets[3r+f] is where row r's field f begins: the slot holding a position names its row and field
    slot = np.searchsorted(seg.offsets, pos, side="right") - 1
    slot = slot[seg.offsets[slot + 1] >= pos + len(want)]  # the whole phrase inside that field
    slot = slot[np.isin(slot % NFIELDS, fields)]
    found = slot // NFIELDS
    member = np.zeros(seg.rows, bool)
    member[rows] = True
    return np.unique(found[member[found]]).astype(np.int32)


class _RowBlocks:
    """Rows added since the last merge: blocks of concatenated arrays (segments without postings), plus
    the last few rows as per-row arrays until SEAL_ROWS of them make a block. A million rows are a few
    hundred arrays, not three Python objects each."""

    def __init__(self) -> None:
        self.blocks: list[_Segment] = []
        self._starts: list[int] = []  # the first row of each block
        self._sealed_rows = 0
        self._tokens: list[np.ndarray] = []
        self._lens: list[tuple[int, int, int]] = []
        self._cats: list[np.ndarray] = []

    def __len__(self) -> int:
        return self._sealed_rows + len(self._lens)

    def append(self, tokens: np.ndarray, lens: tuple[int, int, int], cats: np.ndarray) -> None:
        self._tokens.append(tokens)
        self._lens.append(lens)
        self._cats.append(cats)
        if len(self._lens) >= SEAL_ROWS:
            self.seal()

    def add_block(self, block: _Segment) -> None:
        self.seal()
        if block.rows:
            self._starts.append(self._sealed_rows)
            self.blocks.append(block)
            self._sealed_rows += block.rows

    def seal(self) -> None:
        if not self._lens:
            return
        lens = np.asarray(self._lens, dtype=np.int64).reshape(-1, NFIELDS)
        block = _Segment(np.concatenate(self._tokens).astype(np.int32, copy=False),
                         np.concatenate([[0], np.cumsum(lens.ravel())]).astype(np.int64),
                         np.concatenate(self._cats).astype(np.int32, copy=False),
                         np.concatenate([[0], np.cumsum([len(c) for c in self._cats])]).astype(np.int64))
        self._tokens, self._lens, self._cats = [], [], []
        self.add_block(block)

    def row_tokens(self, row: int) -> np.ndarray:
        if row >= self._sealed_rows:
            return self._tokens[row - self._sealed_rows]
        b = bisect.bisect_right(self._starts, row) - 1
        block, r = self.blocks[b], row - self._starts[b]
        return block.tokens[block.offsets[NFIELDS * r]:block.offsets[NFIELDS * r + NFIELDS]]

    def sealed(self) -> list[tuple[int, _Segment]]:
        """(first row, block) for every row, in order."""
        self.seal()
        return list(zip(self._starts, self.blocks, strict=True))

    def segment(self) -> _Segment:
        """All rows as one segment without postings."""
        blocks = [block for _, block in self.sealed()]
        if not blocks:
            return _empty_segment()
        if len(blocks) == 1:
            b = blocks[0]
            return _Segment(b.tokens, b.offsets, b.cats, b.cat_offsets)
        lengths = np.concatenate([b.field_lengths() for b in blocks])
        cat_lens = np.concatenate([np.diff(b.cat_offsets) for b in blocks])
        return _Segment(np.concatenate([b.tokens for b in blocks]),
                        np.concatenate([[0], np.cumsum(lengths.ravel())]).astype(np.int64),
                        np.concatenate([b.cats for b in blocks]),
                        np.concatenate([[0], np.cumsum(cat_lens)]).astype(np.int64))


def _rows_cats(seg: _Segment, rows: np.ndarray) -> np.ndarray:
    return _gather(seg.cats, seg.cat_offsets[rows], np.diff(seg.cat_offsets)[rows])


def _merged_layout(parts: list[tuple[_Segment, np.ndarray]]) -> _Segment:
    """The merged rows' offsets and categories (small), tokens left empty."""
    lengths = np.concatenate([seg.field_lengths()[rows] for seg, rows in parts])
    cat_lens = np.concatenate([np.diff(seg.cat_offsets)[rows] for seg, rows in parts])
    cats = np.concatenate([_rows_cats(seg, rows) for seg, rows in parts]).astype(np.int32)
    return _Segment(_EMPTY_I, np.concatenate([[0], np.cumsum(lengths.ravel())]).astype(np.int64),
                    cats, np.concatenate([[0], np.cumsum(cat_lens)]).astype(np.int64))


def _merge_in_memory(parts: list[tuple[_Segment, np.ndarray]], n_terms: int, n_cats: int,
                     params: Bm25Params) -> _Segment:
    """One segment of the given rows (segment, local rows to keep) in order, postings built in memory."""
    seg = _merged_layout(parts)
    seg.tokens = np.concatenate([_rows_tokens(part, rows) for part, rows in parts]).astype(np.int32)
    seg.build(n_terms, n_cats, _average_lengths(seg), params)
    return seg


def _row_chunks(parts: list[tuple[_Segment, np.ndarray]], block_rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(tokens, field lengths) of the merged rows, about `block_rows` rows at a time, in order."""
    tokens: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    held = 0
    for seg, rows in parts:
        seg_lengths = seg.field_lengths()
        for lo in range(0, len(rows), block_rows):
            chunk = rows[lo:lo + block_rows]
            if len(chunk) == seg.rows:
                tokens.append(np.asarray(seg.tokens))
            elif len(chunk) and chunk[-1] - chunk[0] + 1 == len(chunk):  # a run of rows: one slice
                tokens.append(np.asarray(seg.tokens[seg.offsets[NFIELDS * chunk[0]]:
                                                    seg.offsets[NFIELDS * chunk[-1] + NFIELDS]]))
            else:
                tokens.append(_rows_tokens(seg, chunk))
            lengths.append(seg_lengths[chunk])
            held += len(chunk)
            if held >= block_rows:
                yield np.concatenate(tokens).astype(np.int32, copy=False), np.concatenate(lengths)
                tokens, lengths, held = [], [], 0
    if held:
        yield np.concatenate(tokens).astype(np.int32, copy=False), np.concatenate(lengths)


def _npy_writer(path: Path, dtype: Any, length: int) -> Any:
    """An open file with the .npy header of a 1-d array of `length`; the caller writes the data."""
    fh = open(path, "wb")
    np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                              "fortran_order": False, "shape": (int(length),)})
    return fh


def _close_synced(fh: Any) -> None:
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()


def _merge_streamed(parts: list[tuple[_Segment, np.ndarray]], n_terms: int, n_cats: int, params: Bm25Params,
                    spill_dir: Path, block_rows: int) -> _Segment:
    """As _merge_in_memory, through files in a fresh directory under `spill_dir`. Pass 1 writes the
    merged tokens and, block of rows by block, the block's postings sorted by term (rows and packed
    counts). Pass 2 assembles the CSC arrays a range of terms at a time from each block's part of that
    range, computes the weights, maxima and champions of the range, and appends them to .npy files. The
    segment's large arrays are then maps of those files (which a save links into the index). The result
    is element for element the one _merge_in_memory gives."""
    seg = _merged_layout(parts)
    rows_total = seg.rows
    avg_len = _average_lengths(seg)
    spill_dir.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix=f"spill-{os.getpid()}-", dir=spill_dir))
    try:
        # pass 1: tokens out, and each block's postings sorted by (term, row)
        blocks: list[tuple[int, np.ndarray, np.ndarray]] = []  # (first posting in the spill, terms, run ends)
        counts = np.zeros(n_terms, np.int64)
        spilled = 0
        first_row = 0
        tok_fh = _npy_writer(directory / "tokens.npy", np.int32, int(seg.offsets[-1]))
        with open(directory / "rows.bin", "wb") as rows_fh, open(directory / "packed.bin", "wb") as packed_fh:
            for tok, lengths in _row_chunks(parts, block_rows):
                tok.tofile(tok_fh)
                terms, rows, packed = _chunk_postings(tok, lengths, first_row, rows_total)
                first_row += len(lengths)
                if not len(terms):
                    continue
                starts = np.flatnonzero(np.concatenate([[True], terms[1:] != terms[:-1]]))
                run_terms = terms[starts]
                run_ends = np.append(starts[1:], len(terms)).astype(np.int64)
                counts[run_terms] += np.diff(np.concatenate([[0], run_ends]))
                rows.tofile(rows_fh)
                packed.tofile(packed_fh)
                blocks.append((spilled, run_terms, run_ends))
                spilled += len(terms)
        _close_synced(tok_fh)
        seg.indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        del counts
        nnz = int(seg.indptr[-1])
        # pass 2: the CSC arrays, one range of terms at a time
        norm = _field_norms(seg.field_lengths(), avg_len, params)
        seg.max_weights = np.zeros(n_terms, np.float32)
        long = np.flatnonzero(np.diff(seg.indptr) > CHAMPIONS)
        seg.champ_indptr = np.zeros(n_terms + 1, np.int64)
        seg.champ_indptr[long + 1] = CHAMPIONS
        np.cumsum(seg.champ_indptr, out=seg.champ_indptr)
        out = {"indices": _npy_writer(directory / "indices.npy", np.int32, nnz),
               "weights": _npy_writer(directory / "weights.npy", np.float32, nnz),
               "masks": _npy_writer(directory / "masks.npy", np.uint8, nnz),
               "champ_rows": _npy_writer(directory / "champ_rows.npy", np.int32, len(long) * CHAMPIONS)}
        with open(directory / "rows.bin", "rb") as rows_fh, open(directory / "packed.bin", "rb") as packed_fh:
            t0 = 0
            while t0 < n_terms:
                t1 = int(np.searchsorted(seg.indptr, seg.indptr[t0] + MERGE_SLICE_POSTINGS, side="right")) - 1
                t1 = min(max(t1, t0 + 1), n_terms)
                p0 = int(seg.indptr[t0])
                indices = np.empty(int(seg.indptr[t1]) - p0, np.int32)
                packed = np.empty(len(indices), np.int32)
                cursor = seg.indptr[t0:t1] - p0
                for first, run_terms, run_ends in blocks:
                    a, c = np.searchsorted(run_terms, [t0, t1])
                    if a == c:
                        continue
                    lo = int(run_ends[a - 1]) if a else 0
                    lens = np.diff(np.concatenate([[lo], run_ends[a:c]]))
                    rows_fh.seek(4 * (first + lo))
                    packed_fh.seek(4 * (first + lo))
                    count = int(run_ends[c - 1]) - lo
                    rows = np.fromfile(rows_fh, np.int32, count)
                    counts_packed = np.fromfile(packed_fh, np.int32, count)
                    local = run_terms[a:c] - t0
                    pos = np.repeat(cursor[local] - (np.cumsum(lens) - lens), lens) + np.arange(count)
                    indices[pos] = rows
                    packed[pos] = counts_packed
                    cursor[local] += lens
                weights, masks = _bm25_weights(packed, indices, norm, params)
                del packed
                local_indptr = seg.indptr[t0:t1 + 1] - p0
                nonempty = np.diff(local_indptr) > 0
                if nonempty.any():
                    seg.max_weights[t0:t1][nonempty] = np.maximum.reduceat(weights, local_indptr[:-1][nonempty])
                for term in long[(long >= t0) & (long < t1)].tolist():
                    start, end = local_indptr[term - t0], local_indptr[term - t0 + 1]
                    heaviest = np.argpartition(-weights[start:end], CHAMPIONS - 1)[:CHAMPIONS]
                    np.sort(indices[start:end][heaviest]).tofile(out["champ_rows"])
                indices.tofile(out["indices"])
                weights.tofile(out["weights"])
                masks.tofile(out["masks"])
                t0 = t1
        for fh in out.values():
            _close_synced(fh)
        (directory / "rows.bin").unlink()
        (directory / "packed.bin").unlink()
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    seg.files = {name: directory / f"{name}.npy" for name in ("tokens", *out)}
    seg.tokens = np.asarray(np.load(seg.files["tokens"], mmap_mode="r"))
    seg.indices = np.asarray(np.load(seg.files["indices"], mmap_mode="r"))
    seg.weights = np.asarray(np.load(seg.files["weights"], mmap_mode="r"))
    seg.masks = np.asarray(np.load(seg.files["masks"], mmap_mode="r"))
    seg.champ_rows = np.asarray(np.load(seg.files["champ_rows"], mmap_mode="r"))
    seg.build_categories(n_cats)
    # The files go with the segment (a save has linked them into the index by then; maps stay valid).
    weakref.finalize(seg, shutil.rmtree, directory, True)
    return seg


def remove_stale_spills(directory: Path) -> list[str]:
    """Remove merge spill directories whose process is gone (a build killed midway)."""
    removed = []
    for path in Path(directory).glob("spill-*"):
        try:
            pid = int(path.name.split("-")[1])
            os.kill(pid, 0)
            continue
        except (ValueError, IndexError, ProcessLookupError):
            pass
        except PermissionError:
            continue  # another user's live process
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    return removed


def _link_or_copy(source: Path, target: Path) -> bool:
    """Put `source`'s bytes at `target` without reading them into this process: a hard link, else a
    file copy. False when `source` is gone."""
    try:
        os.link(source, target)
        return True
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        shutil.copyfile(source, target)
    except FileNotFoundError:
        return False
    with open(target, "rb") as fh:
        os.fsync(fh.fileno())
    return True


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
