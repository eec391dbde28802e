"""Search speed at scale on a synthetic corpus, paperwire next to the usual baselines, one thread.

    .venv/bin/python bench/search.py [--sizes 10000 100000 1000000] [--queries 200] [--only NAME ...]

Each size N holds the 407 sample-corpus papers hidden among N - 407 synthetic ones from
bench/corpus.py (a word model fitted on the sample abstracts). Per retriever it reports build time
and throughput, query latency p50/p95/p99 over synthetic queries (3-6 words of a random paper's
abstract), the known-item queries' R@10 with their targets among the distractors, the RSS the
build added, and p50 as a ratio to paperwire's hybrid search. For paperwire's dense index it also
reports ANN tie-tolerant recall@10 against exact search (a returned paper counts when its exact
cosine is within 1e-3 of the exact 10th best: synthetic text makes the exact top 10 full of ties).

Writes bench/out/search.json and the "## Search speed (synthetic corpus)" section of BENCHMARKS.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Sibling modules come after the standard library on the path: a bench script named like a stdlib
# module (bench/http.py) must not shadow it, as it would with the script's folder first.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE] + [_HERE]
# One thread everywhere, set before numpy/torch load their thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from corpus import generate_papers  # noqa: E402
from known_items import load_known_items  # noqa: E402
from quality import (  # noqa: E402
    OUT,
    ROOT,
    Retriever,
    bm25s_retriever,
    fts5_retriever,
    machine,
    rank_bm25_retriever,
    seeded_home,
    tfidf_retriever,
    write_section,
)

SECTION = "## Search speed (synthetic corpus)"
K = 10
RANK_BM25_MAX = 100_000  # rank_bm25 scores every document in Python-sized steps; beyond this it does not finish
TIE_TOLERANCE = 1e-3


@dataclass
class Doc:
    id: str
    title: str
    abstract: str


def corpus(n: int, seed_docs: list[Doc]) -> list[Doc]:
    synthetic = [Doc(f"syn-{i}", p["title"], p["abstract"]) for i, p in
                 enumerate(generate_papers(max(0, n - len(seed_docs)), seed=0))]
    return seed_docs + synthetic


def synthetic_queries(docs: list[Doc], count: int, seed: int = 1) -> list[str]:
    """A few content words of a random paper's abstract, the way people type into a search box."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    rng = np.random.default_rng(seed)
    word = re.compile(r"[A-Za-z][A-Za-z-]{3,}")
    queries = []
    while len(queries) < count:
        doc = docs[int(rng.integers(len(docs)))]
        words = [w for w in dict.fromkeys(w.lower() for w in word.findall(doc.abstract))
                 if w not in ENGLISH_STOP_WORDS]
        if len(words) >= 3:
            k = int(rng.integers(3, 7))
            picks = rng.choice(len(words), min(k, len(words)), replace=False)
            queries.append(" ".join(words[i] for i in sorted(picks)))
    return queries


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def latencies(retriever: Retriever, queries: list[str]) -> dict[str, float]:
    retriever(queries[0])  # warm-up
    ms = []
    for q in queries:
        start = time.perf_counter()
        retriever(q)
        ms.append(1000 * (time.perf_counter() - start))
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99)}


def known_item_r10(retriever: Retriever, items: list[dict[str, Any]]) -> float:
    return sum(1 for item in items if item["id"] in retriever(item["query"])[:K]) / len(items)


# ---------------------------------------------------------------- numpy brute force and paperwire

def numpy_bruteforce(vectors: np.ndarray, ids: list[str], embed: Callable[[str], np.ndarray]) -> Retriever:
    def search(query: str) -> list[str]:
        scores = vectors @ embed(query)
        top = np.argpartition(-scores, K)[:K]
        return [ids[i] for i in top[np.argsort(-scores[top])]]

    return search


def paperwire_build(home: Path, docs: list[Doc]) -> tuple[Any, float]:
    """Ingest the synthetic papers into a fresh home and build its index with the static embedder."""
    from paperwire.index import open_index
    from paperwire.ingest import ingest_items
    from paperwire.model import make_paper
    from paperwire.store import open_store

    shutil.rmtree(home, ignore_errors=True)
    seeded_home(home)  # the sample corpus, as ingest parses it
    store = open_store(home)
    synthetic = (make_paper(title=d.title, abstract=d.abstract, source="synthetic", listed_on="2025-01-01")
                 for d in docs if d.id.startswith("syn-"))
    ingest_items(store, synthetic)
    start = time.perf_counter()
    index = open_index(home, store, embedder="static")
    return index, time.perf_counter() - start


def tie_tolerant_recall(index: Any, queries: list[str]) -> float | None:
    """ANN top-10 against exact cosine over the same vectors; None when the index has no vectors API."""
    try:
        ids = index.all_ids()
        vectors = index.all_vectors()
    except AttributeError:
        return None
    hits = total = 0
    for q in queries:
        v = index.embed_query(q)
        exact = vectors @ v
        tenth = np.partition(-exact, K - 1)[K - 1] * -1
        position = {pid: i for i, pid in enumerate(ids)}
        returned = [pid for pid, _ in index.dense.search(v, K)]
        hits += sum(1 for pid in returned if exact[position[pid]] >= tenth - TIE_TOLERANCE)
        total += K
    return hits / total if total else None


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


# ---------------------------------------------------------------- one size

def run_size(n: int, args: argparse.Namespace, seed_docs: list[Doc], items: list[dict[str, Any]]) -> dict[str, Any]:
    docs = corpus(n, seed_docs)
    queries = synthetic_queries(docs, args.queries)
    rows: dict[str, dict[str, Any]] = {}

    def wanted(name: str) -> bool:
        return not args.only or any(o.lower() in name.lower() for o in args.only)

    def measure(name: str, build: Callable[[], Retriever], **extra: Any) -> None:
        if not wanted(name):
            return
        gc.collect()
        before = rss_mb()
        start = time.perf_counter()
        retriever = build()
        built = time.perf_counter() - start
        row = {"build_s": round(built, 2), "papers_per_s": round(n / built) if built else None,
               "rss_added_mb": round(rss_mb() - before), **latencies(retriever, queries),
               "known_item_r10": known_item_r10(retriever, items), **extra}
        rows[name] = row
        print(f"  {name:36s} build {row['build_s']:8.1f}s  p50 {row['p50_ms']:7.2f}  p99 {row['p99_ms']:7.2f} ms  "
              f"R@10 {row['known_item_r10']:.3f}  +{row['rss_added_mb']} MB", flush=True)
        del retriever
        gc.collect()

    print(f"{n:,} papers ({len(queries)} synthetic queries, {len(items)} known items)", flush=True)
    if not args.no_paperwire:
        try:
            home = args.home / f"n{n}"
            before = rss_mb()
            index, built = paperwire_build(home, docs)
            index_rss = rss_mb() - before
            extra = {"index_build_s": round(built, 2), "index_papers_per_s": round(n / built),
                     "disk_mb": round(disk_mb(home / "index"), 1), "index_rss_mb": round(index_rss)}
            for mode in ("hybrid", "lexical", "semantic"):
                measure(f"paperwire {mode}",
                        lambda m=mode: (lambda q: [h.id for h in index.search(q, limit=K, mode=m)]), **extra)
            recall = tie_tolerant_recall(index, queries)
            for mode in ("hybrid", "lexical", "semantic"):
                if f"paperwire {mode}" in rows:
                    rows[f"paperwire {mode}"]["ann_tie_recall10"] = recall
            vectors, ids = index.all_vectors(), index.all_ids()
            measure("numpy brute force (static vectors)",
                    lambda: numpy_bruteforce(vectors, ids, index.embed_query))
            del index, vectors
        except ImportError as exc:
            print(f"  paperwire engine not importable ({exc}); baselines only", file=sys.stderr)
    if n <= RANK_BM25_MAX:
        measure("rank_bm25 (BM25Okapi)", lambda: rank_bm25_retriever(docs, K))
    measure("bm25s", lambda: bm25s_retriever(docs, K))
    measure("SQLite FTS5 bm25()", lambda: fts5_retriever(docs, K))
    # arxiv-sanity-lite's own cut-offs, which suit large corpora
    measure("tf-idf dot (arxiv-sanity-lite)",
            lambda: tfidf_retriever(docs, K, min_df=5 if n > 10_000 else 1, max_df=0.1 if n > 10_000 else 0.5,
                                    max_features=None))
    hybrid = rows.get("paperwire hybrid", {}).get("p50_ms")
    for row in rows.values():
        row["p50_ratio_to_hybrid"] = round(row["p50_ms"] / hybrid, 2) if hybrid else None
    return rows


def markdown(results: dict[str, Any], info: dict[str, Any], command: str) -> str:
    lines = [SECTION, "",
             "Sample corpus hidden among synthetic papers (bench/corpus.py word model); one thread; latency over "
             "synthetic 3-6 word queries, top 10; R@10: the known-item queries with their targets among the "
             "distractors; ×hybrid: p50 relative to paperwire hybrid (higher is slower).", "",
             f"Command: `{command}`  ",
             f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB RAM, Python {info['python']}, "
             f"{info['os']}", ""]
    for n, rows in results.items():
        lines += [f"### {int(n):,} papers", "",
                  "| retriever | build s | papers/s | p50 ms | p95 ms | p99 ms | ×hybrid | R@10 | +RSS MB |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, r in rows.items():
            ratio = f"{r['p50_ratio_to_hybrid']:.2f}" if r.get("p50_ratio_to_hybrid") else "–"
            lines.append(f"| {name} | {r['build_s']:.1f} | {r['papers_per_s'] or '–'} | {r['p50_ms']:.2f} | "
                         f"{r['p95_ms']:.2f} | {r['p99_ms']:.2f} | {ratio} | {r['known_item_r10']:.3f} | "
                         f"{r['rss_added_mb']} |")
        pw = rows.get("paperwire hybrid")
        if pw:
            recall = pw.get("ann_tie_recall10")
            lines += ["", f"paperwire index: built in {pw['index_build_s']:.1f} s ({pw['index_papers_per_s']:,} "
                          f"papers/s, static embedder), {pw['disk_mb']} MB on disk, +{pw['index_rss_mb']} MB RSS; "
                          f"ANN tie-tolerant recall@10: {recall if recall is None else f'{recall:.3f}'}."]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--home", type=Path, default=OUT / "search-homes")
    parser.add_argument("--only", nargs="*", help="run only retrievers whose name contains one of these")
    parser.add_argument("--no-paperwire", action="store_true", help="baselines only")
    parser.add_argument("--no-markdown", action="store_true")
    args = parser.parse_args(argv)

    from paperwire.store import open_store

    sample = seeded_home(OUT / "quality-home" / "corpus")
    store = open_store(sample)
    seed_docs = [Doc(p.id, p.title, p.abstract) for _, p in store.iter_papers()]
    store.close()
    items = load_known_items()

    results = {str(n): run_size(n, args, seed_docs, items) for n in args.sizes}
    info = machine()
    command = "python bench/search.py" + (" " + shlex.join(sys.argv[1:]) if len(sys.argv) > 1 else "")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "search.json").write_text(json.dumps({"command": command, "machine": info, "results": results}, indent=1))
    if not args.no_markdown and not args.only:
        write_section(ROOT / "BENCHMARKS.md", markdown(results, info, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
