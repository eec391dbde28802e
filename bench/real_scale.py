"""Known-item quality among real papers: the sample corpus hidden among real arXiv records.

    .venv/bin/python bench/real_scale.py --home HOME [--weights 0,0.1,0.25] [--no-markdown]
    .venv/bin/python bench/real_scale.py --subset 20000 --data arxiv-real-187k.jsonl.gz --out real-20k.jsonl.gz

HOME holds the bundled captures and real arXiv papers with its search index built, e.g.

    PAPERWIRE_SKIP_INDEX=1 paperwire --home HOME ingest paperwire/data/seeds/*.txt arxiv-real-187k.jsonl.gz
    paperwire --home HOME index rebuild --embedder static

Both query sets run (bench/known_items.json for sample papers, bench/known_items_real.json for drawn
real papers) against paperwire's lexical, semantic and hybrid modes, hybrid at other dense weights
(the fusion diagnosis; tune on the tune split only), and bm25s and SQLite FTS5 over the same papers.
Writes bench/out/real_scale.json and the "## Quality among real papers" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
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

REAL_ITEMS = Path(_HERE) / "known_items_real.json"
SUBSET_SEED = 20261206
SAMPLE_PAPERS = 407  # the bundled captures, ingested beside every subset
SECTION = "## Quality among real papers"


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

    results: dict[str, Any] = {"papers": len(papers), "embedder": index.embedder.name,
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, nargs="+", help="one or more homes (e.g. 20k, 100k, all papers)")
    parser.add_argument("--subset", type=int, help="write a subset of --data to --out (about this many papers)")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--weights", default="0,0.05,0.1,0.25", help="dense weights tried for hybrid")
    parser.add_argument("--no-markdown", action="store_true")
    args = parser.parse_args(argv)
    if args.subset:
        if not (args.data and args.out):
            parser.error("--subset needs --data and --out")
        print(f"{write_subset(args.data, args.subset, args.out):,} records -> {args.out}", file=sys.stderr)
        return 0
    if args.home is None:
        parser.error("--home is required")

    runs = [evaluate_home(home, args.weights) for home in args.home]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "real_scale.json").write_text(json.dumps(runs, indent=1))
    if not args.no_markdown:
        command = "python bench/real_scale.py " + shlex.join(argv if argv is not None else sys.argv[1:])
        write_section(BENCHMARKS_MD, markdown(runs, command))
    return 0


def markdown(runs: list[dict[str, Any]], command: str) -> str:
    info = machine()
    lines = [SECTION, "", f"`{command}` — {info.get('cpu', '')}, {info.get('cores', '')} cores, load "
             f"{load_average()} (other work on the machine). The hybrid's dense weight is chosen on the tune "
             "splits only (paperwire/index/fusion.py WEIGHT_BY_SIZE); the test columns were not looked at.", ""]
    for results in runs:
        lines += [f"### {results['papers']:,} papers", "",
                  f"The sample captures among real arXiv records; index embedder {results['embedder']} "
                  f"({results['coverage']['vectors']:,} vectors).", ""]
        lines += _set_tables(results)
    return "\n".join(lines)


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
