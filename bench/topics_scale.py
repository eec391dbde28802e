"""Topics and the map at scale: clustering and layout time and peak RSS, the map's payload, and the time
to the map's first interactive frame in Chromium.

On a copy of a home with a complete index (e.g. 187k real arXiv papers with static vectors):
  1. `build_topics` in its own process: seconds and peak RSS (choosing k, clustering, labels).
  2. `build_map` in its own process: seconds and peak RSS (openTSNE on the landmarks, placement of the rest).
  3. The real server on the home: size of /api/map/points.bin (raw and gzip), and in headless Chromium
     the time from asking for /map to the first drawn frame with its handlers attached (the page's
     `data-ready`, ms since navigation start), median of several loads.

    python bench/topics_scale.py --home COPY_OF_HOME [--markdown BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.quality import machine, write_section  # noqa: E402

LOADS = 5


def stage(name: str, home: Path) -> None:
    """Run one stage in this process and print its measurements."""
    from paperwire.store import open_store

    started = time.perf_counter()
    if name == "topics":
        from paperwire.rank.topics import build_topics

        store = open_store(home)
        model = build_topics(home, store)
        store.close()
        extra = {"topics": len(model.topics), "papers": len(model.ids), "k_measure": model.measure}
    else:
        from paperwire.rank.layout import build_map

        layout = build_map(home)
        extra = {"papers": len(layout.ids), "method": layout.method}
    print(json.dumps({"seconds": time.perf_counter() - started,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **extra}))


def run_stage(name: str, home: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--stage", name, "--home", str(home)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def browser_numbers(home: Path) -> dict[str, Any]:
    import httpx
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from conftest import CHROMIUM, CHROMIUM_ARGS
    from web_server import serve

    with serve(home, {"PAPERWIRE_TOPICS_AUTO": "0"}) as base:
        meta = httpx.get(f"{base}/api/map/meta", timeout=120).json()
        started = time.perf_counter()
        payload = httpx.get(f"{base}/api/map/points.bin", params={"v": meta["version"]}, timeout=120).content
        first_payload_s = time.perf_counter() - started
        ready: list[float] = []
        loaded: list[float] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for _ in range(LOADS):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(f"{base}/map")
                page.wait_for_selector("#map[data-ready]", state="attached", timeout=120_000)
                ready.append(float(page.get_attribute("#map", "data-ready") or "nan"))
                loaded.append(float(page.get_attribute("#map", "data-loaded") or "nan"))
                page.close()
            browser.close()
    return {"points": meta["points"], "payload_bytes": len(payload), "payload_gzip_bytes": len(gzip.compress(payload)),
            "payload_first_s": first_payload_s, "ready_ms": statistics.median(ready),
            "ready_ms_all": ready, "script_ms": statistics.median(loaded)}


def markdown(topics: dict[str, Any], layout: dict[str, Any], web: dict[str, Any], home: Path) -> str:
    info = machine()
    measure = topics["k_measure"]
    lines = [
        "## Topics and the map at scale", "",
        f"{topics['papers']:,} real arXiv papers (a copy of a home indexed with static vectors). Each build runs in "
        "its own process; peak RSS is that process's. The map page is loaded in headless Chromium (software "
        f"WebGL) {LOADS} times; ready = from asking for /map to the first drawn frame with hover and click "
        "attached (the page's `data-ready`), median.", "",
        "Command: `python bench/topics_scale.py --home COPY_OF_HOME --markdown BENCHMARKS.md`  ",
        f"Machine: {info['cpu']}, {info['cores']} cores shared with other work (load average "
        f"{info['load_average']}), {info['ram_gb']} GB RAM, Python {info['python']}", "",
        "| step | seconds | peak RSS MB | result |", "|---|---:|---:|---|",
        f"| topics (choose k, cluster, label) | {topics['seconds']:.0f} | {topics['peak_rss_mb']:.0f} | "
        f"{topics['topics']} topics |",
        f"| map layout ({layout['method']}, landmarks + placement) | {layout['seconds']:.0f} | "
        f"{layout['peak_rss_mb']:.0f} | {layout['papers']:,} points |", "",
        "| map in the browser | value |", "|---|---:|",
        f"| points | {web['points']:,} |",
        f"| payload (points.bin) | {web['payload_bytes'] / 1e6:.2f} MB ({web['payload_bytes'] / web['points']:.0f} "
        f"bytes a paper; {web['payload_gzip_bytes'] / 1e6:.2f} MB gzipped) |",
        f"| first payload request (composes the points) | {web['payload_first_s'] * 1000:.0f} ms |",
        f"| first interactive frame, median | {web['ready_ms']:.0f} ms |",
        f"| of which the page's script (fetch, decode, draw) | {web['script_ms']:.0f} ms |", "",
        "Number of topics, by the knee of held-out cohesion (mean cosine to the nearest centroid) against log k; "
        "silhouette alongside, which falls with every k here:", "",
        "| k | " + " | ".join(measure["cohesion"]) + " |",
        "|---|" + "---:|" * len(measure["cohesion"]),
        "| cohesion | " + " | ".join(f"{v:.4f}" for v in measure["cohesion"].values()) + " |",
        "| silhouette | " + " | ".join(f"{v:.4f}" for v in measure["silhouette"].values()) + " |", "",
        f"Chosen: k = {measure['k']}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--stage", choices=["topics", "map"], help=argparse.SUPPRESS)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.stage:
        stage(args.stage, args.home)
        return 0
    topics = run_stage("topics", args.home)
    print(json.dumps(topics), flush=True)
    layout = run_stage("map", args.home)
    print(json.dumps(layout), flush=True)
    web = browser_numbers(args.home)
    print(json.dumps(web), flush=True)
    if args.markdown:
        write_section(args.markdown, markdown(topics, layout, web, args.home))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
