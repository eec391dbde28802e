"""Search speed at scale on a synthetic corpus, paperwire next to the usual baselines, one thread.

    .venv/bin/python bench/search.py [--sizes 10000 100000 1000000] [--queries 200] [--only NAME ...]

Each size N holds the 407 sample-corpus papers hidden among N - 407 synthetic ones from
bench/corpus.py (a word model fitted on the sample abstracts). Per retriever it reports build time
and throughput, query latency p50/p95/p99 over synthetic queries (3-6 words of a random paper's
abstract), the known-item queries' R@10 with their targets among the distractors, the RSS the
build added, and p50 as a ratio to paperwire's hybrid search. paperwire is built and then queried in
fresh processes (ingest, index build, then the saved index reopened as a server opens it), so its
RSS is its own. For its dense index it also reports ANN tie-tolerant recall@10 against exact search
at several numbers of candidates re-scored (a returned paper counts when its exact cosine is within 1e-3 of the
exact 10th best: synthetic text makes the exact top 10 full of ties).

Each size writes bench/out/search-N.json as it goes; the "## Search speed (synthetic corpus)" section
of BENCHMARKS.md is made from all of those files, so sizes may be run separately (`--report` only
rewrites the section).
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
    seed_titles = {normalise_title(d.title) for d in seed_docs}
    synthetic = [Doc(f"syn-{i}", p["title"], p["abstract"]) for i, p in
                 enumerate(generate_papers(max(0, n - len(seed_docs)), seed=0))
                 if normalise_title(p["title"]) not in seed_titles]
    return seed_docs + synthetic


def normalise_title(title: str) -> str:
    """The store's title key: a synthetic paper with a seed paper's title would be merged into it."""
    from paperwire.model import normalise_title as key

    return key(title)


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


def latencies(retriever: Retriever, queries: list[str], budget_s: float | None = None) -> dict[str, Any]:
    """Wall and CPU milliseconds per query (one thread), after one warm-up query. A slow baseline stops
    after `budget_s` seconds (at least 20 queries) and says over how many queries it was measured."""
    retriever(queries[0])
    wall, cpu = [], []
    began = time.perf_counter()
    for q in queries:
        start, cpu_start = time.perf_counter(), time.process_time()
        retriever(q)
        wall.append(1000 * (time.perf_counter() - start))
        cpu.append(1000 * (time.process_time() - cpu_start))
        if budget_s is not None and len(wall) >= 20 and time.perf_counter() - began > budget_s:
            break
    p50, p95, p99 = np.percentile(wall, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99),
            "cpu_p50_ms": float(np.percentile(cpu, 50)), "queries_timed": len(wall)}


def known_item_r10(retriever: Retriever, items: list[dict[str, Any]], budget_s: float | None = None) -> float | None:
    """Share of known-item queries whose target is in the top 10; None when over budget (a partial
    count over the first queries would not be comparable)."""
    began, found = time.perf_counter(), 0
    for item in items:
        found += item["id"] in retriever(item["query"])[:K]
        if budget_s is not None and time.perf_counter() - began > budget_s:
            return None
    return found / len(items)


def synthetic_arxiv_id(i: int) -> str:
    """A distinct, valid arXiv id for synthetic paper i (ids from titles could collide at a million)."""
    block, number = divmod(i, 99_999)
    return f"{15 + block // 12:02d}{1 + block % 12:02d}.{number + 1:05d}"


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def disk_mb(path: Path) -> float:
    # by inode: a build's spilled files are linked into the saved index, one copy on disk
    sizes = {(s.st_dev, s.st_ino): s.st_size for s in (f.stat() for f in path.rglob("*") if f.is_file())}
    return sum(sizes.values()) / 2**20


class TreeCPU:
    """CPU seconds of this process and of the processes it starts (an index build embeds in a worker that
    a forkserver starts, which os.times() does not see): a thread reads the descendants' CPU times every
    0.2 s and keeps each one's last reading, so up to 0.2 s of a worker's last moments may be missed."""

    def __init__(self) -> None:
        import threading

        self._start = time.process_time()
        self._seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.2):
            for child in me.children(recursive=True):
                try:
                    times = child.cpu_times()
                except psutil.Error:
                    continue
                self._seen[child.pid] = times.user + times.system

    def seconds(self) -> float:
        self._stop.set()
        self._thread.join()
        return time.process_time() - self._start + sum(self._seen.values())


# ---------------------------------------------------------------- paperwire, each step in a fresh process

def in_child(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run `function(*args)` in a freshly spawned interpreter: its RSS is paperwire's alone, not the
    benchmark's (the parent holds a million documents for the baselines)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # not a multiprocessing.Pool: its workers are daemonic and may not start the index build's own worker
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def paperwire_build(home: Path, n: int, model_from: Path) -> dict[str, Any]:
    """Ingest the sample corpus and N - 407 synthetic papers into a fresh home, then build its index
    with the static embedder (as `paperwire index rebuild` does), timed separately."""
    from paperwire.index import open_index
    from paperwire.index.embed import static_model_directory
    from paperwire.ingest import ingest_items
    from paperwire.model import make_paper
    from paperwire.store import open_store

    shutil.rmtree(home, ignore_errors=True)
    seeded_home(home)
    # The distilled model is made once per home (minutes); a copy keeps that one-off out of the build time.
    shutil.copytree(static_model_directory(model_from), static_model_directory(home))
    store = open_store(home)
    seeds = store.count_papers()
    seed_titles = {normalise_title(p.raw_title or p.title) for _, p in store.iter_papers()}

    def synthetic() -> Any:
        for i, d in enumerate(generate_papers(max(0, n - seeds), seed=0)):
            if normalise_title(d["title"]) in seed_titles:
                continue  # as in corpus(): never a distractor that the store would merge into a seed
            yield make_paper(title=d["title"], abstract=d["abstract"], arxiv_id=synthetic_arxiv_id(i),
                             authors=[f"{given} {family}" for family, given in d["authors"]],
                             categories=d["categories"], source="synthetic", listed_on="2025-01-01")

    wall, cpu = time.perf_counter(), time.process_time()
    summary = ingest_items(store, synthetic())
    ingest = {"ingest_s": time.perf_counter() - wall, "ingest_cpu_s": time.process_time() - cpu,
              "ingested": summary.added}
    wall, cpu = time.perf_counter(), TreeCPU()
    index = open_index(home, store, embedder="static")
    build_s, build_cpu_s = time.perf_counter() - wall, cpu.seconds()
    papers = store.count_papers()
    store.close()
    return {"papers": papers, **ingest, "index_build_s": build_s, "index_build_cpu_s": build_cpu_s,
            "index_papers_per_s": papers / build_s, "index_embedder": index.embedder.name,
            "build_peak_rss_mb": peak_rss_mb(), "disk_index_mb": disk_mb(home / "index"),
            "disk_store_mb": sum(f.stat().st_size for f in home.glob("paperwire.sqlite3*")) / 2**20}


def paperwire_index_only(home: Path) -> dict[str, Any]:
    """Build the index of a home whose store an earlier run ingested (after that run was interrupted)."""
    from paperwire.index import open_index
    from paperwire.store import open_store

    shutil.rmtree(home / "index", ignore_errors=True)
    store = open_store(home)
    wall, cpu = time.perf_counter(), TreeCPU()
    index = open_index(home, store, embedder="static")
    build_s, build_cpu_s = time.perf_counter() - wall, cpu.seconds()
    papers = store.count_papers()
    store.close()
    return {"papers": papers, "ingest_s": None, "ingest_cpu_s": None, "ingested": None, "index_build_s": build_s,
            "index_build_cpu_s": build_cpu_s, "index_papers_per_s": papers / build_s,
            "index_embedder": index.embedder.name, "build_peak_rss_mb": peak_rss_mb(),
            "disk_index_mb": disk_mb(home / "index"),
            "disk_store_mb": sum(f.stat().st_size for f in home.glob("paperwire.sqlite3*")) / 2**20}


def paperwire_serve(home: Path, queries: list[str], items: list[dict[str, Any]],
                    candidates: list[int]) -> dict[str, Any]:
    """Open the saved index as a server does and measure queries, recall and memory."""
    import paperwire.index.embed  # noqa: F401  (libraries loaded before the baseline RSS is taken)
    from paperwire.index import open_index
    from paperwire.store import open_store

    base_rss = rss_mb()
    wall = time.perf_counter()
    store = open_store(home)
    index = open_index(home, store, embedder="static")
    load_s = time.perf_counter() - wall
    # A seed paper that a distractor's arXiv id absorbed (same title) is found under that id now.
    items = [{**item, "id": store.get_paper(item["id"]).id} for item in items]
    out: dict[str, Any] = {"load_s": load_s, "python_and_libraries_rss_mb": base_rss,
                           "rss_after_load_mb": rss_mb(), "dense_memory_mb": index.dense.memory_bytes() / 2**20}
    # A first pass over the queries, timed on its own: it touches the memory-mapped index pages and the
    # store's pages as a server does in its first minutes; the modes below are then timed warm, as the
    # in-memory baselines are.
    out["first_pass"] = latencies(lambda q: [h.id for h in index.search(q, limit=K)], queries)
    modes: dict[str, Any] = {}
    # Full hits with snippets (the search page, the CLI); the JSON API asks for none.
    for label, mode, snippets in (("hybrid", "hybrid", True), ("lexical", "lexical", True),
                                  ("semantic", "semantic", True), ("hybrid, no snippets", "hybrid", False)):
        def search(q: str, m: str = mode, s: bool = snippets) -> list[str]:
            return [h.id for h in index.search(q, limit=K, mode=m, snippets=s)]

        modes[label] = {**latencies(search, queries), "known_item_r10": known_item_r10(search, items)}
        print(f"    paperwire {label:9s} p50 {modes[label]['p50_ms']:7.2f}  p99 {modes[label]['p99_ms']:7.2f} ms  "
              f"R@10 {modes[label]['known_item_r10']:.3f}", flush=True)
    out["modes"] = modes
    out["rss_after_queries_mb"] = rss_mb()
    out["ann"] = ann_recall(index, queries + [i["query"] for i in items], candidates)
    # numpy brute force over the same static vectors: the exact answer the dense index approximates
    vectors, ids = index.all_vectors(), index.all_ids()

    def brute(q: str) -> list[str]:
        scores = vectors @ index.embed_query(q)
        top = np.argpartition(-scores, K)[:K]
        return [ids[i] for i in top[np.argsort(-scores[top])]]

    rss = rss_mb()
    out["numpy"] = {**latencies(brute, queries), "known_item_r10": known_item_r10(brute, items),
                    "rss_added_mb": rss - out["rss_after_queries_mb"]}
    store.close()
    return out


def ann_recall(index: Any, queries: list[str], candidates: list[int]) -> dict[str, Any]:
    """Tie-tolerant recall@10 of the dense index against exact cosine over its own vectors, per number of
    candidates re-scored: a returned paper counts when its exact score is within TIE_TOLERANCE of the
    exact 10th best."""
    dense = index.dense
    if getattr(dense, "_ann", None) is None:
        return {"exact": True}
    queries_v = np.stack([index.embed_query(q) for q in queries])
    ids = index.all_ids()
    position = {pid: i for i, pid in enumerate(ids)}
    exact = np.zeros((len(queries), len(ids)), dtype=np.float32)
    for start in range(0, len(ids), 100_000):  # bounded float32 copies of the rows
        exact[:, start:start + 100_000] = queries_v @ index.paper_vectors(ids[start:start + 100_000]).T
    tenth = -np.partition(-exact, K - 1, axis=1)[:, K - 1]
    default = dense.candidates
    out: dict[str, Any] = {"default_candidates": default, "queries": len(queries), "by_candidates": {}}

    def recall(depth: int) -> dict[str, float]:
        hits, ms = 0, []
        for row, v in enumerate(queries_v):
            start = time.perf_counter()
            returned = dense.search(v, depth)[:K]
            ms.append(1000 * (time.perf_counter() - start))
            hits += sum(1 for pid, _ in returned if exact[row, position[pid]] >= tenth[row] - TIE_TOLERANCE)
        return {"recall10": hits / (K * len(queries)), "p50_ms": float(np.percentile(ms, 50))}

    from paperwire.index import dense as dense_module

    share = dense_module.ANN_CANDIDATE_SHARE
    in_force = max(default, int(len(dense) * share))
    out["default_candidates"] = in_force
    dense_module.ANN_CANDIDATE_SHARE = 0.0  # the sweep sets the count itself
    try:
        for count in sorted(set(candidates) | {in_force}):
            dense.candidates = count
            out["by_candidates"][str(count)] = recall(K)
    finally:
        dense.candidates = default
        dense_module.ANN_CANDIDATE_SHARE = share
    # What a search sees: the engine asks the dense index for 100 results (its fusion depth).
    out["engine_depth_100"] = recall(100)
    return out


# ---------------------------------------------------------------- one size

def run_size(n: int, args: argparse.Namespace, seed_docs: list[Doc], items: list[dict[str, Any]]) -> dict[str, Any]:
    docs = corpus(n, seed_docs)
    queries = synthetic_queries(docs, args.queries)
    out_file = OUT / f"search-{n}.json"
    result: dict[str, Any] = {"papers": n, "queries": len(queries), "started_load_average": load_average(),
                              "rows": {}}
    if args.only and out_file.exists():  # re-measuring some retrievers: keep the others' rows
        result = {**json.loads(out_file.read_text()), "started_load_average": load_average()}
    rows = result["rows"]

    def save() -> None:
        result["ended_load_average"] = load_average()
        OUT.mkdir(parents=True, exist_ok=True)
        out_file.write_text(json.dumps(result, indent=1))

    def wanted(name: str) -> bool:
        return not args.only or any(o.lower() in name.lower() for o in args.only)

    def measure(name: str, build: Callable[[], Retriever]) -> None:
        if not wanted(name):
            return
        gc.collect()
        before = rss_mb()
        wall, cpu = time.perf_counter(), time.process_time()
        retriever = build()
        built, built_cpu = time.perf_counter() - wall, time.process_time() - cpu
        row = {"build_s": built, "build_cpu_s": built_cpu, "papers_per_s": n / built,
               "rss_added_mb": rss_mb() - before, **latencies(retriever, queries, args.budget),
               "known_item_r10": known_item_r10(retriever, items, args.budget)}
        rows[name] = row
        r10 = row["known_item_r10"]
        print(f"  {name:36s} build {built:8.1f}s  p50 {row['p50_ms']:8.2f}  p99 {row['p99_ms']:8.2f} ms  "
              f"R@10 {'-' if r10 is None else f'{r10:.3f}'}  +{row['rss_added_mb']:.0f} MB", flush=True)
        save()
        del retriever
        gc.collect()

    print(f"{n:,} papers ({len(queries)} synthetic queries, {len(items)} known items)", flush=True)
    if not args.no_paperwire and wanted("paperwire"):
        home = args.home / f"n{n}"
        if args.reuse_build and result.get("paperwire_build") and (home / "index" / "manifest.json").exists():
            build = result["paperwire_build"]
        elif args.reuse_build and (home / "paperwire.sqlite3").exists():
            build = in_child(paperwire_index_only, home)
        else:
            build = in_child(paperwire_build, home, n, args.model_home)
        print(f"  paperwire build: ingest {_f(build['ingest_s'], '.1f')}s, index {build['index_build_s']:.1f}s "
              f"({build['index_papers_per_s']:,.0f} papers/s), peak RSS {build['build_peak_rss_mb']:,.0f} MB",
              flush=True)
        result["paperwire_build"] = build
        save()
        serve = in_child(paperwire_serve, home, queries, items, args.candidates)
        result["paperwire_serve"] = serve
        for mode, row in serve["modes"].items():
            rows[f"paperwire {mode}"] = {"build_s": build["index_build_s"], "build_cpu_s": build["index_build_cpu_s"],
                                         "papers_per_s": build["index_papers_per_s"],
                                         "rss_added_mb": serve["rss_after_queries_mb"], **row}
        numpy_row = serve["numpy"]
        rows["numpy brute force (static vectors)"] = {"build_s": None, "build_cpu_s": None, "papers_per_s": None,
                                                      **numpy_row}
        save()
    if n <= RANK_BM25_MAX:
        measure("rank_bm25 (BM25Okapi)", lambda: rank_bm25_retriever(docs, K))
    measure("SQLite FTS5 bm25()", lambda: fts5_retriever(docs, K))
    measure("bm25s", lambda: bm25s_retriever(docs, K))
    # arxiv-sanity-lite's own settings (20,000 features, min_df 5, max_df 0.1) above 10k papers
    big = n > 10_000
    measure("tf-idf dot (arxiv-sanity-lite)",
            lambda: tfidf_retriever(docs, K, min_df=5 if big else 1, max_df=0.1 if big else 0.5,
                                    max_features=20_000 if big else None))
    hybrid = rows.get("paperwire hybrid", {}).get("p50_ms")
    for row in rows.values():
        row["p50_ratio_to_hybrid"] = row["p50_ms"] / hybrid if hybrid else None
    save()
    return result


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ---------------------------------------------------------------- report

TARGETS_1M = {"hybrid p50 ms": 10, "hybrid p99 ms": 40, "recall@10": 0.95, "known-item R@10": 0.95,
              "RAM MB": 3072, "build papers/s": 1500}


def _f(value: Any, fmt: str = ".2f") -> str:
    return "–" if value is None else format(value, fmt)


def markdown(results: dict[int, dict[str, Any]], info: dict[str, Any], commands: list[str]) -> str:
    lines = [SECTION, "",
             "The 407 sample-corpus papers hidden among synthetic ones (bench/corpus.py: a bigram word model fitted "
             "on the sample abstracts, with topics and a Zipf tail of rare terms). Latency: top 10 over "
             "synthetic 3-6 word queries, one thread, wall clock after one warm-up query (cpu: CPU time p50). "
             "paperwire's rows are full `SearchIndex.search` calls (parsing, BM25F, dense, fusion, hits with "
             "snippets from the store) on the index as saved and reopened in a fresh process, as a server "
             "opens it; +RSS for paperwire is that process's whole RSS after all queries. Build for paperwire "
             "is the index build from the store (static embedder, lexical, dense index, save); ingest is listed "
             "separately. R@10: the 153 known-item queries with their targets among the distractors. "
             "×hybrid: p50 relative to paperwire hybrid (higher is slower). Slow baselines are timed for at "
             "most a budget of seconds (the query count says so) and skip the known items past it (–).", "",
             "Commands: " + "; ".join(f"`{c}`" for c in commands) + "  ",
             f"Machine: {info['cpu']}, {info['cores']} cores shared with two other engineers' work, "
             f"{info['ram_gb']} GB RAM, Python {info['python']}, {info['os']}. Load average (1/5/15 min) at the "
             "start and end of each size is given under its table: above 2 means queries waited for a core, so "
             "wall-clock latencies are pessimistic; CPU time is the steadier figure.", ""]
    for n in sorted(results):
        res = results[n]
        rows = res["rows"]
        lines += [f"### {n:,} papers", "",
                  "| retriever | build s | papers/s | p50 ms | p95 ms | p99 ms | cpu p50 ms | ×hybrid | R@10 | "
                  "+RSS MB |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, r in rows.items():
            timed = "" if r.get("queries_timed", res["queries"]) >= res["queries"] else f" ({r['queries_timed']} q)"
            lines.append(f"| {name} | {_f(r['build_s'], '.1f')} | {_f(r['papers_per_s'], ',.0f')} | "
                         f"{r['p50_ms']:.2f}{timed} | {r['p95_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_p50_ms']:.2f} | "
                         f"{_f(r.get('p50_ratio_to_hybrid'))} | {_f(r['known_item_r10'], '.3f')} | "
                         f"{r['rss_added_mb']:,.0f} |")
        build, serve = res.get("paperwire_build"), res.get("paperwire_serve")
        if build and serve:
            ann = serve["ann"]
            if ann.get("exact"):
                recall = "none needed, the dense index searches exactly below its ANN threshold"
            elif "by_candidates" in ann:
                recall = ", ".join(f"{int(c):,} candidates: {v['recall10']:.3f} ({v['p50_ms']:.2f} ms)"
                                   for c, v in ann["by_candidates"].items())
                recall = f"PQ scan, exact re-scoring of {recall}; in force: {ann['default_candidates']:,}"
            else:  # a run before the PQ scan replaced the HNSW graph
                recall = "HNSW graph, " + ", ".join(f"ef {ef}: {v['recall10']:.3f} ({v['p50_ms']:.2f} ms)"
                                   for ef, v in ann["by_ef"].items()) + f"; in force: ef {ann['default_ef']}"
                if ann.get("engine_depth_100"):
                    engine = ann["engine_depth_100"]
                    recall += (f"; as searches use it (100 candidates, then the top 10): {engine['recall10']:.3f} "
                               f"({engine['p50_ms']:.2f} ms)")
            ingest = (f"ingest {build['ingest_s']:.0f} s ({build['papers'] / build['ingest_s']:,.0f} papers/s; "
                      f"ingest + index {build['papers'] / (build['ingest_s'] + build['index_build_s']):,.0f} "
                      "papers/s)" if build.get("ingest_s") else "ingest by an earlier, interrupted run (not timed)")
            lines += ["", f"paperwire: {ingest}; index build {build['index_build_s']:.0f} s wall, "
                          f"{build['index_build_cpu_s']:.0f} s CPU ({build['index_papers_per_s']:,.0f} papers/s wall, "
                          f"{build['papers'] / build['index_build_cpu_s']:,.0f} per CPU-second, worker processes "
                          "included), peak "
                          f"RSS while building {build['build_peak_rss_mb']:,.0f} MB; index on disk "
                          f"{build['disk_index_mb']:,.0f} MB (store {build['disk_store_mb']:,.0f} MB); serving "
                          f"process RSS {serve['rss_after_load_mb']:,.0f} MB after opening, "
                          f"{serve['rss_after_queries_mb']:,.0f} MB after the queries (Python and libraries alone "
                          f"{serve['python_and_libraries_rss_mb']:,.0f} MB), dense vectors + ANN structure "
                          f"{serve['dense_memory_mb']:,.0f} MB."
                          + (f" paperwire's rows are timed after a first pass over the queries in hybrid mode, "
                             f"which touches the memory-mapped index for the first time; that pass alone "
                             f"measured p50 {serve['first_pass']['p50_ms']:.2f} ms, p99 "
                             f"{serve['first_pass']['p99_ms']:.2f} ms." if serve.get("first_pass") else "")
                          + " ANN tie-tolerant recall@10 against exact cosine"
                          + (f" ({ann['queries']} queries, synthetic and known-item)" if ann.get("queries") else "")
                          + f": {recall}."]
        lines += ["", f"Load average: {res['started_load_average']} at the start, {res.get('ended_load_average')} "
                      "at the end.", ""]
    if 1_000_000 in results:
        lines += targets_1m(results[1_000_000])
    return "\n".join(lines)


def targets_1m(res: dict[str, Any]) -> list[str]:
    rows, build, serve = res["rows"], res.get("paperwire_build"), res.get("paperwire_serve")
    hybrid = rows.get("paperwire hybrid")
    if not (hybrid and build and serve):
        return []
    ann = (serve["ann"].get("engine_depth_100")
           or serve["ann"].get("by_candidates", {}).get(str(serve["ann"].get("default_candidates")), {})
           or serve["ann"].get("by_ef", {}).get(str(serve["ann"].get("default_ef")), {}))
    measured = {"hybrid p50 ms": hybrid["p50_ms"], "hybrid p99 ms": hybrid["p99_ms"],
                "recall@10": ann.get("recall10"), "known-item R@10": hybrid["known_item_r10"],
                "RAM MB": serve["rss_after_queries_mb"], "build papers/s": build["index_papers_per_s"]}
    lower_is_better = {"hybrid p50 ms", "hybrid p99 ms", "RAM MB"}
    lines = ["### Targets at 1M", "", "| target | goal | measured | met |", "|---|---:|---:|---|"]
    for name, goal in TARGETS_1M.items():
        value = measured[name]
        met = value is not None and (value <= goal if name in lower_is_better else value >= goal)
        shown = _f(value, ",.3f" if value is not None and value < 10 else ",.1f")
        sign = "≤" if name in lower_is_better else "≥"
        lines.append(f"| {name} | {sign} {goal:,} | {shown} | {'yes' if met else 'NO'} |")
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--home", type=Path, default=OUT / "search-homes")
    parser.add_argument("--model-home", type=Path, default=OUT / "quality-home" / "static",
                        help="a home whose distilled static model is copied into each benchmark home")
    parser.add_argument("--candidates", type=int, nargs="+", default=[500, 1000, 2000, 4000],
                        help="numbers of dense candidates re-scored at which to measure ANN recall")
    parser.add_argument("--budget", type=float, default=240.0,
                        help="seconds of queries per baseline (latency, then known items) before it stops")
    parser.add_argument("--only", nargs="*", help="run only retrievers whose name contains one of these")
    parser.add_argument("--no-paperwire", action="store_true", help="baselines only")
    parser.add_argument("--no-markdown", action="store_true")
    parser.add_argument("--reuse-build", action="store_true",
                        help="with --only paperwire: measure the index already built by an earlier run again")
    parser.add_argument("--report", action="store_true",
                        help="only rewrite the BENCHMARKS.md section from bench/out/search-*.json")
    args = parser.parse_args(argv)

    command = "python bench/search.py" + (" " + shlex.join(sys.argv[1:]) if len(sys.argv) > 1 else "")
    if not args.report:
        from paperwire.index.embed import load_embedder, static_model_directory
        from paperwire.store import open_store

        load_embedder("static", seeded_home(args.model_home))  # distils the model once, if not yet there
        assert static_model_directory(args.model_home).is_dir()
        sample = seeded_home(OUT / "quality-home" / "corpus")
        store = open_store(sample)
        seed_docs = [Doc(p.id, p.title, p.abstract) for _, p in store.iter_papers()]
        store.close()
        items = load_known_items()
        for n in args.sizes:
            result = run_size(n, args, seed_docs, items)
            result["commands"] = [*result.get("commands", []), command]
            (OUT / f"search-{n}.json").write_text(json.dumps(result, indent=1))
    if args.no_markdown:
        return 0
    results = {}
    for path in OUT.glob("search-*.json"):
        data = json.loads(path.read_text())
        if "rows" in data and "papers" in data:
            results[int(data["papers"])] = data
    commands = list(dict.fromkeys(c for _, r in sorted(results.items()) for c in r.get("commands", [command])))
    write_section(ROOT / "BENCHMARKS.md", markdown(results, machine(), commands))
    print("wrote BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
