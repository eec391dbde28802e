"""Vectors of papers by id: exact cosine search when small, a compressed scan (faiss) when large.

Large indexes keep a product-quantised copy of every row (faiss PQ "fast scan": 4-bit codes, one byte
per 8 dimensions after a random rotation). A search scans all codes, which is cheap, takes the best
`candidates` rows by the approximate score and re-scores them exactly against the stored vectors, so
scores are true cosines (to the storage precision). A graph (HNSW) was measured first and dropped: short
keyword queries embed far from the papers' cluster, and the graph's greedy walk missed most of their
exact top 10 (bench/dense_ann.py); it was also the slowest part of an index build.

Rows are append-only: replacing a paper's vector appends a new row and retires the old one, so the row
number is also the row's position in the quantised copy. Retired rows stay there until `compact()` and
are skipped when candidates are read.

On disk (a directory):
  header.json         format, embedder_name, dim, storage, count, and the names of the files below
  vectors-<tag>.npy   one row per slot, in the storage dtype (int8 rows come with scales-<tag>.npy)
  ids-<tag>.json      the id of each row, null for retired rows
  ann-<tag>.faiss     the quantised copy, when the index is large enough to have one (rebuilt from the
                      rows when missing or unreadable: it holds nothing the rows do not)
The data files get fresh names on every save and header.json is replaced last, so an interrupted save
leaves the previous header and its files in force.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
STORAGES = ("f32", "f16", "int8")
# Brute force reads every row per query (10k x 256 floats: ~1-2 ms on one core); above that the quantised
# scan answers.
EXACT_THRESHOLD = 10_000
# Candidates re-scored exactly per search, at least (bench/dense_ann.py, BENCHMARKS.md "Dense index": at
# 100k papers 2,000 candidates hold tie-tolerant recall@10 near 0.99 for short and long queries alike).
ANN_CANDIDATES = 2000
# ... and at least this share of the live rows, as more papers crowd the approximate scores near the top
# (at 1M, 2,000 candidates gave 0.95 on the search mix and 0.85 on held-out papers; 4,000: 0.98 and 0.95).
ANN_CANDIDATE_SHARE = 0.004
# Dimensions per product-quantiser code (4 bits each); the rotation spreads the variance over them.
ANN_DIMS_PER_CODE = 4
# Rows the quantiser is trained on (more changes nothing measurable).
ANN_TRAIN_ROWS = 20_000
# After this many widening rounds under a selective filter, score the allowed rows exactly instead.
FILTER_ROUNDS = 4
_GROW = 1.5


class DenseIndexError(ValueError):
    """A dense index that cannot be loaded or does not match the embedder in use."""


class DenseIndex:
    """Unit vectors by paper id with cosine search."""

    def __init__(self, dim: int, embedder_name: str, *, storage: str = "f16",
                 exact_threshold: int = EXACT_THRESHOLD, candidates: int = ANN_CANDIDATES) -> None:
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {', '.join(STORAGES)}, not {storage!r}")
        self.dim = int(dim)
        self.embedder_name = embedder_name
        self.storage = storage
        self.exact_threshold = exact_threshold
        self.candidates = candidates
        self._lock = threading.RLock()
        self._rows = 0  # slots used, live or retired
        self._mat = np.zeros((0, self.dim), dtype=_dtype(storage))
        self._scales = np.zeros(0, dtype=np.float32)  # int8 only: row = int8 * scale
        self._row_ids: list[str | None] = []
        self._row_of: dict[str, int] = {}
        self._exact_cache: np.ndarray | None = None  # float32 copy of the rows, for brute force when small
        self._ann: Any = None  # faiss index over rows 0.._rows-1 (retired ones included), or None

    # ------------------------------------------------------------------ contents
    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, paper_id: object) -> bool:
        return paper_id in self._row_of

    def ids(self) -> list[str]:
        with self._lock:
            return [i for i in self._row_ids if i is not None]

    def vector(self, paper_id: str) -> np.ndarray | None:
        with self._lock:
            row = self._row_of.get(paper_id)
            return None if row is None else self._decode(np.array([row]))[0]

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """float32 rows for `ids`, in order; KeyError names the first unknown id."""
        with self._lock:
            rows = []
            for paper_id in ids:
                row = self._row_of.get(paper_id)
                if row is None:
                    raise KeyError(paper_id)
                rows.append(row)
            return self._decode(np.asarray(rows, dtype=np.int64))

    # ------------------------------------------------------------------ updates
    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add vectors, replacing any existing vector of the same id (the last one wins within a call)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(ids) != vectors.shape[0]:
            raise ValueError(f"expected {len(ids)} vectors of dimension {self.dim}, got shape {vectors.shape}")
        if not len(ids):
            return
        latest = {paper_id: i for i, paper_id in enumerate(ids)}  # duplicates within one call: last wins
        order = np.fromiter(latest.values(), dtype=np.int64, count=len(latest))
        ids = [ids[i] for i in order]
        vectors = _unit(vectors[order])
        with self._lock:
            self._retire([i for i in ids if i in self._row_of])
            start = self._rows
            self._reserve(start + len(ids))
            self._store(start, vectors)
            for offset, paper_id in enumerate(ids):
                self._row_ids.append(paper_id)
                self._row_of[paper_id] = start + offset
            self._rows += len(ids)
            self._exact_cache = None
            if self._ann is not None:
                self._ann.add(vectors)  # positions follow row numbers
            elif len(self._row_of) > self.exact_threshold:
                self._build_ann()

    def remove(self, ids: Iterable[str]) -> None:
        with self._lock:
            self._retire([i for i in ids if i in self._row_of])
            self._exact_cache = None

    def _retire(self, ids: list[str]) -> None:
        if not ids:
            return
        rows = [self._row_of.pop(i) for i in ids]
        for row in rows:
            self._row_ids[row] = None

    def compact(self) -> None:
        """Drop retired rows (renumbers rows, so the quantised copy is rebuilt)."""
        with self._lock:
            live = [row for row, i in enumerate(self._row_ids) if i is not None]
            if len(live) == self._rows:
                return
            ids = [self._row_ids[r] for r in live]
            vectors = self._decode(np.asarray(live, dtype=np.int64))
            fresh = DenseIndex(self.dim, self.embedder_name, storage=self.storage,
                               exact_threshold=self.exact_threshold, candidates=self.candidates)
            fresh._reserve(len(live))
            fresh._store(0, vectors)
            fresh._row_ids = list(ids)  # type: ignore[arg-type]
            fresh._row_of = {i: r for r, i in enumerate(ids)}  # type: ignore[misc]
            fresh._rows = len(live)
            if len(live) > self.exact_threshold:
                fresh._build_ann()
            self.__dict__.update({k: v for k, v in fresh.__dict__.items() if k != "_lock"})

    # ------------------------------------------------------------------ search
    def search(self, vector: np.ndarray, limit: int = 10, *, exclude: set[str] | None = None,
               allowed: Callable[[str], bool] | None = None) -> list[tuple[str, float]]:
        """The `limit` ids nearest to `vector` by cosine, best first, honouring `exclude` and `allowed`."""
        query = _unit(np.asarray(vector, dtype=np.float32).reshape(1, -1))[0]
        if query.shape[0] != self.dim:
            raise ValueError(f"query has dimension {query.shape[0]}, the index {self.dim}")
        if limit <= 0:
            return []
        exclude = exclude or set()

        def keep(paper_id: str | None) -> bool:
            return paper_id is not None and paper_id not in exclude and (allowed is None or allowed(paper_id))

        with self._lock:
            if not self._row_of:
                return []
            if self._ann is None:
                return self._exact(query, limit, keep)
            _one_omp_thread()
            return self._approximate(query, limit, keep, filtered=allowed is not None, excluded=len(exclude))

    def neighbours(self, paper_id: str, limit: int = 10, *,
                   allowed: Callable[[str], bool] | None = None) -> list[tuple[str, float]]:
        """Nearest other papers to a paper in the index (never the paper itself); [] for an unknown id."""
        vector = self.vector(paper_id)
        if vector is None:
            return []
        return self.search(vector, limit, exclude={paper_id}, allowed=allowed)

    def _exact(self, query: np.ndarray, limit: int, keep: Callable[[str | None], bool],
               rows: np.ndarray | None = None) -> list[tuple[str, float]]:
        if rows is None:
            if self._exact_cache is None:
                self._exact_cache = self._decode(np.arange(self._rows))
            scores = self._exact_cache @ query
            rows = np.arange(self._rows)
        else:
            scores = self._decode(rows) @ query
        results: list[tuple[str, float]] = []
        # Look at the best few first; widen only if the filter rejects them.
        width = min(len(scores), max(4 * limit, 64))
        seen = 0
        while seen < len(scores) and len(results) < limit:
            if width < len(scores):
                top = np.argpartition(-scores, width - 1)[:width]
            else:
                top = np.arange(len(scores))
            top = top[np.argsort(-scores[top], kind="stable")][seen:]
            for pos in top:
                paper_id = self._row_ids[int(rows[pos])]
                if keep(paper_id):
                    results.append((paper_id, float(scores[pos])))  # type: ignore[arg-type]
                    if len(results) == limit:
                        break
            seen = width
            width = min(len(scores), width * 8)
        return results

    def _approximate(self, query: np.ndarray, limit: int, keep: Callable[[str | None], bool],
                     filtered: bool, excluded: int) -> list[tuple[str, float]]:
        # `wanted` candidates that pass the filter are re-scored, whatever the filter: a filter that lets
        # through a share s of the rows needs about wanted / s candidates from the scan.
        wanted = max(self.candidates, int(len(self._row_of) * ANN_CANDIDATE_SHARE), 4 * limit)
        fetch = wanted + excluded
        for _ in range(FILTER_ROUNDS):
            fetch = min(fetch, self._rows)
            _, found = self._ann.search(query[None, :], fetch)
            rows = found[0]
            rows = rows[rows >= 0]
            # einsum, not a BLAS product: BLAS threads waiting for a busy core cost more than the product
            scores = np.einsum("ij,j->i", self._decode_candidates(rows), query)
            order = np.argsort(-scores, kind="stable")
            ranked = zip(map(self._row_ids.__getitem__, rows[order].tolist()), scores[order].tolist(), strict=True)
            if not filtered:  # only exclusions and retired rows to skip: stop at `limit`
                return list(itertools.islice(((pid, score) for pid, score in ranked if keep(pid)), limit))
            passing = [(pid, score) for pid, score in ranked if keep(pid)]
            if len(passing) >= wanted or fetch >= self._rows:
                return passing[:limit]  # type: ignore[return-value]
            fetch = int(1.5 * wanted * fetch / max(len(passing), 1))
            if fetch > self._rows // 4:
                break
        # A selective filter: score the rows it allows, exactly.
        allowed_rows = np.fromiter((r for r, i in enumerate(self._row_ids) if keep(i)), dtype=np.int64)
        if not len(allowed_rows):
            return []
        return self._exact(query, limit, lambda _: True, rows=allowed_rows)

    # ------------------------------------------------------------------ storage
    def reserve(self, more: int) -> None:
        """Make room for `more` rows beyond those in use (a bulk build knows its size: no copies while it
        grows). The system zeroes the room lazily, so rows never written cost no memory."""
        with self._lock:
            if self._rows + more > self._mat.shape[0]:
                self._reserve_exactly(self._rows + more)

    def _reserve(self, rows: int) -> None:
        if rows <= self._mat.shape[0]:
            return
        self._reserve_exactly(max(rows, int(self._mat.shape[0] * _GROW), 1024))

    def _reserve_exactly(self, capacity: int) -> None:
        mat = np.zeros((capacity, self.dim), dtype=self._mat.dtype)
        mat[: self._rows] = self._mat[: self._rows]
        self._mat = mat
        if self.storage == "int8":
            scales = np.zeros(capacity, dtype=np.float32)
            scales[: self._rows] = self._scales[: self._rows]
            self._scales = scales

    def _store(self, start: int, vectors: np.ndarray) -> None:
        end = start + len(vectors)
        if self.storage == "int8":
            peak = np.abs(vectors).max(axis=1)
            peak[peak == 0] = 1.0
            self._scales[start:end] = peak / 127.0
            self._mat[start:end] = np.round(vectors / self._scales[start:end, None]).astype(np.int8)
        else:
            self._mat[start:end] = vectors

    def _decode(self, rows: np.ndarray) -> np.ndarray:
        out = self._mat[rows].astype(np.float32)
        if self.storage == "int8":
            out *= self._scales[rows][:, None]
        return out

    def _decode_candidates(self, rows: np.ndarray) -> np.ndarray:
        """float32 rows, f16 ones through faiss's vectorised conversion (numpy's costs ~1 us a row)."""
        if self.storage != "f16":
            return self._decode(rows)
        half = np.take(self._mat, rows, axis=0).view(np.uint8)  # take: about 3x faster than mat[rows] here
        return _half_decoder(self.dim).decode(half).reshape(len(rows), self.dim)

    def _build_ann(self) -> None:
        live = np.asarray([r for r, i in enumerate(self._row_ids) if i is not None], dtype=np.int64)
        sample = np.random.default_rng(0).choice(live, min(len(live), ANN_TRAIN_ROWS), replace=False)
        ann = _new_ann(self.dim)
        ann.train(self._decode_candidates(np.sort(sample)))
        for start in range(0, self._rows, 65536):  # every row, retired ones too: positions are row numbers
            ann.add(self._decode_candidates(np.arange(start, min(start + 65536, self._rows))))
        self._ann = ann

    def memory_bytes(self) -> int:
        """Vectors plus their quantised copy, as held in memory."""
        size = self._mat.nbytes + self._scales.nbytes
        if self._exact_cache is not None:
            size += self._exact_cache.nbytes
        if self._ann is not None:
            size += _ann_bytes(self._ann)
        return size

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path | str) -> None:
        """Write to `directory` atomically: new data files first, then header.json, then old files go."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tag = secrets.token_hex(4)
        with self._lock:
            files: dict[str, str] = {"vectors": f"vectors-{tag}.npy", "ids": f"ids-{tag}.json"}
            _write_atomic(directory / files["vectors"], lambda fh: np.save(fh, self._mat[: self._rows]))
            _write_atomic(directory / files["ids"], lambda fh: fh.write(json.dumps(self._row_ids).encode()))
            if self.storage == "int8":
                files["scales"] = f"scales-{tag}.npy"
                _write_atomic(directory / files["scales"], lambda fh: np.save(fh, self._scales[: self._rows]))
            if self._ann is not None:
                import faiss

                files["ann"] = f"ann-{tag}.faiss"
                ann = self._ann
                _write_atomic(directory / files["ann"], lambda fh: fh.write(faiss.serialize_index(ann).tobytes()))
            header = {"format": FORMAT_VERSION, "embedder_name": self.embedder_name, "dim": self.dim,
                      "storage": self.storage, "count": len(self._row_of), "rows": self._rows,
                      "exact_threshold": self.exact_threshold, "candidates": self.candidates, "files": files}
            _write_atomic(directory / "header.json", lambda fh: fh.write(json.dumps(header, indent=2).encode()))
            _fsync_path(directory)
        for leftover in directory.iterdir():
            if leftover.name != "header.json" and leftover.name not in files.values():
                leftover.unlink(missing_ok=True)

    @classmethod
    def load(cls, directory: Path | str, *, expected_embedder: str | None = None) -> DenseIndex:
        """Read a saved index; refuse one built by another embedder than `expected_embedder`."""
        directory = Path(directory)
        try:
            header = json.loads((directory / "header.json").read_text())
        except FileNotFoundError:
            raise DenseIndexError(f"{directory}: no dense index (header.json missing)") from None
        except (OSError, ValueError) as exc:
            raise DenseIndexError(f"{directory}/header.json: unreadable ({exc})") from None
        if header.get("format") != FORMAT_VERSION:
            raise DenseIndexError(f"{directory}: dense index format {header.get('format')!r}, "
                                  f"this version reads {FORMAT_VERSION}; rebuild the index")
        if expected_embedder is not None and header.get("embedder_name") != expected_embedder:
            raise DenseIndexError(f"{directory}: vectors were made by {header.get('embedder_name')!r}, "
                                  f"not {expected_embedder!r}; rebuild the index")
        index = cls(int(header["dim"]), header["embedder_name"], storage=header["storage"],
                    exact_threshold=int(header.get("exact_threshold", EXACT_THRESHOLD)),
                    candidates=int(header.get("candidates", ANN_CANDIDATES)))
        files = header["files"]
        try:
            mat = np.load(directory / files["vectors"])
            row_ids = json.loads((directory / files["ids"]).read_text())
            scales = np.load(directory / files["scales"]) if "scales" in files else index._scales
        except (OSError, ValueError) as exc:
            raise DenseIndexError(f"{directory}: damaged dense index ({exc}); rebuild the index") from None
        if mat.shape != (int(header["rows"]), index.dim) or len(row_ids) != mat.shape[0]:
            raise DenseIndexError(f"{directory}: dense index files disagree with header.json; rebuild the index")
        index._mat, index._scales, index._rows = mat, scales, mat.shape[0]
        index._row_ids = row_ids
        index._row_of = {i: r for r, i in enumerate(row_ids) if i is not None}
        if "ann" in files:
            index._ann = _read_ann(directory / files["ann"], index.dim, index._rows)
        if index._ann is None and len(index._row_of) > index.exact_threshold:
            index._build_ann()  # seconds; an older or damaged file is not worth refusing the index for
        return index


_omp = threading.local()


def _one_omp_thread() -> None:
    """One OpenMP thread for faiss calls from this thread. The setting is per thread: a thread that never
    made it (a web server's request threads) ran each scan and decode on every core, and the idle spinning
    more than doubled the CPU time of a hybrid search at 100k papers on two cores (6.6 -> 15.5 ms)."""
    if not getattr(_omp, "single", False):
        import faiss

        faiss.omp_set_num_threads(1)
        _omp.single = True


def _new_ann(dim: int) -> Any:
    import faiss

    faiss.omp_set_num_threads(1)  # one thread per search, as the rest of a request runs
    dims_per_code = next(k for k in (ANN_DIMS_PER_CODE, 2, 1) if dim % k == 0)
    return faiss.index_factory(dim, f"RR{dim},PQ{dim // dims_per_code}x4fs", faiss.METRIC_INNER_PRODUCT)


@functools.lru_cache(maxsize=4)
def _half_decoder(dim: int) -> Any:
    import faiss

    return faiss.ScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16)


def _read_ann(path: Path, dim: int, rows: int) -> Any:
    """The saved quantised copy, or None when it is missing, unreadable or out of step with the rows."""
    import faiss

    faiss.omp_set_num_threads(1)
    try:
        ann = faiss.deserialize_index(np.fromfile(path, dtype=np.uint8))
    except (OSError, RuntimeError, ValueError):
        return None
    return ann if ann.d == dim and ann.ntotal == rows and ann.is_trained else None


def _ann_bytes(ann: Any) -> int:
    """Codes plus rotation matrix plus codebooks, as held in memory."""
    import faiss

    pq = faiss.downcast_index(faiss.downcast_index(ann).index)
    codes = (pq.ntotal + 31) // 32 * 32 * pq.M2 // 2
    return int(codes + ann.d * ann.d * 4 + pq.M * 16 * (ann.d // pq.M) * 4)


def _dtype(storage: str) -> np.dtype:
    return np.dtype({"f32": np.float32, "f16": np.float16, "int8": np.int8}[storage])


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32)


def _write_atomic(path: Path, write: Callable[[Any], Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
