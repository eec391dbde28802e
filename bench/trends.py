"""Trend latency: papers matching a query per month or week, at 187k real papers and at 1M.

    .venv/bin/python bench/trends.py --home HOME [--million] [--http] [--markdown BENCHMARKS.md]

HOME holds the 187k real arXiv papers (../shared/data/arxiv-real-187k.jsonl.gz ingested, index built);
it is only read. Three measurements, one thread each apart from the HTTP load:

1. In process at 187k: the home's lexical index loaded as a server loads it (memory-mapped), then
   paperwire.index.trends.compute_trends over a seeded set of queries drawn from real titles, by kind:
   one word, two or three words, a quoted phrase, words with cat: and an exclusion, three queries
   side by side, and by week over the last six months. Nothing is cached between queries.
2. With --million, the same at 1,000,000 papers: the real papers repeated with their days moved back
   two years per copy (real term statistics over 12 years), indexed once into bench/out/trends-1m/
   and reused by later runs.
3. With --http: `paperwire serve` on a copy of HOME (bench/out/trends-http-home), 16 connections on
   loopback asking /api/trends, first with every URL new (nothing answered from the cache), then a
   small repeated set (as a chart's queries repeat while people page through results).

Writes bench/out/trends.json and the "## Trends" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import psutil  # noqa: E402

from bench.quality import load_average, machine, write_section  # noqa: E402

OUT = BENCH / "out"
DATA = BENCH.parent.parent / "shared" / "data" / "arxiv-real-187k.jsonl.gz"
SECTION = "## Trends"
MILLION = 1_000_000
SHIFT_YEARS = 2  # each copy of the real papers is moved back this many years
KINDS = ("word", "words", "phrase", "filtered", "three", "week")
_WORD = re.compile(r"[A-Za-z][a-z]{3,}")
COMMON = {"with", "from", "into", "that", "this", "their", "using", "based", "towards", "via", "through", "when",
          "what", "which", "beyond", "under", "over", "more", "less", "than", "between", "without", "does"}


def real_papers(path: Path) -> list[Any]:
    from paperwire.model import Paper
    from paperwire.sources import read_source

    return [p for p in read_source(path, workers=1) if isinstance(p, Paper)]


def draw_queries(papers: list[Any], per_kind: int, seed: int) -> list[tuple[str, list[str], dict[str, Any]]]:
    """(kind, queries, options) drawn from real titles: what people type when they ask how a topic grows."""
    from paperwire.index.query import tokenize

    rng = random.Random(seed)
    out: list[tuple[str, list[str], dict[str, Any]]] = []

    def title_words() -> tuple[list[str], Any]:
        while True:
            paper = rng.choice(papers)
            found = [w.lower() for w in _WORD.findall(paper.title) if w.lower() not in COMMON and tokenize(w)]
            if len(found) >= 3:
                return found, paper

    latest = max((p.published or p.listed_on or "")[:10] for p in papers)
    half_year = date.fromisoformat(latest) - timedelta(days=182)
    for kind in KINDS:
        for _ in range(per_kind):
            found, paper = title_words()
            if kind == "word":
                out.append((kind, [rng.choice(found)], {}))
            elif kind == "words":
                out.append((kind, [" ".join(rng.sample(found, rng.randint(2, 3)))], {}))
            elif kind == "phrase":
                words = [w.lower() for w in re.findall(r"[A-Za-z]+", paper.title)]
                pairs = [i for i in range(len(words) - 1) if tokenize(f"{words[i]} {words[i + 1]}", stem=False)]
                if not pairs:
                    continue
                i = rng.choice(pairs)
                out.append((kind, [f'"{words[i]} {words[i + 1]}"'], {}))
            elif kind == "filtered":
                other, _ = title_words()
                out.append((kind, [f"{rng.choice(found)} cat:{paper.categories[0]} -{rng.choice(other)}"], {}))
            elif kind == "three":
                out.append((kind, [rng.choice(title_words()[0]) for _ in range(3)], {}))
            else:
                out.append((kind, [rng.choice(found)], {"by": "week", "date_from": half_year.isoformat()}))
    return out


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(p: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

    return {"n": len(ordered), "p50_ms": at(0.5), "p95_ms": at(0.95), "p99_ms": at(0.99), "max_ms": at(1.0),
            "mean_ms": round(1000 * sum(ordered) / len(ordered), 2)}


def measure_in_process(lexical: Any, queries: list[tuple[str, list[str], dict[str, Any]]]) -> dict[str, Any]:
    from paperwire.index.trends import compute_trends

    for _, texts, options in queries[::7]:  # warm the memory-mapped arrays, as a serving process is
        compute_trends(lexical, texts, **options)
    times: dict[str, list[float]] = {}
    periods: dict[str, int] = {}
    gc.collect()
    for kind, texts, options in queries:
        started = time.perf_counter()
        found = compute_trends(lexical, texts, **options)
        times.setdefault(kind, []).append(time.perf_counter() - started)
        periods[kind] = len(found.periods)
    every = [t for values in times.values() for t in values]
    return {"all": percentiles(every),
            "by_kind": {kind: {**percentiles(values), "periods": periods[kind]} for kind, values in times.items()},
            "papers": len(lexical), "rss_mb": round(psutil.Process().memory_info().rss / 2**20)}


def lexical_of(home: Path) -> Any:
    from paperwire.index.lexical import LexicalIndex

    manifest = json.loads((home / "index" / "manifest.json").read_text())
    return LexicalIndex.load(home / "index" / manifest["generation_dir"] / "lexical")


def shifted(paper: Any, copy: int) -> Any:
    """The paper as copy `copy`: its own id, its days moved back SHIFT_YEARS years per copy."""
    from dataclasses import replace

    def back(day: str | None) -> str | None:
        if not day:
            return day
        year = int(day[:4]) - SHIFT_YEARS * copy
        rest = day[4:10] if day[4:10] != "-02-29" else "-02-28"
        return f"{year:04d}{rest}"

    return replace(paper, id=f"{paper.id}-c{copy}", published=back(paper.published), listed_on=back(paper.listed_on))


def million_index(papers: list[Any], directory: Path) -> tuple[Any, dict[str, Any]]:
    """The 1M lexical index: built once (copies of the real papers), then loaded from its saved files."""
    from paperwire.index.lexical import LexicalIndex

    if (directory / "header.json").exists():
        return LexicalIndex.load(directory), json.loads((directory.parent / "build.json").read_text())
    index = LexicalIndex()
    started, cpu = time.perf_counter(), time.process_time()
    batch: list[Any] = []
    count = 0
    with index.bulk():
        for copy in range(MILLION // len(papers) + 1):
            for paper in papers:
                if count == MILLION:
                    break
                batch.append(shifted(paper, copy) if copy else paper)
                count += 1
                if len(batch) == 5000:
                    index.add(batch)
                    batch = []
                    if count % 100_000 == 0:
                        print(f"  {count:,} papers indexed in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        index.add(batch)
    build = {"papers": len(index), "build_s": round(time.perf_counter() - started, 1),
             "build_cpu_s": round(time.process_time() - cpu, 1),
             "build_peak_rss_mb": round(psutil.Process().memory_info().rss / 2**20)}
    index.save(directory)
    (directory.parent / "build.json").write_text(json.dumps(build))
    del index
    gc.collect()
    return LexicalIndex.load(directory), build


def measure_http(home: Path, queries: list[tuple[str, list[str], dict[str, Any]]], *, concurrency: int,
                 seconds: float, workers: int, rate: float) -> dict[str, Any]:
    """/api/trends under load on a copy of the home: every URL new, then a repeated few."""
    from urllib.parse import urlencode

    import bench.http as load_bench

    copy = OUT / "trends-http-home"
    if not (copy / "ready").exists():
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(home, copy, ignore=shutil.ignore_patterns("lock"))
        (copy / "ready").write_text("ok\n")
    port = load_bench.free_port()
    server = load_bench.start_server(copy, port, workers)
    base = f"http://127.0.0.1:{port}"

    def url(texts: list[str], options: dict[str, Any], salt: int = 0) -> str:
        # once every drawn query has been asked, a trailing stopword per round makes the URL and the
        # cache key new while the counting stays the same
        params: list[tuple[str, str]] = [("q", t + " the" * salt) for t in texts]
        if "by" in options:
            params.append(("by", options["by"]))
        if options.get("date_from"):
            params.append(("from", options["date_from"]))
        return "/api/trends?" + urlencode(params)

    def fresh() -> Callable[[], tuple[str, str]]:
        counter = iter(range(10**9))

        def next_path() -> tuple[str, str]:
            i = next(counter)
            kind, texts, options = queries[i % len(queries)]
            return kind, url(texts, options, salt=i // len(queries))
        return next_path

    repeated = [url(texts, options) for _, texts, options in queries[:: max(1, len(queries) // 12)]]
    rng = random.Random(5)
    report: dict[str, Any] = {}
    try:
        run = {"concurrency": concurrency, "server_pid": server.pid}
        load_bench.run_loop(load_bench.load(base, lambda: ("warm", rng.choice(repeated)), max_requests=200,
                                            seconds=30, **run))
        new_urls = fresh()
        report["uncached"] = load_bench.run_loop(load_bench.load(base, new_urls, max_requests=10**9,
                                                                 seconds=seconds, **run))
        if rate:  # the latency a steady offered load sees (waiting for a free connection included)
            report["paced_rate"] = rate
            report["uncached_paced"] = load_bench.run_loop(load_bench.load(
                base, new_urls, max_requests=int(rate * seconds), seconds=seconds + 5, rate=rate, **run))
        report["repeated"] = load_bench.run_loop(load_bench.load(
            base, lambda: ("repeated", rng.choice(repeated)), max_requests=10**9, seconds=seconds, **run))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return report


def markdown(report: dict[str, Any], command: str) -> str:
    info = report["machine"]
    lines = [SECTION, "",
             f"`{command}` — {info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB RAM, Python {info['python']}; "
             f"load average {report['load_before']} before, {report['load_after']} after (a shared machine).", "",
             "Counts come from the lexical index's masks (LexicalIndex.count_by_days): no paper is read. "
             f"Queries drawn from real titles ({report['per_kind']} per kind, seed {report['seed']}); "
             "one thread, warm memory-mapped index, nothing cached between queries. Milliseconds.", ""]
    for name, title in (("in_process_187k", "187k real papers"), ("in_process_1m", "1M papers")):
        result = report.get(name)
        if not result:
            continue
        lines += [f"### {title} ({result['papers']:,} indexed, process RSS {result['rss_mb']:,} MB)", "",
                  "| query kind | periods | p50 | p95 | p99 | max |", "|---|---:|---:|---:|---:|---:|"]
        for kind, row in result["by_kind"].items():
            lines.append(f"| {kind} | {row['periods']} | {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | "
                         f"{row['max_ms']} |")
        row = result["all"]
        lines += [f"| **all** | | {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | {row['max_ms']} |", ""]
    build = report.get("million_build")
    if build:
        lines += [f"The 1M index: the real papers repeated with their days moved back {SHIFT_YEARS} years per copy, "
                  f"built once in {build['build_s']:,} s ({build['build_cpu_s']:,} s CPU, peak RSS "
                  f"{build['build_peak_rss_mb']:,} MB) and loaded from disk for the run.", ""]
    http = report.get("http")
    if http:
        lines += [f"### HTTP at 187k: GET /api/trends, {report['concurrency']} connections on loopback, "
                  f"`serve --workers {report['workers']}`", "",
                  "| phase | requests | req/s | p50 | p90 | p99 | max | errors |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for phase, label in (("uncached", "every URL new (counted each time), as fast as answered"),
                             ("uncached_paced", f"every URL new, {http.get('paced_rate')} req/s offered"),
                             ("repeated", "a dozen repeated URLs (cached answers)")):
            row = http.get(phase)
            if not row:
                continue
            lines.append(f"| {label} | {row['requests']:,} | {row['rps']} | {row['p50_ms']} | {row['p90_ms']} | "
                         f"{row['p99_ms']} | {row['max_ms']} | {row['errors']} |")
        lines.append("")
    lines += targets(report), ""
    return "\n".join(lines)


def targets(report: dict[str, Any]) -> str:
    """The numbers against DESIGN.md's HTTP targets (p99 <= 100 ms and >= 300 req/s with 16 connections)."""
    parts = []
    http = report.get("http")
    if http:
        row = http["uncached"]
        parts.append(f"uncached trends over HTTP at 187k: {row['rps']} req/s "
                     f"({'at or above' if row['rps'] >= 300 else 'below'} the 300 req/s search target) with p99 "
                     f"{row['p99_ms']} ms at saturation ({'within' if row['p99_ms'] <= 100 else 'over'} 100 ms)")
        paced = http.get("uncached_paced")
        if paced:
            parts.append(f"at {http['paced_rate']} req/s offered p99 {paced['p99_ms']} ms "
                         f"({'within' if paced['p99_ms'] <= 100 else 'over'} 100 ms)")
        row = http["repeated"]
        parts.append(f"repeated (cached) trends {row['rps']} req/s, p99 {row['p99_ms']} ms")
    for name, label in (("in_process_187k", "187k"), ("in_process_1m", "1M")):
        if report.get(name):
            row = report[name]["all"]
            parts.append(f"one trend in process at {label}: p99 {row['p99_ms']} ms")
    return "Against DESIGN.md's HTTP targets: " + "; ".join(parts) + "."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a home with the 187k real papers indexed (read)")
    parser.add_argument("--data", type=Path, default=DATA, help="the real papers (for query words and the 1M copies)")
    parser.add_argument("--per-kind", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--million", action="store_true", help="also at 1M papers (built once under bench/out)")
    parser.add_argument("--http", action="store_true", help="also /api/trends under load at 187k")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2, help="server processes for --http")
    parser.add_argument("--rate", type=float, default=100, help="req/s offered in the paced phase (0: skip it)")
    parser.add_argument("--markdown", type=Path, default=BENCH.parent / "BENCHMARKS.md")
    parser.add_argument("--no-markdown", action="store_true")
    args = parser.parse_args(argv)
    command = "python bench/trends.py " + " ".join(argv if argv is not None else sys.argv[1:])
    command = command.replace(str(args.home), "HOME").replace(f" --data {args.data}", " --data DATA")
    OUT.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"machine": machine(), "load_before": load_average(), "per_kind": args.per_kind,
                              "seed": args.seed, "concurrency": args.concurrency, "workers": args.workers}
    print("reading the real papers", file=sys.stderr)
    papers = real_papers(args.data)
    if not papers:
        raise SystemExit(f"no papers read from {args.data} (pass --data)")
    queries = draw_queries(papers, args.per_kind, args.seed)
    # for HTTP: distinct queries with the kinds interleaved, as a server sees them (drawn kind by kind, a
    # run of hundreds of phrases in a row would measure a phrase-only load)
    many = list({json.dumps(q): q for q in draw_queries(papers, 500, args.seed + 1)}.values())
    random.Random(args.seed).shuffle(many)
    report["in_process_187k"] = measure_in_process(lexical_of(args.home), queries)
    print("187k", json.dumps(report["in_process_187k"]["all"]), file=sys.stderr)
    if args.million:
        lexical, report["million_build"] = million_index(papers, OUT / "trends-1m" / "lexical")
        report["in_process_1m"] = measure_in_process(lexical, queries)
        print("1M", json.dumps(report["in_process_1m"]["all"]), file=sys.stderr)
        del lexical
    del papers
    gc.collect()
    if args.http:
        report["http"] = measure_http(args.home, many, concurrency=args.concurrency, seconds=args.seconds,
                                      workers=args.workers, rate=args.rate)
        print("http", json.dumps(report["http"]["uncached"]), file=sys.stderr)
    report["load_after"] = load_average()
    (OUT / "trends.json").write_text(json.dumps(report, indent=2))
    section = markdown(report, command)
    print(section)
    if not args.no_markdown:
        write_section(args.markdown, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
