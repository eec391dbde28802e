"""Choose the dense index's search method by measurement.

Synthetic papers (bench/corpus.py) are embedded with the distilled static model. Three kinds of query,
each embedded with the same model:
  papers       held-out synthetic papers (what "similar papers" asks),
  short        3-6 content words of a synthetic abstract, as bench/search.py types them,
  known items  the natural-language known-item queries (bench/known_items.json).
Short queries and known items are the search benchmark's mix; they embed far from the papers (the
static vectors share a strong common direction that few words do not have), which is where a graph's
greedy walk loses its way. For HNSW graphs (hnswlib, usearch) and paperwire's DenseIndex (a faiss
product-quantised scan whose candidates are re-scored exactly against the stored rows): build time,
memory, query latency p50/p99 on one thread, and tie-tolerant recall@10 against exact search per kind
— a returned item counts when its exact score is within 1e-3 of the exact 10th best, because synthetic
text has many near-ties.

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

import paperwire.index.dense as dense_module  # noqa: E402
from bench.corpus import generate_papers  # noqa: E402
from bench.known_items import load_known_items  # noqa: E402
from bench.quality import machine, write_section  # noqa: E402
from paperwire.index.dense import ANN_CANDIDATES, DenseIndex  # noqa: E402
from paperwire.index.embed import STATIC_NAME, load_embedder  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
QUERIES = 300
SHORT_QUERIES = 200
TIE = 1e-3
K = 10
EFS = (64, 128, 256)
CANDIDATES = (500, 1000, 2000, 4000, 8000)
KINDS = ("papers", "short", "known items")


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


def short_queries(seed: int, count: int) -> list[str]:
    """A few content words of synthetic abstracts (papers not in the index), as bench/search.py makes them."""
    from bench.search import Doc, synthetic_queries

    docs = [Doc(str(i), p["title"], p["abstract"]) for i, p in enumerate(generate_papers(count, seed + 1000))]
    return synthetic_queries(docs, count, seed)


def exact_top(base: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The exact K-th best score per query (chunked float32 products)."""
    best = np.full((len(queries), K), -np.inf, dtype=np.float32)
    for start in range(0, len(base), 200_000):
        scores = queries @ base[start:start + 200_000].astype(np.float32).T
        merged = np.concatenate([best, scores], axis=1)
        best = -np.partition(-merged, K - 1, axis=1)[:, :K]
    return best.min(axis=1)


def tie_recall(found: list[np.ndarray], base: np.ndarray, queries: np.ndarray, kth: np.ndarray) -> float:
    hits = 0
    for q, rows in enumerate(found):
        rows = np.asarray(rows[:K], dtype=np.int64)
        if len(rows):
            scores = base[rows].astype(np.float32) @ queries[q]
            hits += int((scores >= kth[q] - TIE).sum())
    return hits / (K * len(found))


def measure(search: Any, queries: dict[str, np.ndarray], base: np.ndarray,
            kth: dict[str, np.ndarray]) -> dict[str, Any]:
    """Recall per kind of query and over the search mix; latency over every query."""
    out: dict[str, Any] = {}
    wall, cpu = [], []
    for q in queries["papers"][:20]:  # warm-up
        search(q)
    for kind, qs in queries.items():
        found = []
        for q in qs:
            w, c = time.perf_counter(), time.process_time()
            found.append(search(q))
            wall.append(time.perf_counter() - w)
            cpu.append(time.process_time() - c)
        out[kind] = tie_recall(found, base, qs, kth[kind])
    n_short, n_known = len(queries["short"]), len(queries["known items"])
    out["search mix"] = (out["short"] * n_short + out["known items"] * n_known) / (n_short + n_known)
    wall_ms, cpu_ms = np.array(wall) * 1000, np.array(cpu) * 1000
    out.update({"p50_ms": float(np.percentile(wall_ms, 50)), "p99_ms": float(np.percentile(wall_ms, 99)),
                "cpu_p50_ms": float(np.percentile(cpu_ms, 50)), "cpu_p99_ms": float(np.percentile(cpu_ms, 99))})
    return out


def bench_hnswlib(base: np.ndarray, queries: dict[str, np.ndarray], kth: dict[str, np.ndarray],
                  threads: int) -> list[dict[str, Any]]:
    import hnswlib

    data = base.astype(np.float32)
    index = hnswlib.Index(space="ip", dim=base.shape[1])
    wall, cpu = time.perf_counter(), time.process_time()
    index.init_index(max_elements=len(base), M=16, ef_construction=128)
    index.add_items(data, np.arange(len(base)), num_threads=threads)
    build, build_cpu = time.perf_counter() - wall, time.process_time() - cpu
    del data
    # hnswlib keeps float32 vectors and M*2 level-0 links (4 bytes each) per element, plus upper levels
    memory = len(base) * (base.shape[1] * 4 + 16 * 2 * 4 + 8 + 4) * 1.05
    rows = []
    for ef in EFS:
        index.set_ef(max(ef, K))
        rows.append({"method": "hnswlib HNSW (M 16, ef_construction 128)", "setting": f"ef {ef}", "build_s": build,
                     "build_cpu_s": build_cpu, "memory_mb": memory / 2**20,
                     **measure(lambda q: index.knn_query(q, K, num_threads=1)[0][0], queries, base, kth)})
    return rows


def bench_usearch(base: np.ndarray, queries: dict[str, np.ndarray], kth: dict[str, np.ndarray],
                  threads: int) -> list[dict[str, Any]]:
    from usearch.index import Index

    index = Index(ndim=base.shape[1], metric="ip", dtype="f16", connectivity=16, expansion_add=128)
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(base), 100_000):
        chunk = base[start:start + 100_000].astype(np.float32)
        index.add(np.arange(start, start + len(chunk), dtype=np.uint64), chunk, threads=threads)
    build, build_cpu = time.perf_counter() - wall, time.process_time() - cpu
    rows = []
    for ef in EFS:
        index.expansion_search = max(ef, K)
        rows.append({"method": "usearch HNSW f16 (connectivity 16, expansion_add 128)", "setting": f"ef {ef}",
                     "build_s": build, "build_cpu_s": build_cpu, "memory_mb": index.memory_usage / 2**20,
                     **measure(lambda q: index.search(q, K, threads=1).keys, queries, base, kth)})
    return rows


def bench_dense_index(base: np.ndarray, queries: dict[str, np.ndarray], kth: dict[str, np.ndarray],
                      storage: str) -> list[dict[str, Any]]:
    """The product path: DenseIndex.add in index-update-sized batches, candidates re-scored exactly."""
    ids = [f"p{i}" for i in range(len(base))]
    wall, cpu = time.perf_counter(), time.process_time()
    index = DenseIndex(base.shape[1], STATIC_NAME, storage=storage)
    for start in range(0, len(base), 5000):
        index.add(ids[start:start + 5000], base[start:start + 5000].astype(np.float32))
    build, build_cpu = time.perf_counter() - wall, time.process_time() - cpu
    method = f"paperwire DenseIndex ({storage} rows, PQ scan)"
    rows = []

    def row(setting: str) -> dict[str, Any]:
        return {"method": method, "setting": setting, "build_s": build, "build_cpu_s": build_cpu,
                "memory_mb": index.memory_bytes() / 2**20,
                **measure(lambda q: [int(i[1:]) for i, _ in index.search(q, K)], queries, base, kth)}

    share = dense_module.ANN_CANDIDATE_SHARE
    default = max(ANN_CANDIDATES, int(len(base) * share))
    rows.append(row(f"{default:,} candidates (default)"))
    dense_module.ANN_CANDIDATE_SHARE = 0.0  # the sweep sets the count itself
    try:
        for candidates in CANDIDATES:
            if candidates != default:
                index.candidates = candidates
                rows.append(row(f"{candidates:,} candidates"))
    finally:
        dense_module.ANN_CANDIDATE_SHARE = share
    index.candidates = ANN_CANDIDATES
    return rows


def exact_numpy(base: np.ndarray, queries: dict[str, np.ndarray], kth: dict[str, np.ndarray]) -> dict[str, Any]:
    data = base.astype(np.float32)
    few = {kind: qs[:40] for kind, qs in queries.items()}
    return {"method": "numpy brute force (f32)", "setting": "exact", "build_s": 0.0, "build_cpu_s": 0.0,
            "memory_mb": data.nbytes / 2**20,
            **measure(lambda q: np.argpartition(-(data @ q), K)[:K], few, base,
                      {kind: k[:40] for kind, k in kth.items()})}


def markdown(results: dict[str, Any], command: str) -> str:
    info = results["machine"]
    lines = [
        "## Dense index",
        "",
        "Vectors: synthetic papers (bench/corpus.py) embedded with the distilled static model (256-d). Queries, "
        f"embedded the same way: {QUERIES} held-out synthetic papers (*papers*, what similar-papers asks), "
        f"{SHORT_QUERIES} short queries of 3-6 content words of a synthetic abstract (*short*, as bench/search.py "
        "types them) and the 153 known-item descriptions (*known*); *mix* is short and known together, the search "
        f"benchmark's mix. Recall: tie-tolerant recall@10 against exact search (a result counts if its exact cosine "
        f"is within {TIE:g} of the exact 10th best). Latency over all queries on one thread, wall clock and CPU "
        "time (the machine was shared; CPU time is the better guide). Graph builds use "
        f"{results['threads']} threads; the DenseIndex build is one thread (adds in batches of 5,000, as an index "
        "update does).",
        "",
        "The static vectors share a strong common direction (their mean has norm 0.92; two papers have a cosine "
        "of about 0.84 on average); a few words embed far from it (cosine with the papers' mean direction about "
        "0.4 for short queries, 0.6 for known items, 0.92 for papers). HNSW graphs answer held-out papers well "
        "but lose most of the exact top 10 of short queries at any ef. Also tried on subsets (not in the table): "
        "centring the vectors (worse for papers), a graph on the vectors with the common direction projected "
        "out (short queries 0.93-0.99 at 30k, held-out papers 0.68-0.76), the same with that direction kept "
        "as one scaled coordinate (each setting traded one kind of query for the other), hnswlib with M 32 "
        "(short 0.64-0.77 at 30k), IVF with 256-1,024 lists (15-30% of the rows scanned for 0.95). paperwire's "
        "DenseIndex "
        "therefore scans a product-quantised copy of all rows (faiss `RR256,PQ64x4fs`: a random rotation, "
        "4-bit codes of 4 dimensions, 32 bytes a row, SIMD \"fast scan\") and re-scores the best candidates "
        "exactly against its stored rows: recall no longer depends on where the query lies, and there is no "
        "graph to build. It re-scores max(2,000, 0.4% of the rows) candidates by default.",
        "",
        f"Command: `{command}`  ",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB RAM, Python {info['python']}. "
        f"Load average at the start and end of each size under its table.",
        "",
    ]
    for size, block in results["sizes"].items():
        lines += [f"### {int(size):,} vectors", "",
                  "| method | setting | build s | build CPU s | memory MB | recall papers | recall short | "
                  "recall known | recall mix | p50 ms | p99 ms | CPU p50 ms | CPU p99 ms |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in block["rows"]:
            lines.append(f"| {r['method']} | {r['setting']} | {r['build_s']:.1f} | {r['build_cpu_s']:.1f} | "
                         f"{r['memory_mb']:.0f} | {r['papers']:.3f} | {r['short']:.3f} | {r['known items']:.3f} | "
                         f"{r['search mix']:.3f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_p50_ms']:.2f} | "
                         f"{r['cpu_p99_ms']:.2f} |")
        lines += ["", f"Load average: {block['load_start']} at the start, {block['load_end']} at the end.", ""]
    return "\n".join(lines) + "\n"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--methods", nargs="+", default=["hnswlib", "usearch", "dense"])
    parser.add_argument("--storages", nargs="+", default=["f16"], help="DenseIndex storages")
    parser.add_argument("--graph-max", type=int, default=200_000,
                        help="build the HNSW graphs only up to this size (a 1M graph takes most of an hour)")
    parser.add_argument("--json", type=Path, default=OUT / "dense_ann.json")
    parser.add_argument("--markdown", type=Path, help="write the '## Dense index' section of this file")
    args = parser.parse_args(argv)
    home = OUT / "dense-home"
    embedder = load_embedder("static", home)
    texts = {"short": short_queries(args.seed, SHORT_QUERIES),
             "known items": [item["query"] for item in load_known_items()]}
    query_vectors = {kind: embedder.encode(t) for kind, t in texts.items()}
    results: dict[str, Any] = {"machine": machine(), "threads": args.threads, "sizes": {}}
    for size in args.sizes:
        started = load_average()
        every = embed_corpus(size + QUERIES, args.seed, home)
        base = every[:size]
        queries = {"papers": every[size:].astype(np.float32), **query_vectors}
        kth = {kind: exact_top(base, qs) for kind, qs in queries.items()}
        rows = [exact_numpy(base, queries, kth)]
        if "dense" in args.methods:
            for storage in args.storages:
                rows += bench_dense_index(base, queries, kth, storage)
        graphs = size <= args.graph_max
        if "hnswlib" in args.methods and graphs:
            rows += bench_hnswlib(base, queries, kth, args.threads)
        if "usearch" in args.methods and graphs:
            rows += bench_usearch(base, queries, kth, args.threads)
        for r in rows:
            print(json.dumps({"size": size, **r}), flush=True)
        results["sizes"][str(size)] = {"rows": rows, "load_start": started, "load_end": load_average()}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    if args.markdown:
        write_section(args.markdown, markdown(results, "python bench/" + Path(__file__).name + " " + " ".join(
            sys.argv[1:] if argv is None else argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
