"""Choose the ANN library for the dense index by measurement.

Synthetic papers (bench/corpus.py) are embedded with the distilled static model; held-out synthetic
papers are the queries. For hnswlib and usearch (f32/f16/i8 graph storage), and for paperwire's DenseIndex
(usearch candidates re-scored against f32/f16/int8 rows): build time, graph memory, query latency p50/p99
on one thread, and tie-tolerant recall@10 against exact search — a returned item counts when its exact
score is within 1e-3 of the exact 10th best, because synthetic text has many near-ties.

    python bench/dense_ann.py --sizes 100000 1000000 [--markdown BENCHMARKS.md]

Embeddings are cached in bench/out/ so that a re-run only pays for the indexes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import generate_papers  # noqa: E402
from bench.quality import machine, write_section  # noqa: E402
from paperwire.index.dense import DenseIndex  # noqa: E402
from paperwire.index.embed import STATIC_NAME, load_embedder  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
QUERIES = 300
TIE = 1e-3
K = 10
EFS = (16, 32, 64, 128)


def embed_corpus(n: int, seed: int, home: Path) -> np.ndarray:
    cached = OUT / f"dense-static-{seed}-{n}.npy"
    if cached.exists():
        return np.load(cached)
    embedder = load_embedder("static", home)
    out = np.zeros((n, embedder.dim), dtype=np.float16)
    batch: list[str] = []
    row = 0
    started = time.perf_counter()
    for paper in generate_papers(n, seed):
        batch.append(f"{paper['title']}. {paper['abstract']}")
        if len(batch) == 8192:
            out[row:row + len(batch)] = embedder.encode(batch)
            row += len(batch)
            batch = []
            print(f"  embedded {row:,}/{n:,} ({row / (time.perf_counter() - started):,.0f}/s)", file=sys.stderr)
    if batch:
        out[row:row + len(batch)] = embedder.encode(batch)
    OUT.mkdir(exist_ok=True)
    np.save(cached, out)
    return out


def exact_top(base: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-K rows and the K-th best score per query (chunked float32 products)."""
    best = np.full((len(queries), K), -np.inf, dtype=np.float32)
    rows = np.zeros((len(queries), K), dtype=np.int64)
    for start in range(0, len(base), 200_000):
        scores = queries @ base[start:start + 200_000].astype(np.float32).T
        merged = np.concatenate([best, scores], axis=1)
        merged_rows = np.concatenate([rows, np.arange(start, start + scores.shape[1])[None, :].repeat(len(queries), 0)],
                                     axis=1)
        top = np.argpartition(-merged, K - 1, axis=1)[:, :K]
        best = np.take_along_axis(merged, top, 1)
        rows = np.take_along_axis(merged_rows, top, 1)
    return rows, best.min(axis=1)


def tie_recall(found: list[np.ndarray], base: np.ndarray, queries: np.ndarray, kth: np.ndarray) -> float:
    hits = 0
    for q, rows in enumerate(found):
        rows = np.asarray(rows[:K], dtype=np.int64)
        if len(rows):
            scores = base[rows].astype(np.float32) @ queries[q]
            hits += int((scores >= kth[q] - TIE).sum())
    return hits / (K * len(found))


def timed_queries(search, queries: np.ndarray) -> tuple[list[np.ndarray], dict[str, float]]:
    found, wall, cpu = [], [], []
    for q in queries[:20]:  # warm-up
        search(q)
    for q in queries:
        w, c = time.perf_counter(), time.process_time()
        found.append(search(q))
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    wall_ms, cpu_ms = np.array(wall) * 1000, np.array(cpu) * 1000
    return found, {"p50_ms": float(np.percentile(wall_ms, 50)), "p99_ms": float(np.percentile(wall_ms, 99)),
                   "cpu_p50_ms": float(np.percentile(cpu_ms, 50)), "cpu_p99_ms": float(np.percentile(cpu_ms, 99))}


def bench_hnswlib(base: np.ndarray, queries: np.ndarray, kth: np.ndarray, threads: int) -> list[dict[str, Any]]:
    import hnswlib

    data = base.astype(np.float32)
    index = hnswlib.Index(space="ip", dim=base.shape[1])
    started = time.perf_counter()
    index.init_index(max_elements=len(base), M=16, ef_construction=128)
    index.add_items(data, np.arange(len(base)), num_threads=threads)
    build = time.perf_counter() - started
    del data
    # hnswlib keeps float32 vectors and M*2 level-0 links (4 bytes each) per element, plus upper levels
    memory = len(base) * (base.shape[1] * 4 + 16 * 2 * 4 + 8 + 4) * 1.05
    rows = []
    for ef in EFS:
        index.set_ef(max(ef, K))
        found, lat = timed_queries(lambda q: index.knn_query(q, K, num_threads=1)[0][0], queries)
        rows.append({"library": "hnswlib", "graph": "f32", "ef": ef, "build_s": build, "memory_mb": memory / 2**20,
                     "recall": tie_recall(found, base, queries, kth), **lat})
    return rows


def bench_usearch(base: np.ndarray, queries: np.ndarray, kth: np.ndarray, dtype: str,
                  threads: int) -> list[dict[str, Any]]:
    from usearch.index import Index

    index = Index(ndim=base.shape[1], metric="ip" if dtype != "i8" else "cos", dtype=dtype, connectivity=16,
                  expansion_add=128)
    started = time.perf_counter()
    for start in range(0, len(base), 100_000):
        chunk = base[start:start + 100_000].astype(np.float32)
        index.add(np.arange(start, start + len(chunk), dtype=np.uint64), chunk, threads=threads)
    build = time.perf_counter() - started
    rows = []
    for ef in EFS:
        index.expansion_search = max(ef, K)
        found, lat = timed_queries(lambda q: index.search(q, K, threads=1).keys, queries)
        rows.append({"library": "usearch", "graph": dtype, "ef": ef, "build_s": build,
                     "memory_mb": index.memory_usage / 2**20, "recall": tie_recall(found, base, queries, kth), **lat})
    return rows


def bench_dense_index(base: np.ndarray, queries: np.ndarray, kth: np.ndarray, storage: str) -> list[dict[str, Any]]:
    """The product path: DenseIndex.add in ingest-sized batches, searches re-scored against stored rows."""
    ids = [f"p{i}" for i in range(len(base))]
    started = time.perf_counter()
    index = DenseIndex(base.shape[1], STATIC_NAME, storage=storage)
    for start in range(0, len(base), 100_000):
        index.add(ids[start:start + 100_000], base[start:start + 100_000].astype(np.float32))
    build = time.perf_counter() - started
    rows = []
    for ef in EFS:
        index.ef = ef
        found, lat = timed_queries(lambda q: [int(i[1:]) for i, _ in index.search(q, K)], queries)
        rows.append({"library": "paperwire DenseIndex", "graph": f"{storage} rows", "ef": ef, "build_s": build,
                     "memory_mb": index.memory_bytes() / 2**20, "recall": tie_recall(found, base, queries, kth),
                     **lat})
    return rows


def exact_numpy(base: np.ndarray, queries: np.ndarray, kth: np.ndarray) -> dict[str, Any]:
    data = base.astype(np.float32)
    found, lat = timed_queries(lambda q: np.argpartition(-(data @ q), K)[:K], queries[:50])
    return {"library": "numpy brute force", "graph": "f32", "ef": "-", "build_s": 0.0, "memory_mb": data.nbytes / 2**20,
            "recall": tie_recall(found, base, queries[:50], kth[:50]), **lat}


def markdown(results: dict[str, Any], command: str) -> str:
    info = results["machine"]
    lines = [
        "## Dense index",
        "",
        "Vectors: synthetic papers (bench/corpus.py) embedded with the distilled static model (256-d); "
        f"{QUERIES} held-out synthetic papers as queries. Recall: tie-tolerant recall@10 against exact search "
        f"(a result counts if its exact cosine is within {TIE:g} of the exact 10th best). Latency on one thread, "
        "wall clock and CPU time (the machine was shared; CPU time is the better guide). Build uses "
        f"{results['threads']} threads. paperwire DenseIndex rows: usearch graph (same dtype) asked for "
        "2x candidates, re-scored against the stored rows.",
        "",
        f"Command: `{command}`  ",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB RAM, Python {info['python']}",
        "",
    ]
    for size, rows in results["sizes"].items():
        lines += [f"### {int(size):,} vectors", "",
                  "| library | storage | ef | build s | memory MB | recall@10 | p50 ms | p99 ms "
                  "| CPU p50 ms | CPU p99 ms |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['library']} | {r['graph']} | {r['ef']} | {r['build_s']:.1f} | {r['memory_mb']:.0f} | "
                         f"{r['recall']:.3f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_p50_ms']:.2f} | "
                         f"{r['cpu_p99_ms']:.2f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--libraries", nargs="+", default=["hnswlib", "usearch", "dense"])
    parser.add_argument("--graphs", nargs="+", default=["f32", "f16", "i8"], help="usearch graph dtypes")
    parser.add_argument("--storages", nargs="+", default=["f32", "f16", "int8"], help="DenseIndex storages")
    parser.add_argument("--json", type=Path, default=OUT / "dense_ann.json")
    parser.add_argument("--markdown", type=Path, help="write the '## Dense index' section of this file")
    args = parser.parse_args(argv)
    home = OUT / "dense-home"
    results: dict[str, Any] = {"machine": machine(), "threads": args.threads, "sizes": {}}
    for size in args.sizes:
        every = embed_corpus(size + QUERIES, args.seed, home)
        base, queries = every[:size], every[size:].astype(np.float32)
        _, kth = exact_top(base, queries)
        rows = [exact_numpy(base, queries, kth)]
        if "hnswlib" in args.libraries:
            rows += bench_hnswlib(base, queries, kth, args.threads)
        if "usearch" in args.libraries:
            for dtype in args.graphs:
                rows += bench_usearch(base, queries, kth, dtype, args.threads)
        if "dense" in args.libraries:
            for storage in args.storages:
                rows += bench_dense_index(base, queries, kth, storage)
        for r in rows:
            print(json.dumps({"size": size, **r}), flush=True)
        results["sizes"][str(size)] = rows
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    if args.markdown:
        write_section(args.markdown, markdown(results, "python bench/" + Path(__file__).name + " " + " ".join(
            sys.argv[1:] if argv is None else argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
