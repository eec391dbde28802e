"""Vectors of papers by id: exact cosine search when small, an HNSW graph (usearch) when large.

Rows are append-only: replacing a paper's vector appends a new row and retires the old one, so the row
number can serve as the ANN key without ever reusing a key. ANN candidates are re-scored against the
stored vectors, so scores are true cosines (to the storage precision) whichever path answered.

On disk (a directory):
  header.json         format, embedder_name, dim, storage, count, and the names of the files below
  vectors-<tag>.npy   one row per slot, in the storage dtype (int8 rows come with scales-<tag>.npy)
  ids-<tag>.json      the id of each row, null for retired rows
  ann-<tag>.usearch   the graph, when the index is large enough to have one
The data files get fresh names on every save and header.json is replaced last, so an interrupted save
leaves the previous header and its files in force.
"""

from __future__ import annotations

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
# Brute force reads every row per query (10k x 256 floats: ~1-2 ms on one core); above that the graph answers.
EXACT_THRESHOLD = 10_000
# HNSW parameters chosen in bench/dense_ann.py (BENCHMARKS.md, "Dense index").
ANN_CONNECTIVITY = 16
ANN_EXPANSION_ADD = 128
ANN_EXPANSION_SEARCH = 64
# The graph is asked for this many candidates per result wanted, then re-scored exactly.
ANN_OVERFETCH = 2
# After this many widening rounds under a selective filter, score the allowed rows exactly instead.
FILTER_ROUNDS = 4
_GROW = 1.5


class DenseIndexError(ValueError):
    """A dense index that cannot be loaded or does not match the embedder in use."""


class DenseIndex:
    """Unit vectors by paper id with cosine search."""

    def __init__(self, dim: int, embedder_name: str, *, storage: str = "f16",
                 exact_threshold: int = EXACT_THRESHOLD, ef: int = ANN_EXPANSION_SEARCH) -> None:
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {', '.join(STORAGES)}, not {storage!r}")
        self.dim = int(dim)
        self.embedder_name = embedder_name
        self.storage = storage
        self.exact_threshold = exact_threshold
        self.ef = ef
        self._lock = threading.RLock()
        self._rows = 0  # slots used, live or retired
        self._mat = np.zeros((0, self.dim), dtype=_dtype(storage))
        self._scales = np.zeros(0, dtype=np.float32)  # int8 only: row = int8 * scale
        self._row_ids: list[str | None] = []
        self._row_of: dict[str, int] = {}
        self._exact_cache: np.ndarray | None = None  # float32 copy of the rows, for brute force when small
        self._ann: Any = None

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
                # all cores for bulk additions, one for the trickle of an incremental update
                self._ann.add(np.arange(start, start + len(ids), dtype=np.uint64), vectors,
                              threads=0 if len(ids) >= 1024 else 1)
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
        if self._ann is not None:
            self._ann.remove(np.asarray(rows, dtype=np.uint64))

    def compact(self) -> None:
        """Drop retired rows (renumbers rows, so the graph is rebuilt)."""
        with self._lock:
            live = [row for row, i in enumerate(self._row_ids) if i is not None]
            if len(live) == self._rows:
                return
            ids = [self._row_ids[r] for r in live]
            vectors = self._decode(np.asarray(live, dtype=np.int64))
            fresh = DenseIndex(self.dim, self.embedder_name, storage=self.storage,
                               exact_threshold=self.exact_threshold, ef=self.ef)
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
            return self._approximate(query, limit, keep, filtered=allowed is not None or bool(exclude))

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
                     filtered: bool) -> list[tuple[str, float]]:
        fetch = max(limit * ANN_OVERFETCH, limit + 8)
        live = len(self._row_of)
        for _ in range(FILTER_ROUNDS):
            fetch = min(fetch, live)
            self._ann.expansion_search = max(self.ef, fetch)
            matches = self._ann.search(query, fetch, threads=1)
            rows = np.asarray(matches.keys, dtype=np.int64)
            scores = self._decode(rows) @ query
            order = np.argsort(-scores, kind="stable")
            results = [(self._row_ids[int(rows[i])], float(scores[i])) for i in order
                       if keep(self._row_ids[int(rows[i])])][:limit]
            if len(results) >= limit or len(rows) >= live or not filtered:
                return results  # type: ignore[return-value]
            fetch *= 8
        # A selective filter: score the rows it allows, exactly.
        allowed_rows = np.fromiter((r for r, i in enumerate(self._row_ids) if keep(i)), dtype=np.int64)
        if not len(allowed_rows):
            return []
        return self._exact(query, limit, lambda _: True, rows=allowed_rows)

    # ------------------------------------------------------------------ storage
    def _reserve(self, rows: int) -> None:
        if rows <= self._mat.shape[0]:
            return
        capacity = max(rows, int(self._mat.shape[0] * _GROW), 1024)
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

    def _build_ann(self) -> None:
        self._ann = _new_ann(self.dim, self.storage)
        live = np.asarray([r for r, i in enumerate(self._row_ids) if i is not None], dtype=np.uint64)
        for start in range(0, len(live), 65536):  # bounded float32 copies
            rows = live[start:start + 65536]
            self._ann.add(rows, self._decode(rows.astype(np.int64)), threads=0)

    def memory_bytes(self) -> int:
        """Vectors plus graph, as held in memory."""
        size = self._mat.nbytes + self._scales.nbytes
        if self._exact_cache is not None:
            size += self._exact_cache.nbytes
        if self._ann is not None:
            size += int(self._ann.memory_usage)
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
                files["ann"] = f"ann-{tag}.usearch"
                tmp = directory / f".{files['ann']}.tmp"
                self._ann.save(str(tmp))
                _fsync_path(tmp)
                os.replace(tmp, directory / files["ann"])
            header = {"format": FORMAT_VERSION, "embedder_name": self.embedder_name, "dim": self.dim,
                      "storage": self.storage, "count": len(self._row_of), "rows": self._rows,
                      "exact_threshold": self.exact_threshold, "ef": self.ef, "files": files}
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
                    ef=int(header.get("ef", ANN_EXPANSION_SEARCH)))
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
            index._ann = _new_ann(index.dim, index.storage)
            index._ann.load(str(directory / files["ann"]))
        elif len(index._row_of) > index.exact_threshold:
            index._build_ann()
        return index


def _new_ann(dim: int, storage: str) -> Any:
    from usearch.index import Index

    # The graph keeps its own copy of the vectors; int8 there halves it again and the exact re-scoring
    # against our rows restores the order.
    return Index(ndim=dim, metric="ip" if storage != "int8" else "cos",
                 dtype={"f32": "f32", "f16": "f16", "int8": "i8"}[storage],
                 connectivity=ANN_CONNECTIVITY, expansion_add=ANN_EXPANSION_ADD,
                 expansion_search=ANN_EXPANSION_SEARCH)


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
