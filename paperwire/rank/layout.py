"""The map: a 2D layout of every paper, from the saved index's vectors.

At most LANDMARKS papers (a random sample) are laid out by the layout method; every other paper is placed
at the similarity-weighted mean of its nearest laid-out papers (faiss, a chunk at a time). Time and memory
therefore stop growing with the corpus beyond the placement pass and one pair of floats per paper.
The method was chosen by measurement (bench/map_layout.py, BENCHMARKS.md "Map layout method").
Saved under HOME/map/ as generations (paperwire/rank/generations.py), with the ids in layout order.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paperwire.index.saved_vectors import saved_vectors
from paperwire.rank.generations import build_lock, read_array, read_document, read_manifest, write_generation
from paperwire.sources.parallel import available_cores

MAP_DIR = "map"
METHOD = "opentsne"
LANDMARKS = 30_000
SMALL_LAYOUT = 10_000
PLACE_NEIGHBOURS = 10
PLACE_CHUNK = 16_384
PAYLOAD_MAGIC = b"PWMAP1\0\0"
NO_VALUE = 0xFFFF  # a point without topic or day in the payload
Progress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


def map_dir(home: Path) -> Path:
    return home / MAP_DIR


def _unit(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def lay_out(vectors: np.ndarray, *, method: str = METHOD, seed: int = 0) -> np.ndarray:
    """2D positions of unit vectors by `method` (cosine neighbourhoods)."""
    n = len(vectors)
    if n < 5:  # too few for any neighbourhood method: a circle
        angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
        return np.stack([np.cos(angle), np.sin(angle)], axis=1).astype(np.float32)
    if method == "opentsne":
        from openTSNE import TSNE

        perplexity = float(min(30, max(2, (n - 1) // 3)))
        # Small sets: Barnes-Hut on one thread (the FFT grid and idle worker threads cost more than they
        # save: 407 papers took 35-67 s that way on a busy 2-core machine, 5 s like this).
        small = n < SMALL_LAYOUT
        embedding = TSNE(perplexity=perplexity, metric="cosine", n_jobs=1 if small else available_cores(),
                         negative_gradient_method="bh" if small else "fft", random_state=seed,
                         verbose=False).fit(np.ascontiguousarray(vectors, dtype=np.float32))
        return np.asarray(embedding, dtype=np.float32)
    if method == "umap":
        import umap

        return umap.UMAP(n_neighbors=min(15, n - 1), metric="cosine", random_state=seed,
                         low_memory=True).fit_transform(vectors).astype(np.float32)
    if method == "pacmap":
        import pacmap

        return pacmap.PaCMAP(n_components=2, n_neighbors=min(10, n - 2),
                             random_state=seed).fit_transform(vectors).astype(np.float32)
    raise ValueError(f"unknown layout method {method!r}")


def compute_layout(vectors: np.ndarray | Callable[[np.ndarray], np.ndarray], n: int | None = None, *,
                   landmarks: int = LANDMARKS, seed: int = 0, method: str = METHOD,
                   progress: Progress = _no_progress) -> np.ndarray:
    """Positions (n, 2) for n papers. `vectors` is an array, or a function from row numbers to their unit
    vectors (so that a large corpus is never decoded whole)."""
    import faiss

    rows_of: Callable[[np.ndarray], np.ndarray]
    if callable(vectors):
        rows_of = vectors
        assert n is not None
    else:
        array = _unit(vectors)
        n = len(array)
        rows_of = lambda rows: array[rows]  # noqa: E731
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(n, min(n, landmarks), replace=False))
    progress("laying out", 0, n)
    anchor_vectors = rows_of(chosen)
    anchor_positions = lay_out(anchor_vectors, method=method, seed=seed)
    positions = np.zeros((n, 2), dtype=np.float32)
    positions[chosen] = anchor_positions
    progress("laying out", len(chosen), n)
    if len(chosen) == n:
        return positions
    index = faiss.IndexFlatIP(anchor_vectors.shape[1])
    index.add(np.ascontiguousarray(anchor_vectors, dtype=np.float32))
    is_anchor = np.zeros(n, dtype=bool)
    is_anchor[chosen] = True
    rest = np.flatnonzero(~is_anchor)
    k = min(PLACE_NEIGHBOURS, len(chosen))
    for start in range(0, len(rest), PLACE_CHUNK):
        rows = rest[start:start + PLACE_CHUNK]
        sims, found = index.search(np.ascontiguousarray(rows_of(rows), dtype=np.float32), k)
        # the nearest weigh most: a sharp softmax over cosine, so a paper sits by its closest neighbours
        weights = np.exp((sims - sims[:, :1]) / 0.02)
        weights /= weights.sum(axis=1, keepdims=True)
        positions[rows] = np.einsum("ij,ijk->ik", weights, anchor_positions[found])
        progress("placing the other papers", len(chosen) + start + len(rows), n)
    return positions


@dataclass
class MapLayout:
    ids: list[str]
    positions: np.ndarray  # (n, 2) float32
    embedder: str
    rev: int
    method: str
    built_at: str
    generation: int = 0

    def __post_init__(self) -> None:
        self.position = {pid: i for i, pid in enumerate(self.ids)}


def build_map(home: Path, *, landmarks: int = LANDMARKS, seed: int = 0, method: str = METHOD,
              progress: Progress = _no_progress) -> MapLayout:
    """Lay out every paper of the saved index and save a new generation of the map."""
    saved = saved_vectors(home)
    dense = saved.dense
    ids = dense.ids()

    def rows_of(rows: np.ndarray) -> np.ndarray:
        return _unit(dense.vectors([ids[r] for r in rows.tolist()]))

    with build_lock(map_dir(home)):
        positions = compute_layout(rows_of, len(ids), landmarks=landmarks, seed=seed, method=method,
                                   progress=progress)
        built_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        manifest = write_generation(map_dir(home), {"positions": positions}, {"ids": ids},
                                    {"embedder": dense.embedder_name, "rev": saved.rev, "papers": len(ids),
                                     "method": method, "landmarks": min(landmarks, len(ids)), "built_at": built_at})
    return MapLayout(ids, positions, dense.embedder_name, saved.rev, method, built_at, int(manifest["generation"]))


def load_map(home: Path) -> MapLayout | None:
    directory = map_dir(home)
    manifest = read_manifest(directory)
    if manifest is None:
        return None
    try:
        layout = MapLayout(read_document(directory, manifest, "ids"), read_array(directory, manifest, "positions"),
                           manifest["embedder"], int(manifest["rev"]), manifest["method"], manifest["built_at"],
                           int(manifest["generation"]))
    except (OSError, ValueError, KeyError):
        return None
    return layout if len(layout.ids) == len(layout.positions) else None


def map_manifest(home: Path) -> dict[str, Any] | None:
    return read_manifest(map_dir(home))


def encode_points(positions: np.ndarray, topics: np.ndarray, ages: np.ndarray) -> tuple[bytes, list[float]]:
    """The browser's buffer: a 32-byte header (magic, uint32 count, uint32 reserved, float32 bounds
    x0 y0 x1 y1), then uint16 x, uint16 y (quantised over the bounds), uint16 topic index and uint16
    age in days (NO_VALUE: none), each as one little-endian array. 8 bytes a paper."""
    n = len(positions)
    if n:
        low, high = positions.min(axis=0), positions.max(axis=0)
    else:
        low, high = np.zeros(2, np.float32), np.ones(2, np.float32)
    span = np.where(high - low > 0, high - low, 1.0)
    quantised = np.round((positions - low) / span * 65535).clip(0, 65535).astype("<u2") if n else \
        np.zeros((0, 2), "<u2")
    bounds = [float(low[0]), float(low[1]), float(high[0]), float(high[1])]
    header = PAYLOAD_MAGIC + struct.pack("<II4f", n, 0, *bounds)
    body = b"".join([np.ascontiguousarray(quantised[:, 0]).tobytes(), np.ascontiguousarray(quantised[:, 1]).tobytes(),
                     np.asarray(topics, dtype="<u2").tobytes(), np.asarray(ages, dtype="<u2").tobytes()])
    return header + body, bounds
