"""Recommendation quality on the sample corpus with simulated users.

Each seed page is the hosted service's ranking for one query, so its papers share a topic. A
simulated user saves k papers drawn from one page; the page's other papers are the relevant set.
Every method ranks all papers the user has not saved; we report precision@10 and nDCG@10 (binary
relevance), averaged over pages and draws. Methods:

  svm            the product: paperwire.rank.recommend (linear SVM over MiniLM embeddings)
  svm+notrel     the same user also marked 5 papers from other pages "not relevant"
  logreg         logistic regression on the same features
  centroid       cosine to the mean of the saved vectors (no classifier)
  tfidf-svm      arxiv-sanity-lite's features: tf-idf of title + abstract, linear SVM
  emb+tfidf-svm  both feature sets concatenated
  trending       trending-only (votes with time decay), what a user with nothing saved gets
  random         a random order

Usage: python bench/recommend.py [--draws 20] [--vectors index|embed] [--json out.json]
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
import random  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

from paperwire.cli import seed_paths  # noqa: E402
from paperwire.ingest import ingest_paths  # noqa: E402
from paperwire.rank.recommend import C, Recommender  # noqa: E402
from paperwire.sources import hf_page  # noqa: E402
from paperwire.store import open_store  # noqa: E402

K_VALUES = (1, 3, 5, 10)
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
    clf = (LinearSVC(C=C, class_weight="balanced", max_iter=10_000, tol=1e-5) if model == "svm"
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
    args = parser.parse_args()

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

    methods = ["svm", "svm+notrel", "logreg", "centroid", "tfidf-svm", "emb+tfidf-svm", "trending", "random"]
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
                product = [r.paper.id for r in recommender.rank(saved, limit=TOP, seed=rng.randrange(1 << 30))]
                timings.append(time.perf_counter() - t0)
                results["svm"][k].append(precision_ndcg(product, relevant))
                not_relevant = rng.sample(others, 5)
                with_neg = [r.paper.id for r in recommender.rank(saved, not_relevant, limit=TOP,
                                                                  seed=rng.randrange(1 << 30))]
                results["svm+notrel"][k].append(precision_ndcg(with_neg, relevant))
                pos = [row[p] for p in saved]
                pool = [row[p] for p in pool_ids]
                neg = pool  # everything unsaved, as in the product for a corpus this small
                for name, feats, model in (("logreg", vectors.matrix, "logreg"), ("tfidf-svm", tf_dense, "svm"),
                                           ("emb+tfidf-svm", both, "svm")):
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
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    store.close()


if __name__ == "__main__":
    main()
