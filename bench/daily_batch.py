"""A weekday's arXiv batch into a home indexed with MiniLM: how long until every new paper is searchable
with its MiniLM vector.

    .venv/bin/python bench/daily_batch.py --home HOME --data arxiv-real-187k.jsonl.gz [--papers 1100]

HOME is copied first (it is not changed). The batch is PAPERS real records of the data file that the home
does not hold (a seeded draw). Timed: `paperwire ingest BATCH` as a user runs it (parse, store, index the
words, embed the new papers, save a generation), from start to exit. Checked afterwards: the saved index
covers the store with every vector, and a semantic search for each of 50 new papers' abstracts finds it.
Writes the "## A weekday's batch" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.quality import load_average, machine, save_results  # noqa: E402
from paperwire.index.engine import _read_manifest, index_dir  # noqa: E402
from paperwire.store import open_store  # noqa: E402

SECTION = "## A weekday's batch"
CHECKED = 50


def new_records(data: Path, known: set[str], papers: int, seed: int = 20261206) -> list[dict[str, Any]]:
    """`papers` records of `data` whose arXiv id the home does not hold, drawn uniformly (reservoir)."""
    rng = random.Random(seed)
    chosen: list[dict[str, Any]] = []
    seen = 0
    with gzip.open(data, "rt", encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            if str(record.get("id", "")) in known:
                continue
            seen += 1
            if len(chosen) < papers:
                chosen.append(record)
            elif (j := rng.randrange(seen)) < papers:
                chosen[j] = record
    return chosen


def held_arxiv_ids(home: Path) -> set[str]:
    store = open_store(home, readonly=True)
    try:
        return {paper.arxiv_id.split("v")[0] for _, paper in store.iter_papers() if paper.arxiv_id}
    finally:
        store.close()


def paperwire(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "paperwire.cli", "--home", str(home), *args],
                          capture_output=True, text=True, env={**os.environ, "PAPERWIRE_HOME": str(home)})


def found_by_abstract(home: Path, records: list[dict[str, Any]]) -> int:
    """How many of `records` a semantic search for their own abstract ranks in the top 10."""
    wanted = {r["id"] for r in records}
    store = open_store(home, readonly=True)
    try:
        stored = {p.arxiv_id.split("v")[0]: p.id for _, p in store.iter_papers()
                  if p.arxiv_id and p.arxiv_id.split("v")[0] in wanted}
    finally:
        store.close()
    found = 0
    for record in records:
        answer = paperwire(home, "search", record["abstract"][:300], "--mode", "semantic", "--limit", "10",
                           "--json")
        hits = json.loads(answer.stdout) if answer.returncode == 0 else []
        found += stored.get(record["id"]) in {hit["id"] for hit in hits}
    return found


def run(home: Path, data: Path, papers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="paperwire-batch-") as tmp:
        copy = Path(tmp) / "home"
        shutil.copytree(home, copy, ignore=shutil.ignore_patterns("lock"))
        before = _read_manifest(index_dir(copy)) or {}
        records = new_records(data, held_arxiv_ids(copy), papers)
        batch = Path(tmp) / "batch.jsonl.gz"
        with gzip.open(batch, "wt", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in records)
        load_before = load_average()
        started = time.perf_counter()
        ingested = paperwire(copy, "ingest", str(batch), "--json")
        seconds = time.perf_counter() - started
        if ingested.returncode != 0:
            raise SystemExit(f"ingest failed: {ingested.stderr.strip()[-500:]}")
        after = _read_manifest(index_dir(copy)) or {}
        store = open_store(copy, readonly=True)
        try:
            store_rev, total = store.max_rev(), store.count_papers()
        finally:
            store.close()
        checked = random.Random(7).sample(records, min(CHECKED, len(records)))
        return {"home_papers": int(before.get("papers", 0)), "papers": len(records), "total": total,
                "embedder": after.get("embedder"), "seconds": seconds, "per_s": len(records) / seconds,
                "index_covers_store": int(after.get("rev", -1)) == store_rev,
                "every_vector": int(after.get("dense_rev", -1)) == int(after.get("rev", -2))
                and int(after.get("vectors", 0)) == total,
                "manifest": {k: after.get(k) for k in ("rev", "dense_rev", "papers", "vectors")},
                "store_rev": store_rev,
                "checked": len(checked), "found": found_by_abstract(copy, checked),
                "ingest": json.loads(ingested.stdout), "load_before": load_before, "load_after": load_average()}


def markdown(result: dict[str, Any], command: str) -> str:
    r, info = result, machine()
    return "\n".join([
        SECTION, "",
        f"`{command}` — {info['cpu']}, {info['cores']} cores; load average {r['load_before']} before, "
        f"{r['load_after']} after (other work on the machine).", "",
        "| home | new papers | embedder | ingest to searchable with vectors | papers/s | index covers the store, "
        "every vector | found by their abstract (semantic, top 10) |",
        "|---:|---:|---|---:|---:|---|---:|",
        f"| {r['home_papers']:,} | {r['papers']:,} | {r['embedder']} | {r['seconds']:.0f} s | {r['per_s']:.1f} | "
        f"{'yes' if r['index_covers_store'] and r['every_vector'] else 'NO'} | {r['found']} of {r['checked']} |",
        "", "Target: under 2 minutes for about 1,100 papers on 2 cores.", ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--papers", type=int, default=1100)
    parser.add_argument("--no-markdown", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.home, args.data, args.papers)
    print(json.dumps(result, indent=1))
    save_results(__file__, result, argv, None if args.no_markdown else markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
