"""Known-item quality among real papers: the sample corpus hidden among real arXiv records.

    .venv/bin/python bench/real_scale.py --home HOME... [--measure known,recommend,similar]
        [--weights 0,0.1,0.25] [--draws 10] [--similar-sample 300] [--no-markdown]
    .venv/bin/python bench/real_scale.py --subset 20000 --data arxiv-real-187k.jsonl.gz --out real-20k.jsonl.gz

HOME holds the bundled captures and real arXiv papers with its search index built, e.g.

    PAPERWIRE_SKIP_INDEX=1 paperwire --home HOME ingest paperwire/data/seeds/*.txt arxiv-real-187k.jsonl.gz
    paperwire --home HOME index rebuild --embedder static

Both query sets run (bench/known_items.json for sample papers, bench/known_items_real.json for drawn
real papers) against paperwire's lexical, semantic and hybrid modes, hybrid at other dense weights
(the fusion diagnosis; tune on the tune split only), and bm25s and SQLite FTS5 over the same papers.
`recommend`: bench/recommend.py's simulated users (save k papers of one sample page; the rest of that
page is relevant) with every real paper as a distractor, for paperwire's recommender over the home's
index vectors and arxiv-sanity-lite's method (tf-idf of word 1-2 grams, a linear SVM per user with every
other paper negative) in the same run. `similar`: overlap@10 between the similar-papers lists of every
vector set the home holds in full (the index's, and any other embedder's in its embedding cache) and a
lexical one (tf-idf cosine), for a seeded sample of papers.

Writes bench/out/real_scale-MEASURE.json and, in the "## Quality among real papers" section of
BENCHMARKS.md, the subsections this run measured (the others are kept).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any

_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE] + [_HERE]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from known_items import load_known_items  # noqa: E402
from quality import (  # noqa: E402
    BENCHMARKS_MD,
    OUT,
    bm25s_retriever,
    evaluate,
    fts5_retriever,
    load_average,
    machine,
    metrics,
    write_section,
)

# bench/recommend.py's protocol, reused as is (it puts the repository root on the path for its imports)
from recommend import K_VALUES, pages, paired, precision_ndcg  # noqa: E402

REAL_ITEMS = Path(_HERE) / "known_items_real.json"
SUBSET_SEED = 20261206
SAMPLE_PAPERS = 407  # the bundled captures, ingested beside every subset
SECTION = "## Quality among real papers"
MEASURES = ("known", "recommend", "similar")
RECOMMEND_SEED = 7
SIMILAR_SEED = 11
TOP = 10
# arxiv-sanity-lite's method as its README and defaults describe it: tf-idf of word 1-2 grams with
# sublinear tf over title + abstract, a vocabulary cut to the most frequent terms, and a linear SVM per
# user, class-balanced, saved papers positive and every other paper negative, ranked by its margin.
TFIDF_MAX_FEATURES = 30_000
SVM_C = 0.01


def canonical_targets(store: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items whose target is stored, re-keyed to the stored id (a capture merged with its arXiv record
    answers to the arXiv id)."""
    from paperwire.store import PaperNotFound

    found = []
    for item in items:
        try:
            found.append({**item, "id": store.get_paper(item["id"]).id})
        except PaperNotFound:
            pass
    return found


def write_subset(data: Path, size: int, out: Path, seed: int = SUBSET_SEED) -> int:
    """A smaller home's real papers: every target of known_items_real.json plus a seeded uniform draw of
    the rest, so that with the sample captures the home holds about `size` papers. Returns records written."""
    import gzip
    import random

    targets = {item["id"] for item in load_known_items(REAL_ITEMS)}
    with gzip.open(data, "rt", encoding="utf-8") as fh:
        lines = fh.readlines()
    wanted = max(0, size - SAMPLE_PAPERS)
    chosen = [i for i, line in enumerate(lines) if json.loads(line)["id"] in targets]
    taken = set(chosen)
    rest = [i for i in range(len(lines)) if i not in taken]
    chosen += random.Random(seed).sample(rest, max(0, min(len(rest), wanted - len(chosen))))
    with gzip.open(out, "wt", encoding="utf-8") as fh:
        for i in sorted(chosen):
            fh.write(lines[i])
    return len(chosen)


def evaluate_home(home: Path, weights: str) -> dict[str, Any]:
    """Every retriever on both query sets in one home."""
    from paperwire.index import fusion, open_index
    from paperwire.store import open_store

    store = open_store(home, readonly=True)
    index = open_index(home, store, catch_up=False)
    papers = [paper for _, paper in store.iter_papers()]
    query_sets = {"sample papers (known_items.json)": canonical_targets(store, load_known_items()),
                  "real papers (known_items_real.json)": canonical_targets(store, load_known_items(REAL_ITEMS))}

    def mode(name: str):  # noqa: ANN202
        return lambda q: [h.id for h in index.search(q, mode=name, limit=100, snippets=False)]

    def hybrid_at(weight: float):  # noqa: ANN202
        def search(q: str) -> list[str]:
            saved, by_size = dict(fusion.DENSE_WEIGHTS), dict(fusion.WEIGHT_BY_SIZE)
            fusion.DENSE_WEIGHTS[index.embedder_kind] = weight
            fusion.WEIGHT_BY_SIZE.pop(index.embedder_kind, None)
            try:
                return [h.id for h in index.search(q, mode="hybrid", limit=100, snippets=False)]
            finally:
                fusion.DENSE_WEIGHTS.clear()
                fusion.DENSE_WEIGHTS.update(saved)
                fusion.WEIGHT_BY_SIZE.update(by_size)
        return search

    started = time.perf_counter()
    retrievers: dict[str, Any] = {
        "paperwire lexical": mode("lexical"),
        f"paperwire semantic ({index.embedder_kind})": mode("semantic"),
        f"paperwire hybrid ({index.embedder_kind}, shipped weight "
        f"{fusion.dense_weight(index.embedder_kind, len(papers)):.3g})": mode("hybrid"),
    }
    for weight in (float(w) for w in weights.split(",")):
        retrievers[f"paperwire hybrid ({index.embedder_kind}, dense weight {weight})"] = hybrid_at(weight)
    retrievers["baseline bm25s"] = bm25s_retriever(papers)
    retrievers["baseline SQLite FTS5 bm25()"] = fts5_retriever(papers)

    results: dict[str, Any] = {"home": str(home), "papers": len(papers), "embedder": index.embedder.name,
                               "coverage": index.verify().to_dict()["coverage"], "sets": {}}
    for set_name, items in query_sets.items():
        rows = {}
        for name, retriever in retrievers.items():
            run = evaluate(retriever, items)
            rows[name] = {"all": metrics(run["ranks"]),
                          **{split: metrics([r for r, it in zip(run["ranks"], items, strict=True)
                                             if it["split"] == split]) for split in ("tune", "test")}}
            print(f"{set_name:40s} {name:55s} MRR {rows[name]['all']['mrr']:.3f} "
                  f"R@10 {rows[name]['all']['r10']:.3f}", file=sys.stderr)
        results["sets"][set_name] = {"queries": len(items), "rows": rows}
    results["seconds"] = time.perf_counter() - started
    store.close()
    return results


# ---------------------------------------------------------------- shared by the recommendation and similar-papers runs

@functools.lru_cache(maxsize=1)
def home_tfidf(home: Path) -> Any:
    """tf-idf rows of the home's papers in home_vectors' order (minutes at 187k: computed once per home)."""
    started = time.perf_counter()
    matrix = tfidf_matrix(home_vectors(home)[3])
    print(f"{home}: tf-idf {matrix.shape} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return matrix


def tfidf_matrix(papers: list[Any]) -> Any:
    """L2-normalised tf-idf rows (title + abstract) in the order of `papers`, as arxiv-sanity-lite builds them."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=TFIDF_MAX_FEATURES,
                                 stop_words="english", strip_accents="unicode", min_df=2, max_df=0.5,
                                 dtype=np.float32)
    return vectorizer.fit_transform(f"{p.title}. {p.abstract}" for p in papers).tocsr()


@functools.lru_cache(maxsize=1)  # one home at a time, shared by its measurements
def home_vectors(home: Path) -> tuple[Any, Any, list[str], list[Any]]:
    """The home's store, its index (as it is on disk), the index's paper ids and those papers, in one order."""
    from paperwire.index import open_index
    from paperwire.store import open_store

    store = open_store(home, readonly=True)
    index = open_index(home, store, catch_up=False)
    ids = index.all_ids()
    found = store.get_papers(ids)
    return store, index, ids, [found[pid] for pid in ids]


def linear_svm_ranking(features: Any, positives: list[int], exclude: set[int]) -> list[int]:
    """Rows by the margin of a class-balanced linear SVM, saved rows positive and every other row negative,
    leaving out `exclude`."""
    from sklearn.svm import LinearSVC

    labels = np.zeros(features.shape[0])
    labels[positives] = 1
    svm = LinearSVC(C=SVM_C, class_weight="balanced", max_iter=10_000)  # default tol: same top 10, faster
    svm.fit(features, labels)
    scores = svm.decision_function(features)
    order = np.argsort(-scores, kind="stable")
    return [int(i) for i in order[:TOP + len(exclude)] if int(i) not in exclude][:TOP]


# ---------------------------------------------------------------- recommendations with real distractors

def recommend_home(home: Path, draws: int, command: str) -> dict[str, Any]:
    """Simulated users of the sample pages (bench/recommend.py's protocol) among all the home's papers:
    paperwire's recommender over the index's vectors against tf-idf + linear SVM, on the same users."""
    from paperwire.rank.recommend import Recommender

    store, index, ids, papers = home_vectors(home)
    row = {pid: i for i, pid in enumerate(ids)}
    features = home_tfidf(home)
    recommender = Recommender(store, index)
    page_ids = [[pid for pid in page if pid in row] for page in pages(store)]
    methods = ("paperwire", "tfidf-svm")
    results: dict[str, dict[int, list[tuple[float, float]]]] = {m: {k: [] for k in K_VALUES} for m in methods}
    seconds: dict[str, list[float]] = {m: [] for m in methods}
    rng = random.Random(RECOMMEND_SEED)
    for page in page_ids:
        for k in K_VALUES:
            for _ in range(draws):
                saved = rng.sample(page, k)
                relevant = set(page) - set(saved)
                t0 = time.perf_counter()
                ranked = [r.paper.id for r in recommender.rank(saved, limit=TOP)]
                seconds["paperwire"].append(time.perf_counter() - t0)
                results["paperwire"][k].append(precision_ndcg(ranked, relevant))
                t0 = time.perf_counter()
                rows = linear_svm_ranking(features, [row[p] for p in saved], {row[p] for p in saved})
                seconds["tfidf-svm"].append(time.perf_counter() - t0)
                results["tfidf-svm"][k].append(precision_ndcg([ids[i] for i in rows], relevant))
        print(f"{home}: page of {len(page)} papers done", file=sys.stderr)
    table = {m: {str(k): {"p@10": float(np.mean([r[0] for r in v])), "ndcg@10": float(np.mean([r[1] for r in v]))}
                 for k, v in per_k.items()} for m, per_k in results.items()}
    difference = {str(k): {"p@10": paired(results["paperwire"][k], results["tfidf-svm"][k], 0),
                           "ndcg@10": paired(results["paperwire"][k], results["tfidf-svm"][k], 1)}
                  for k in K_VALUES}
    return {"home": str(home), "papers": len(ids), "embedder": index.embedder.name,
            "embedder_kind": index.embedder_kind, "pages": [len(p) for p in page_ids], "draws": draws,
            "tfidf_features": int(features.shape[1]), "command": command,
            "ms_median": {m: 1000 * float(np.median(v)) for m, v in seconds.items()},
            "results": table, "paperwire_minus_tfidf_svm": difference}


# ---------------------------------------------------------------- similar papers: agreement between embedders

def vector_sets(home: Path, index: Any, ids: list[str], papers: list[Any]) -> dict[str, Any]:
    """Every embedder's vectors for all of `ids`: the index's own, and any other embedder whose vectors the
    home's embedding cache holds for every paper (rows L2-normalised, in the order of `ids`)."""
    from paperwire.index.embed import KINDS, EmbeddingCache, embedder_class, text_for_embedding, text_key
    from paperwire.index.engine import index_dir

    sets = {index.embedder_kind: np.asarray(index.paper_vectors(ids), dtype=np.float32)}
    keys = [text_key(text_for_embedding(p)) for p in papers]
    cache = EmbeddingCache(index_dir(home) / "embeddings.sqlite3")
    try:
        for kind in (k for k in KINDS if k not in sets):
            cls = embedder_class(kind)
            found = cache.get_many(cls.name, keys, cls.dim)
            print(f"{home}: {kind} vectors for {sum(k in found for k in keys):,} of {len(keys):,} papers",
                  file=sys.stderr)
            if all(k in found for k in keys):
                matrix = np.stack([found[k] for k in keys]).astype(np.float32)
                sets[kind] = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    finally:
        cache.close()
    return sets


def nearest(matrix: Any, rows: list[int], top: int = TOP) -> list[list[int]]:
    """The `top` rows of highest cosine (dot product of unit rows) to each of `rows`, never the row itself."""
    out = []
    for start in range(0, len(rows), 64):
        chunk = rows[start:start + 64]
        scores = matrix[chunk] @ matrix.T
        if hasattr(scores, "toarray"):
            scores = scores.toarray()
        scores = np.asarray(scores, dtype=np.float32)
        scores[np.arange(len(chunk)), chunk] = -np.inf
        best = np.argpartition(-scores, top, axis=1)[:, :top]
        for i, cand in enumerate(best):
            out.append([int(j) for j in cand[np.argsort(-scores[i, cand], kind="stable")]])
    return out


def overlap(a: list[list[int]], b: list[list[int]]) -> dict[str, float]:
    shared = [len(set(x) & set(y)) / TOP for x, y in zip(a, b, strict=True)]
    return {"mean": float(np.mean(shared)), "median": float(np.median(shared)),
            "none": float(np.mean([s == 0 for s in shared]))}


def similar_home(home: Path, sample: int, command: str) -> dict[str, Any]:
    """overlap@10 of the similar-papers lists, for a seeded sample of the home's papers, between each pair
    of: every full vector set (exact cosine), lexical (tf-idf cosine), and paperwire's own `similar` (the
    index's ANN with its title tie-break) against exact cosine of the same vectors."""
    from paperwire.index.engine import read_coverage

    store, index, ids, papers = home_vectors(home)
    rows = sorted(random.Random(SIMILAR_SEED).sample(range(len(ids)), min(sample, len(ids))))
    lists = {f"{kind} vectors": nearest(matrix, rows) for kind, matrix in vector_sets(home, index, ids, papers).items()}
    lists["lexical (tf-idf cosine)"] = nearest(home_tfidf(home), rows)
    row = {pid: i for i, pid in enumerate(ids)}
    product = f"paperwire similar ({index.embedder_kind} index)"
    lists[product] = [[row[h.id] for h in index.similar(ids[r], limit=TOP, snippets=False) if h.id in row]
                      for r in rows]
    names = [n for n in lists if n != product]
    pairs = {f"{a} / {b}": overlap(lists[a], lists[b]) for i, a in enumerate(names) for b in names[i + 1:]}
    own = f"{index.embedder_kind} vectors"
    pairs[f"{product} / {own}"] = overlap(lists[product], lists[own])
    return {"home": str(home), "papers": len(ids), "index_embedder": index.embedder.name, "sample": len(rows),
            "coverage": read_coverage(home), "pairs": pairs, "command": command}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, nargs="+", help="one or more homes (e.g. 20k, 100k, all papers)")
    parser.add_argument("--measure", default=",".join(MEASURES), help=f"any of {', '.join(MEASURES)}")
    parser.add_argument("--subset", type=int, help="write a subset of --data to --out (about this many papers)")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--weights", default="0,0.05,0.1,0.25", help="dense weights tried for hybrid")
    parser.add_argument("--draws", type=int, default=10, help="simulated users per sample page and k")
    parser.add_argument("--similar-sample", type=int, default=300, help="papers whose similar lists are compared")
    parser.add_argument("--no-markdown", action="store_true")
    args = parser.parse_args(argv)
    if args.subset:
        if not (args.data and args.out):
            parser.error("--subset needs --data and --out")
        print(f"{write_subset(args.data, args.subset, args.out):,} records -> {args.out}", file=sys.stderr)
        return 0
    if args.home is None:
        parser.error("--home is required")
    measures = [m.strip() for m in args.measure.split(",") if m.strip()]
    if not measures or set(measures) - set(MEASURES):
        parser.error(f"--measure: expected some of {', '.join(MEASURES)}")

    command = "python bench/real_scale.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    run = {"known": lambda home: evaluate_home(home, args.weights),
           "recommend": lambda home: recommend_home(home, args.draws, command),
           "similar": lambda home: similar_home(home, args.similar_sample, command)}
    render = {"known": lambda runs: known_items_blocks(runs, command), "recommend": recommend_block,
              "similar": similar_block}
    OUT.mkdir(parents=True, exist_ok=True)
    for home in args.home:  # home by home, so that each one's results are written as soon as they exist
        for measure in measures:
            result = run[measure](home)
            result["load"] = load_average()
            runs = [result] if measure == "known" else merged_runs(OUT / f"real_scale-{measure}.json", result)
            if measure == "known":
                (OUT / f"real_scale-known-{result['papers']}.json").write_text(json.dumps(result, indent=1))
            if not args.no_markdown:
                write_subsections(BENCHMARKS_MD, render[measure](runs))
    return 0


def merged_runs(path: Path, result: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs stored in `path` with `result` in place of an earlier run of the same size and embedder
    (homes are measured by separate commands, one table shows them all); written back, smallest first."""
    def key(r: dict[str, Any]) -> tuple[int, str]:
        return r["papers"], r.get("embedder") or r.get("index_embedder", "")

    runs = json.loads(path.read_text()) if path.exists() else []
    runs = sorted([r for r in runs if key(r) != key(result)] + [result], key=key)
    path.write_text(json.dumps(runs, indent=1))
    return runs


def write_subsections(path: Path, blocks: dict[str, str]) -> None:
    """Replace (or add) `### ` blocks of the section by their heading, keeping its other blocks and its
    opening text: one run may measure only some things, or only some homes."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION), None)
    current: list[str] = []
    if start is not None:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        current = lines[start + 1:end]
    opening: list[str] = []
    kept: dict[str, list[str]] = {}
    heading = None
    for line in current:
        if line.startswith("### "):
            heading = line.rstrip()
            kept[heading] = []
        if heading is None:
            opening.append(line)
        else:
            kept[heading].append(line)
    for head, block in blocks.items():
        kept[head] = block.rstrip("\n").splitlines() + [""]
    body = "\n".join(opening).strip("\n")
    section = [SECTION, "", body, ""] if body else [SECTION, ""]
    for block in kept.values():
        section += block
    write_section(path, "\n".join(section).rstrip("\n") + "\n")


def run_note(command: str, load: str | None = None) -> str:
    info = machine()
    return (f"`{command}` — {info.get('cpu', '')}, {info.get('cores', '')} cores, load {load or load_average()} "
            "(other work on the machine).")


def run_notes(runs: list[dict[str, Any]]) -> list[str]:
    """Each command that measured some of these homes, once, with the load when it ended; a home is named
    by its size (HOME-20k), not by where it lay on the machine that measured it."""
    labels = {r["home"]: f"HOME-{round(r['papers'] / 1000)}k" for r in runs}
    notes = {}
    for r in runs:
        command = r["command"]
        for home, label in labels.items():
            command = command.replace(home, label)
        notes[command] = run_note(command, r.get("load"))
    return [note + "  " for note in notes.values()] + [""]


def known_items_blocks(runs: list[dict[str, Any]], command: str) -> dict[str, str]:
    """One block per home; a static-vector home keeps the plain heading (static is what every large home
    starts with), another embedder's is named."""
    blocks = {}
    for results in runs:
        kind = results["embedder"].split(":")[0]
        heading = f"### {results['papers']:,} papers" + ("" if kind == "static" else f", {kind} vectors")
        note = run_notes([{**results, "command": command}])[0].rstrip()
        lines = [heading, "", note + " The hybrid's dense weight is chosen on the tune splits "
                 "only (paperwire/index/fusion.py WEIGHT_BY_SIZE); the test columns were not looked at.", "",
                 f"The sample captures among real arXiv records; index embedder {results['embedder']} "
                 f"({results['coverage']['vectors']:,} vectors).", ""]
        blocks[heading] = "\n".join(lines + _set_tables(results))
    return blocks


RECOMMEND_HEADING = "### Recommendations among real papers"
SIMILAR_HEADING = "### Similar papers: agreement between embedders"


def _embedder_label(kind: str) -> str:
    return {"minilm": "MiniLM", "static": "static"}.get(kind, kind)


def recommend_block(runs: list[dict[str, Any]]) -> dict[str, str]:
    first = runs[0]
    lines = [RECOMMEND_HEADING, "", *run_notes(runs),
             "bench/recommend.py's simulated users with every real paper as a distractor: a user saves k papers "
             f"of one sample page (pages of {', '.join(map(str, first['pages']))} papers), the rest of that page "
             "is relevant, and each method ranks every other paper of the home, for the same simulated users "
             "(the table gives how many per k). "
             "**paperwire**: paperwire.rank.recommend.Recommender (what /recommended serves) over the index's "
             "vectors. **tf-idf + SVM**: arxiv-sanity-lite's method, tf-idf of word 1-2 grams with sublinear tf "
             f"over title + abstract ({TFIDF_MAX_FEATURES:,} features), a class-balanced LinearSVC (C = {SVM_C}) "
             "per user, saved papers positive and every other paper negative, ranked by its margin.", "",
             "P@10 / nDCG@10:", "",
             "| papers | method | users per k | " + " | ".join(f"k={k}" for k in K_VALUES)
             + " | ms per user (median) |",
             "|---|---|---:|" + "---:|" * (len(K_VALUES) + 1)]
    for r in runs:
        names = {"paperwire": f"paperwire ({_embedder_label(r['embedder_kind'])} vectors)",
                 "tfidf-svm": "tf-idf + SVM"}
        for method, label in names.items():
            cells = [f"{r['results'][method][str(k)]['p@10']:.3f} / {r['results'][method][str(k)]['ndcg@10']:.3f}"
                     for k in K_VALUES]
            users = r["draws"] * len(r["pages"])
            lines.append(f"| {r['papers']:,} | {label} | {users} | " + " | ".join(cells)
                         + f" | {r['ms_median'][method]:.0f} |")
    lines += ["", "paperwire − tf-idf + SVM in P@10 on the same users (mean ± 95% CI half-width; an interval "
              "that holds 0 is no measurable difference):", "",
              "| papers | vectors | " + " | ".join(f"k={k}" for k in K_VALUES) + " |",
              "|---|---|" + "---:|" * len(K_VALUES)]
    for r in runs:
        diff = r["paperwire_minus_tfidf_svm"]
        cells = [f"{diff[str(k)]['p@10'][0]:+.3f} ± {diff[str(k)]['p@10'][1]:.3f}" for k in K_VALUES]
        lines.append(f"| {r['papers']:,} | {_embedder_label(r['embedder_kind'])} | " + " | ".join(cells) + " |")
    return {RECOMMEND_HEADING: "\n".join(lines)}


def similar_block(runs: list[dict[str, Any]]) -> dict[str, str]:
    lines = [SIMILAR_HEADING, "", *run_notes(runs),
             f"For {runs[0]['sample']} papers drawn with a fixed seed in each home: the share of their 10 most "
             "similar papers that two lists have in common (overlap@10; mean, median, and the share of papers "
             "whose lists have none in common). Each embedder's list is the exact cosine top 10 over its "
             "vectors, compared only where the home holds that embedder's vectors for every paper; lexical is "
             "tf-idf cosine (arxiv-sanity-lite's similar papers); the last row of each home is paperwire's "
             "own `similar` (the index's ANN with its title tie-break) against the exact list of its vectors.",
             "", "| papers | lists compared | overlap@10 mean | median | none in common |", "|---|---|---:|---:|---:|"]
    for r in runs:
        for pair, o in r["pairs"].items():
            lines.append(f"| {r['papers']:,} | {pair} | {o['mean']:.3f} | {o['median']:.2f} | {o['none']:.3f} |")
        missing = {name: c for name, c in r["coverage"].items() if c.get("covered", 0) < r["papers"]}
        for name, c in missing.items():
            lines.append(f"| {r['papers']:,} | {name}: vectors for {c['covered']:,} of {c['papers']:,} "
                         "papers so far, not compared | | | |")
    return {SIMILAR_HEADING: "\n".join(lines)}


def _set_tables(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for set_name, data in results["sets"].items():
        lines += [f"{set_name}: {data['queries']} queries", "",
                  "| retriever | R@1 | R@10 | MRR | MRR tune | MRR test |", "|---|---|---|---|---|---|"]
        for name, row in data["rows"].items():
            lines.append(f"| {name} | {row['all']['r1']:.3f} | {row['all']['r10']:.3f} | {row['all']['mrr']:.3f} "
                         f"| {row['tune']['mrr']:.3f} | {row['test']['mrr']:.3f} |")
        lines.append("")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
