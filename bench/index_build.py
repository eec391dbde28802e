"""Index build memory and time: one home's index built from its store in a fresh process.

    .venv/bin/python bench/index_build.py HOME [--label NAME] [--out FILE]
    .venv/bin/python bench/index_build.py --report   # the "## Index build memory" section of BENCHMARKS.md

HOME is only read for its store: the index is built into a scratch copy of its directory layout
(HOME's paperwire.sqlite3 is opened read-only in place, the index goes to --work), with the static
embedder, as `paperwire index rebuild` makes it. A sampling thread reads the process's RSS every
0.2 s together with the innermost paperwire function the main thread is in, so the report names the
phase the peak fell in. Peak RSS is the process's own (ru_maxrss); the embedding worker process a
large build starts is reported apart (its own peak and CPU seconds, read every 0.2 s). On a shared
machine the CPU seconds are the steadier figure: wall time follows the other work on the cores.
Prints one JSON object and appends it to --out; --report turns every run in --out into a table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

# Not the bench folder on the path: bench/http.py would shadow the standard library's http in the
# embedding worker this build starts.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import psutil  # noqa: E402


def _phase(frame: Any) -> str:
    """The innermost paperwire function of a stack, as module:function."""
    while frame is not None:
        name = frame.f_code.co_filename
        if "paperwire" in name and "/bench/" not in name:
            module = name.rsplit("paperwire", 1)[1].lstrip("/").removesuffix(".py").replace("/", ".")
            return f"{module}:{frame.f_code.co_name}"
        frame = frame.f_back
    return "-"


class Sampler:
    """RSS of this process (and the peak of its children) with the main thread's phase, every 0.2 s."""

    def __init__(self) -> None:
        self.main = threading.main_thread().ident
        self.by_phase: dict[str, float] = {}
        self.children_peak = 0.0
        self.children_cpu: dict[int, float] = {}  # last reading per child: its CPU seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.2):
            frame = sys._current_frames().get(self.main)
            phase = _phase(frame)
            rss = me.memory_info().rss / 2**20
            self.by_phase[phase] = max(self.by_phase.get(phase, 0.0), rss)
            for child in me.children(recursive=True):
                try:
                    self.children_peak = max(self.children_peak, child.memory_info().rss / 2**20)
                    times = child.cpu_times()
                    self.children_cpu[child.pid] = times.user + times.system
                except psutil.Error:
                    continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def build(home: Path, work: Path) -> dict[str, Any]:
    from paperwire.index import rebuild_index
    from paperwire.store import open_store

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # The store is linked in (never written: the build only reads papers); models are copied.
    for name in ("paperwire.sqlite3",):
        os.symlink((home / name).resolve(), work / name)
    shutil.copytree(home / "models", work / "models")
    store = open_store(work)
    papers = store.count_papers()
    sampler = Sampler()
    wall, cpu = time.perf_counter(), time.process_time()
    rebuild_index(work, store, embedder="static")
    seconds, cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    sampler.stop()
    sizes = {(s.st_dev, s.st_ino): s.st_size for s in (f.stat() for f in (work / "index").rglob("*") if f.is_file())}
    index_mb = sum(sizes.values()) / 2**20  # by inode: spilled files are linked into the index
    store.close()
    top = sorted(sampler.by_phase.items(), key=lambda kv: -kv[1])[:6]
    return {"papers": papers, "build_s": round(seconds, 1), "cpu_s": round(cpu_s, 1),
            "worker_cpu_s": round(sum(sampler.children_cpu.values()), 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "worker_peak_rss_mb": round(sampler.children_peak), "index_mb": round(index_mb),
            "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "peak_by_phase_mb": {k: round(v) for k, v in top}}


SECTION = "## Index build memory"


def report(runs: list[dict[str, Any]], notes: str) -> str:
    """The BENCHMARKS.md section: one row per run, largest corpus first, in the order they ran."""
    lines = [SECTION, "", notes, "",
             "| papers | code | peak RSS MB | phase at the peak | worker peak RSS MB | wall s | CPU s (main + worker) "
             "| index MB | load before / after |",
             "|---:|---|---:|---|---:|---:|---:|---:|---|"]
    for run in sorted(runs, key=lambda r: -r["papers"]):
        # a run recorded elsewhere (bench/search.py) carries no phases and its CPU as one total
        phases = run.get("peak_by_phase_mb")
        phase = f"`{max(phases.items(), key=lambda kv: kv[1])[0]}`" if phases else "–"
        if "worker_cpu_s" in run:
            cpu = f"{run['cpu_s']:,.0f} + {run['worker_cpu_s']:,.0f}"
        elif "cpu_total_s" in run:
            cpu = f"{run['cpu_total_s']:,.0f} in all"
        else:
            cpu = f"{run['cpu_s']:,.0f} + not sampled"
        worker = f"{run['worker_peak_rss_mb']:,}" if "worker_peak_rss_mb" in run else "–"
        lines.append(f"| {run['papers']:,} | {run['label']} | {run['peak_rss_mb']:,} | {phase} | "
                     f"{worker} | {run['build_s']:,.0f} | {cpu} | {run['index_mb']:,} | "
                     f"{run['load_average_before'].split()[0]} / {run['load_average'].split()[0]} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", type=Path, nargs="?")
    parser.add_argument("--report", action="store_true", help="write the BENCHMARKS.md section from --out")
    parser.add_argument("--notes", type=Path, help="with --report: a file whose text goes above the table")
    parser.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / "out" / "index-build-work")
    parser.add_argument("--label", default="")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "index_build.jsonl")
    parser.add_argument("--keep", action="store_true", help="keep the built index under --work")
    args = parser.parse_args(argv)
    if args.report:
        root = Path(__file__).resolve().parent.parent
        sys.path.insert(0, str(root))
        from bench.quality import write_section

        runs = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
        notes = args.notes.read_text().strip() if args.notes else ""
        write_section(root / "BENCHMARKS.md", report(runs, notes))
        return 0
    if args.home is None:
        parser.error("HOME is required (or --report)")
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    result = {"label": args.label, "home": args.home.name, "load_average_before": load_before,
              **build(args.home, args.work)}
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    print(json.dumps(result), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as fh:
        fh.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
