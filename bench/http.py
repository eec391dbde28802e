"""HTTP load on loopback: a search and feed mix against `paperwire serve` over a synthetic corpus.

    python bench/http.py [--papers 100000] [--concurrency 16] [--requests 6000] [--seconds 60]
                         [--ingest 50000] [--workers 1]

1. Builds (once, cached under bench/out/) a home with N synthetic papers (bench/snapshot.py) and its
   search index with the static embedder.
2. Starts `paperwire serve` in its own process on a free 127.0.0.1 port.
3. Phase "steady": C connections send a fixed mix (search API, HTML search, HTML day feed, daily
   papers API, paper pages) until R requests or S seconds, whichever comes first.
4. Phase "ingest": the same load while `paperwire ingest` adds M more papers to the same home in
   another process; every request must still succeed.
Reports requests/s, latency percentiles and errors per phase, as JSON and as Markdown for BENCHMARKS.md.
Nothing leaves the machine: every request goes to 127.0.0.1.
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

import httpx  # noqa: E402

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
from snapshot import write_snapshot  # noqa: E402

SEARCH_WORDS = ("neural network attention transformer diffusion graph reinforcement learning language model "
                "robust sparse optimization contrastive representation generative federated adversarial "
                "kernel bayesian inference vision segmentation retrieval distillation collapse").split()


def env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PAPERWIRE_EMBEDDER": "static"}


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


def start_server(home: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    log = open(OUT / "http-server.log", "wb")
    command = [sys.executable, "-m", "paperwire.cli", "--home", str(home), "serve", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    proc = subprocess.Popen(command, env=env(), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited; see {OUT / 'http-server.log'}")
            try:
                # ready when the index has loaded: a search answers 200, not 503
                if client.get("/api/papers/search", params={"q": "neural network", "limit": 1}).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("the server did not become ready in 10 minutes")


def request_mix(days: list[str], ids: list[str], rng: random.Random) -> str:
    roll = rng.random()
    words = " ".join(rng.sample(SEARCH_WORDS, rng.randint(1, 3)))
    if roll < 0.50:
        return f"/api/papers/search?q={words.replace(' ', '+')}&limit=10"
    if roll < 0.60:
        return f"/search?q={words.replace(' ', '+')}"
    if roll < 0.80:
        return f"/papers/date/{rng.choice(days)}"
    if roll < 0.90:
        return f"/api/daily_papers?date={rng.choice(days)}&limit=20"
    return f"/papers/{rng.choice(ids)}"


async def load(base: str, days: list[str], ids: list[str], *, concurrency: int, max_requests: int,
               seconds: float, stop: asyncio.Event | None = None, seed: int = 0) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: list[str] = []
    sent = 0
    rng = random.Random(seed)
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        async def worker() -> None:
            nonlocal sent
            while sent < max_requests and time.perf_counter() < deadline and not (stop and stop.is_set()):
                sent += 1
                path = request_mix(days, ids, rng)
                started = time.perf_counter()
                try:
                    response = await client.get(path)
                    code = str(response.status_code)
                    if response.status_code >= 400:
                        errors.append(f"{code} {path}")
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                    errors.append(f"{code} {path}")
                latencies.append(time.perf_counter() - started)
                statuses[code] = statuses.get(code, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1) if latencies else 0.0

    return {"requests": len(latencies), "seconds": round(elapsed, 1), "rps": round(len(latencies) / elapsed, 1),
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": pct(1.0),
            "errors": len(errors), "statuses": statuses, "first_errors": errors[:5]}


async def with_ingest(home: Path, base: str, days: list[str], ids: list[str], args: argparse.Namespace
                      ) -> dict[str, Any]:
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
    result = await load(base, days, ids, concurrency=args.concurrency, max_requests=10**9,
                        seconds=args.ingest_seconds, stop=stop, seed=1)
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


def markdown(report: dict[str, Any]) -> str:
    lines = [f"{report['papers']:,} papers, {report['concurrency']} connections on loopback, "
             f"{report['workers']} server process(es), {report['cpus']} CPUs; load generator in the same machine.",
             "", "| phase | requests | req/s | p50 ms | p90 ms | p99 ms | errors |", "|---|---|---|---|---|---|---|"]
    for name in ("steady", "ingest"):
        r = report.get(name)
        if r:
            lines.append(f"| {name} | {r['requests']:,} | {r['rps']} | {r['p50_ms']} | {r['p90_ms']} | "
                         f"{r['p99_ms']} | {r['errors']} |")
    if report.get("ingest"):
        ing = report["ingest"]
        lines += ["", f"Ingest alongside: {ing.get('ingest')} in {ing.get('ingest_seconds')} s "
                      f"(exit {ing.get('ingest_exit')}), {ing['errors']} failed requests."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=6000, help="cap on requests in the steady phase")
    parser.add_argument("--seconds", type=float, default=60, help="cap on the steady phase's duration")
    parser.add_argument("--ingest", type=int, default=50_000, help="papers ingested during phase 2 (0: skip)")
    parser.add_argument("--ingest-seconds", type=float, default=600, help="cap on phase 2's duration")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    pristine = build_home(args.papers, args.seed)
    home = OUT / "http-run-home"  # the ingest phase writes: work on a copy, keep the cached home as built
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(pristine, home, ignore=shutil.ignore_patterns("lock"))
    sys.path.insert(0, str(BENCH.parent))
    from paperwire.store import open_store

    store = open_store(home)
    days = [d for d, _ in store.listing_days()]
    ids = [r[0] for r in store.conn.execute("SELECT id FROM papers ORDER BY random() LIMIT 2000")]
    store.close()
    port = free_port()
    server = start_server(home, port, args.workers)
    base = f"http://127.0.0.1:{port}"
    report: dict[str, Any] = {"papers": args.papers, "concurrency": args.concurrency, "workers": args.workers,
                              "cpus": os.cpu_count()}
    try:
        asyncio.run(load(base, days, ids, concurrency=args.concurrency, max_requests=200, seconds=20))  # warm up
        report["steady"] = asyncio.run(load(base, days, ids, concurrency=args.concurrency,
                                            max_requests=args.requests, seconds=args.seconds))
        print(json.dumps(report["steady"]), file=sys.stderr)
        if args.ingest:
            report["ingest"] = asyncio.run(with_ingest(home, base, days, ids, args))
            print(json.dumps(report["ingest"]), file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=30)
    (OUT / "http.json").write_text(json.dumps(report, indent=2))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
