"""Recommendation quality on the sample corpus with simulated users.

Each seed page is the hosted service's ranking for one query, so its papers share a topic. A
simulated user saves k papers drawn from one page; the page's other papers are the relevant set.
Every method ranks all papers the user has not saved; we report precision@10 and nDCG@10 (binary
relevance), averaged over pages and draws. Methods:

  paperwire      the product: paperwire.rank.recommend (class-balanced ridge over MiniLM embeddings,
                 shared negative sample)
  paperwire+notrel  the same user also marked 5 papers from other pages "not relevant"
  svm            arxiv-sanity's classifier: linear SVM on the same features, all unsaved papers negative
  logreg         logistic regression on the same features
  centroid       cosine to the mean of the saved vectors (no classifier)
  tfidf-svm      arxiv-sanity-lite's features: tf-idf of title + abstract, linear SVM
  emb+tfidf-svm  both feature sets concatenated
  trending       trending-only (votes with time decay), what a user with nothing saved gets
  random         a random order

Differences between methods are paired (the same simulated users) and reported with a 95%
confidence interval (normal approximation over users), so "helps" means the interval excludes 0.

Usage: python bench/recommend.py [--draws 20] [--vectors index|embed] [--json out.json]
       [--markdown BENCHMARKS.md | --no-markdown]
`--vectors embed` computes the same vectors the index stores (paperwire.index.embed.embed_papers)
without building a search index.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this directory comes first on sys.path; its modules must not shadow the stdlib.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

from bench.quality import machine, write_section  # noqa: E402
from paperwire.cli import seed_paths  # noqa: E402
from paperwire.ingest import ingest_paths  # noqa: E402
from paperwire.rank.recommend import Recommender  # noqa: E402
from paperwire.sources import hf_page  # noqa: E402
from paperwire.store import open_store  # noqa: E402

K_VALUES = (1, 3, 5, 10)
SVM_C = 0.1  # arxiv-sanity-lite's setting
TOP = 10


class Vectors:
    """all_ids / all_vectors / paper_vectors over precomputed rows (the index's interface)."""

    def __init__(self, ids: list[str], matrix: np.ndarray) -> None:
        self.ids, self.matrix = ids, matrix
        self.row = {pid: i for i, pid in enumerate(ids)}

    def all_ids(self) -> list[str]:
        return list(self.ids)

    def all_vectors(self) -> np.ndarray:
        return self.matrix

    def paper_vectors(self, ids: list[str]) -> np.ndarray:
        return self.matrix[[self.row[i] for i in ids]]


def pages(store) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """Each seed page's stored paper ids, in page order, without repeats."""
    out = []
    for path in seed_paths():
        with open(path, "rb") as fh:
            titles = [p for p in hf_page.parse(fh, str(path)) if hasattr(p, "id")]
        stored = store.get_papers([p.id for p in titles])
        out.append(list(dict.fromkeys(stored[p.id].id for p in titles if p.id in stored)))
    return out


def precision_ndcg(ranked: list[str], relevant: set[str]) -> tuple[float, float]:
    gains = [1.0 if pid in relevant else 0.0 for pid in ranked[:TOP]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(TOP, len(relevant))))
    return sum(gains) / TOP, dcg / ideal if ideal else 0.0


def linear_rank(features: np.ndarray, pos: list[int], neg: list[int], pool: list[int], model: str) -> list[int]:
    x = features[pos + neg]
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    clf = (LinearSVC(C=SVM_C, class_weight="balanced", max_iter=10_000, tol=1e-5) if model == "svm"
           else LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000))
    clf.fit(x, y)
    scores = clf.decision_function(features[pool])
    return [pool[i] for i in np.argsort(-scores, kind="stable")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draws", type=int, default=20, help="random users per page and k")
    parser.add_argument("--vectors", choices=["index", "embed"], default="index")
    parser.add_argument("--embedder", default="minilm")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=_HERE.parent / "BENCHMARKS.md")
    parser.add_argument("--no-markdown", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()
    wall0, cpu0 = time.perf_counter(), time.process_time()

    home = Path(tempfile.mkdtemp(prefix="pw-bench-recommend-"))
    store = open_store(home)
    ingest_paths(store, seed_paths(), fmt="hf-page")
    started = time.perf_counter()
    if args.vectors == "index":
        from paperwire.index import open_index

        index = open_index(home, store, embedder=args.embedder)
        vectors = Vectors(index.all_ids(), index.all_vectors())
    else:
        from paperwire.index.embed import embed_papers, load_embedder

        papers = [p for _, p in store.iter_papers()]
        vectors = Vectors([p.id for p in papers], embed_papers(load_embedder(args.embedder, home), papers))
    embed_seconds = time.perf_counter() - started
    ids = vectors.ids
    row = vectors.row
    papers = store.get_papers(ids)
    texts = [papers[i].title + ". " + papers[i].abstract for i in ids]
    tfidf = TfidfVectorizer(sublinear_tf=True, min_df=2, max_df=0.5, ngram_range=(1, 2), stop_words="english")
    tf = tfidf.fit_transform(texts)
    tf_dense = tf.toarray().astype(np.float32)
    both = np.hstack([vectors.matrix, tf_dense])
    recommender = Recommender(store, vectors)
    page_ids = pages(store)

    methods = ["paperwire", "paperwire+notrel", "svm", "logreg", "centroid", "tfidf-svm", "emb+tfidf-svm",
               "trending", "random"]
    results: dict[str, dict[int, list[tuple[float, float]]]] = {m: {k: [] for k in K_VALUES} for m in methods}
    timings: list[float] = []
    rng = random.Random(7)
    for page_no, page in enumerate(page_ids):
        others = [pid for pid in ids if pid not in set(page)]
        for k in K_VALUES:
            for _ in range(args.draws):
                saved = rng.sample(page, k)
                relevant = set(page) - set(saved)
                pool_ids = [pid for pid in ids if pid not in set(saved)]
                t0 = time.perf_counter()
                product = [r.paper.id for r in recommender.rank(saved, limit=TOP)]
                timings.append(time.perf_counter() - t0)
                results["paperwire"][k].append(precision_ndcg(product, relevant))
                not_relevant = rng.sample(others, 5)
                with_neg = [r.paper.id for r in recommender.rank(saved, not_relevant, limit=TOP)]
                results["paperwire+notrel"][k].append(precision_ndcg(with_neg, relevant))
                pos = [row[p] for p in saved]
                pool = [row[p] for p in pool_ids]
                neg = pool  # everything unsaved, as in the product for a corpus this small
                for name, feats, model in (("svm", vectors.matrix, "svm"), ("logreg", vectors.matrix, "logreg"),
                                           ("tfidf-svm", tf_dense, "svm"), ("emb+tfidf-svm", both, "svm")):
                    ranked = [ids[i] for i in linear_rank(feats, pos, neg, pool, model)]
                    results[name][k].append(precision_ndcg(ranked, relevant))
                centroid = vectors.matrix[pos].mean(axis=0)
                order = np.argsort(-(vectors.matrix[pool] @ centroid), kind="stable")
                results["centroid"][k].append(precision_ndcg([ids[pool[i]] for i in order], relevant))
                trending = [r.paper.id for r in recommender.trending(limit=TOP, exclude=set(saved))]
                results["trending"][k].append(precision_ndcg(trending, relevant))
                shuffled = pool_ids[:]
                rng.shuffle(shuffled)
                results["random"][k].append(precision_ndcg(shuffled, relevant))
        print(f"page {page_no}: {len(page)} papers done", file=sys.stderr)

    table = {m: {k: {"p@10": round(float(np.mean([r[0] for r in v])), 3),
                     "ndcg@10": round(float(np.mean([r[1] for r in v])), 3)} for k, v in per_k.items()}
             for m, per_k in results.items()}
    summary = {"papers": len(ids), "pages": [len(p) for p in page_ids], "draws_per_page_and_k": args.draws,
               "vectors": args.vectors, "embedder": args.embedder, "embed_seconds": round(embed_seconds, 1),
               "recommend_ms_median": round(1000 * float(np.median(timings)), 1), "results": table}
    print(f"{len(ids)} papers, pages of {summary['pages']}, {args.draws} users per page and k; "
          f"product recommend median {summary['recommend_ms_median']} ms")
    header = "| method | " + " | ".join(f"k={k} P@10 / nDCG@10" for k in K_VALUES) + " |"
    print(header)
    print("|" + "---|" * (len(K_VALUES) + 1))
    for m in methods:
        cells = [f"{table[m][k]['p@10']:.3f} / {table[m][k]['ndcg@10']:.3f}" for k in K_VALUES]
        print(f"| {m} | " + " | ".join(cells) + " |")
    comparisons = {}
    for a, b in PAIRS:
        comparisons[f"{a} - {b}"] = {k: {"p@10": paired(results[a][k], results[b][k], 0),
                                         "ndcg@10": paired(results[a][k], results[b][k], 1)} for k in K_VALUES}
    summary["paired_differences"] = comparisons
    summary["wall_seconds"] = round(time.perf_counter() - wall0, 1)
    summary["cpu_seconds"] = round(time.process_time() - cpu0, 1)
    summary["load_average_before"] = [round(x, 2) for x in load_before]
    summary["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print("paired differences (mean ± 95% CI half-width), P@10:")
    for name, per_k in comparisons.items():
        print(f"  {name}: " + ", ".join(f"k={k} {v['p@10'][0]:+.3f}±{v['p@10'][1]:.3f}" for k, v in per_k.items()))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    store.close()
    if not args.no_markdown:
        command = ("python bench/recommend.py " + " ".join(sys.argv[1:])).strip()
        write_section(args.markdown, markdown(summary, methods, command))


# (a, b): is a better than b on the same users?
PAIRS = [("paperwire", "trending"), ("paperwire", "random"), ("paperwire+notrel", "paperwire"), ("svm", "paperwire"),
         ("logreg", "paperwire"), ("centroid", "paperwire"), ("emb+tfidf-svm", "svm"), ("tfidf-svm", "svm")]
METHOD_NOTES = {
    "paperwire": "**paperwire** (`paperwire.rank.recommend`): class-balanced ridge over MiniLM embeddings",
    "paperwire+notrel": "the same, with 5 papers of other pages marked “not relevant”",
    "svm": "arxiv-sanity's linear SVM, same embeddings",
    "logreg": "logistic regression, same features",
    "centroid": "cosine to the mean saved vector",
    "tfidf-svm": "arxiv-sanity-lite's features: tf-idf (1-2 grams), linear SVM",
    "emb+tfidf-svm": "embeddings and tf-idf concatenated, linear SVM",
    "trending": "baseline: trending only (what a user with nothing saved gets)",
    "random": "baseline: random order",
}


def paired(a: list[tuple[float, float]], b: list[tuple[float, float]], which: int) -> tuple[float, float]:
    """Mean of a - b over the same users, and the 95% CI half-width."""
    d = np.array([x[which] - y[which] for x, y in zip(a, b, strict=True)])
    half = 1.96 * float(d.std(ddof=1)) / math.sqrt(len(d)) if len(d) > 1 else float("nan")
    return round(float(d.mean()), 4), round(half, 4)


def markdown(s: dict, methods: list[str], command: str) -> str:  # type: ignore[type-arg]
    info = machine()
    table = s["results"]
    lines = [
        "## Recommendations (simulated users)",
        "",
        f"Each of the {len(s['pages'])} seed pages is the hosted service's ranking for one query (pages of "
        f"{', '.join(map(str, s['pages']))} papers; {s['papers']} papers in all). A simulated user saves k papers "
        "of one page; the rest of that page is the relevant set; every method ranks all papers the user has not "
        f"saved. {s['draws_per_page_and_k']} users per page and k ({s['draws_per_page_and_k'] * len(s['pages'])} "
        "per column); binary relevance. The sample corpus has no upvotes, so trending here orders by listing "
        "day: it stands for what a user with nothing to learn from gets.",
        "",
        f"Command: `{command}`  ",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB RAM, Python {info['python']}, "
        f"{info['os']}  ",
        f"Embeddings: {s['embedder']} ({s['vectors']}), {s['embed_seconds']} s. Whole run: {s['wall_seconds']} s "
        f"wall, {s['cpu_seconds']} s CPU; one paperwire recommendation (train + rank 407) median "
        f"{s['recommend_ms_median']} ms. Load average (1/5/15 min) before: "
        f"{' / '.join(map(str, s['load_average_before']))}, after: {' / '.join(map(str, s['load_average_after']))}",
        "",
        "P@10 / nDCG@10:",
        "",
        "| method | " + " | ".join(f"k={k}" for k in K_VALUES) + " |",
        "|---|" + "---:|" * len(K_VALUES),
    ]
    for m in methods:
        cells = [f"{table[m][k]['p@10']:.3f} / {table[m][k]['ndcg@10']:.3f}" for k in K_VALUES]
        lines.append(f"| {METHOD_NOTES.get(m, m)} | " + " | ".join(cells) + " |")
    lines += ["", "Paired differences in P@10 on the same users (mean ± 95% CI half-width; an interval that "
              "contains 0 is no measurable difference):", "",
              "| a − b | " + " | ".join(f"k={k}" for k in K_VALUES) + " |", "|---|" + "---:|" * len(K_VALUES)]
    for name, per_k in s["paired_differences"].items():
        lines.append(f"| {name} | " + " | ".join(f"{v['p@10'][0]:+.3f} ± {v['p@10'][1]:.3f}" for v in per_k.values())
                     + " |")
    svm, trend = table["paperwire"], table["trending"]
    ratio = min(svm[k]["p@10"] / max(1e-9, trend[k]["p@10"]) for k in K_VALUES)
    tfidf = s["paired_differences"]["emb+tfidf-svm - svm"]
    helped = [k for k in K_VALUES if tfidf[k]["p@10"][0] - tfidf[k]["p@10"][1] > 0]
    lines += ["", f"paperwire vs trending-only: at least ×{ratio:.2f} P@10 for every k. Adding tf-idf features "
              "to the embeddings (both with the linear SVM) measurably helps (interval above 0) for k = "
              + (", ".join(map(str, helped)) if helped else "none") + " and not for the other k.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
