"""Choose the map's 2D layout method by measurement: UMAP, PaCMAP and openTSNE on the same sample.

A random sample of a home's paper vectors (the index's dense vectors, one embedder) is laid out by each
method in its own process (so that each one's peak RSS is its own). Reported per method: seconds, peak
RSS, and neighbour preservation: for 2,000 random points, the share of their 10 nearest neighbours by
cosine in the embedding space that are also among their 10 nearest in the layout (kNN recall@10), and the
same for 50 neighbours. Also reported: the landmark placement the map uses for corpora larger than it
lays out directly (lay out a sample, put every other paper at the weighted mean of its nearest laid-out
papers), measured the same way on the papers that were placed rather than laid out.

    python bench/map_layout.py --home HOME [--sample 20000] [--markdown BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.quality import machine, write_section  # noqa: E402

METHODS = ("umap", "pacmap", "opentsne")
PROBES = 2000


def load_vectors(home: Path) -> tuple[np.ndarray, str]:
    from paperwire.index.dense import DenseIndex
    from paperwire.index.engine import _read_manifest, index_dir

    manifest = _read_manifest(index_dir(home))
    if manifest is None:
        raise SystemExit(f"{home}: no search index")
    dense = DenseIndex.load(index_dir(home) / manifest["generation_dir"] / "dense")
    return dense.vectors(dense.ids()), dense.embedder_name


def run_one(method: str, path: Path, out: Path) -> None:
    """Lay out the vectors in `path` with `method`; write the layout and the time it took."""
    vectors = np.load(path).astype(np.float32)
    started = time.perf_counter()
    if method == "umap":
        import umap

        layout = umap.UMAP(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=None,
                           low_memory=True).fit_transform(vectors)
    elif method == "pacmap":
        import pacmap

        layout = pacmap.PaCMAP(n_components=2, n_neighbors=10, random_state=None).fit_transform(vectors)
    elif method == "opentsne":
        from openTSNE import TSNE

        layout = np.asarray(TSNE(metric="cosine", n_jobs=os.cpu_count() or 1, random_state=0).fit(vectors))
    else:
        raise SystemExit(f"unknown method {method}")
    seconds = time.perf_counter() - started
    np.save(out, np.asarray(layout, dtype=np.float32))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb}))


def knn_recall(vectors: np.ndarray, layout: np.ndarray, probes: np.ndarray, k: int) -> float:
    """Share of each probe's k nearest neighbours (cosine, high-dim) kept among its k nearest in 2D."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    kept = 0
    for start in range(0, len(probes), 256):
        rows = probes[start:start + 256]
        sims = unit[rows] @ unit.T
        sims[np.arange(len(rows)), rows] = -np.inf
        high = np.argpartition(-sims, k, axis=1)[:, :k]
        dists = ((layout[rows, None, :] - layout[None, :, :]) ** 2).sum(-1)
        dists[np.arange(len(rows)), rows] = np.inf
        low = np.argpartition(dists, k, axis=1)[:, :k]
        kept += sum(len(set(h) & set(lo)) for h, lo in zip(high.tolist(), low.tolist(), strict=True))
    return kept / (len(probes) * k)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path)
    parser.add_argument("--sample", type=int, default=20000)
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument("--landmark", action="store_true", help="also measure the map's own pipeline")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        run_one(args.one, args.input, args.output)
        return 0

    vectors, embedder = load_vectors(args.home)
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(len(vectors), min(args.sample, len(vectors)), replace=False))
    chosen = vectors[sample].astype(np.float32)
    probes = rng.choice(len(chosen), min(PROBES, len(chosen)), replace=False)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "vectors.npy"
        np.save(data, chosen)
        for method in args.methods:
            out = Path(tmp) / f"{method}.npy"
            proc = subprocess.run([sys.executable, __file__, "--one", method, "--input", str(data),
                                   "--output", str(out)], capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{method} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            measured = json.loads(proc.stdout.strip().splitlines()[-1])
            layout = np.load(out)
            row = {"method": method, **measured, "recall10": knn_recall(chosen, layout, probes, 10),
                   "recall50": knn_recall(chosen, layout, probes, 50)}
            rows.append(row)
            print(json.dumps(row), flush=True)
        if args.landmark:
            landmark = landmark_row(chosen, probes)
            rows.append(landmark)
            print(json.dumps(landmark), flush=True)
    if args.markdown:
        write_section(args.markdown, markdown(rows, len(chosen), len(vectors), embedder))
    return 0


def landmark_row(chosen: np.ndarray, probes: np.ndarray) -> dict[str, Any]:
    """The map's own pipeline (paperwire.index.layout) with a landmark sample of half the points."""
    from paperwire.rank.layout import compute_layout

    started = time.perf_counter()
    layout = compute_layout(chosen, landmarks=len(chosen) // 2, seed=0)
    seconds = time.perf_counter() - started
    return {"method": f"paperwire map ({len(chosen) // 2:,} laid out, the rest placed)", "seconds": seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "recall10": knn_recall(chosen, layout, probes, 10), "recall50": knn_recall(chosen, layout, probes, 50)}


def markdown(rows: list[dict[str, Any]], sample: int, total: int, embedder: str) -> str:
    info = machine()
    lines = ["## Map layout method", "",
             f"{sample:,} papers drawn at random from {total:,} real arXiv papers, vectors of `{embedder}`. Each "
             "method runs in its own process on all cores; recall@k: of a point's k nearest neighbours by cosine, "
             f"the share that are among its k nearest on the map ({PROBES:,} random points). Times include UMAP's and "
             "PaCMAP's one-off numba compilation (each run is a fresh process, as a build is). With --landmark, the "
             "last row is the map's own pipeline: half the sample laid out, the other half placed at the weighted "
             "mean of their nearest laid-out papers (peak RSS there is the bench process's).", "",
             "Command: `python bench/map_layout.py --home HOME --sample N --markdown BENCHMARKS.md`  ",
             f"Machine: {info['cpu']}, {info['cores']} cores shared with other work (load average "
             f"{info['load_average']}), Python {info['python']}", "",
             "| method | seconds | peak RSS MB | recall@10 | recall@50 |", "|---|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['method']} | {row['seconds']:.1f} | {row['peak_rss_mb']:.0f} | {row['recall10']:.3f} | "
                     f"{row['recall50']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
