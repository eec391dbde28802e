"""MiniLM vectors through a Ray cluster (`paperwire index embed --ray`) against the local path, on real abstracts.

    .venv/bin/python bench/embed_ray.py [--texts 512] [--data arxiv-real-187k.jsonl.gz] [--cpus 2]
                                        [--address HOST:PORT] [--no-markdown]

Starts a Ray head on loopback ports with --cpus CPUs (or uses the cluster at --address), then embeds the
same texts twice: here, as `index embed` does without --ray (sentence-transformers, batches of 8, every
core), and on the cluster through paperwire.index.embed_ray.RayEncoder (Ray Data map_batches over one
actor per CPU), in checkpoints of 64 texts. Reported: papers/s end to end (actor start and model load
included), papers/s once the first checkpoint is back (the actors are loaded), both per CPU of the cluster,
and the cosine of the cluster's vectors with the local ones.
Writes bench/out/embed_ray.json and the "## MiniLM throughput on a Ray cluster" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.embed_throughput import real_texts, torch_encoder  # noqa: E402
from bench.embedders import seed_texts  # noqa: E402
from bench.quality import load_average, machine, save_results  # noqa: E402
from bench.ray_head import local_head  # noqa: E402
from paperwire.index.embed import MINILM_BATCH  # noqa: E402
from paperwire.index.embed_ray import RayEncoder  # noqa: E402
from paperwire.sources.parallel import available_cores  # noqa: E402

SECTION = "## MiniLM throughput on a Ray cluster"
CHECKPOINT = 64


def on_cluster(address: str, texts: list[str]) -> dict[str, Any]:
    started = time.perf_counter()
    encoder = RayEncoder(address)
    connected = time.perf_counter()
    checkpoints = [texts[i:i + CHECKPOINT] for i in range(0, len(texts), CHECKPOINT)]
    parts: list[np.ndarray] = []
    first = 0.0
    try:
        for vectors in encoder.stream(iter(checkpoints)):
            parts.append(np.array(vectors))
            if len(parts) == 1:
                first = time.perf_counter()
        cpus = encoder.ray.cluster_resources().get("CPU", 0)
        actors = encoder.actors
    finally:
        encoder.close()
    done = time.perf_counter()
    return {"vectors": np.concatenate(parts), "cpus": cpus, "actors": actors, "connect_s": connected - started,
            "seconds": done - connected, "steady_seconds": done - first,
            "steady_texts": len(texts) - len(checkpoints[0]), "cpu_seconds": encoder.cpu_seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--data", type=Path, help="a JSON-lines(.gz) arXiv dump to draw texts from")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray head")
    parser.add_argument("--address", help="an existing Ray cluster's HOST:PORT instead of a local head")
    parser.add_argument("--no-markdown", action="store_true")
    args = parser.parse_args(argv)
    texts = real_texts(args.data, args.texts) if args.data else (seed_texts() * 4)[:args.texts]
    cores = available_cores()

    encode = torch_encoder(cores, batch=MINILM_BATCH)
    encode(texts[:16])  # warm-up
    started, cpu_started = time.perf_counter(), time.process_time()
    local = encode(texts)
    local_seconds, local_cpu = time.perf_counter() - started, time.process_time() - cpu_started

    if args.address:
        ray_run = on_cluster(args.address, texts)
    else:
        with local_head(args.cpus) as address:
            ray_run = on_cluster(address, texts)
    vectors = ray_run.pop("vectors")
    cosines = (vectors * local).sum(1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(local, axis=1)
    cpus = ray_run["cpus"] or args.cpus
    results = {
        "texts": len(texts), "source": args.data.name if args.data else "sample captures", "cores": cores,
        "load": load_average(), "local": {"seconds": local_seconds, "per_s": len(texts) / local_seconds,
                                          "per_s_per_core": len(texts) / local_seconds / cores,
                                          "cpu_seconds": local_cpu, "per_cpu_s": len(texts) / local_cpu},
        "ray": {**ray_run, "per_s": len(texts) / ray_run["seconds"],
                "per_s_per_cpu": len(texts) / ray_run["seconds"] / cpus,
                "steady_per_s": ray_run["steady_texts"] / ray_run["steady_seconds"],
                "steady_per_s_per_cpu": ray_run["steady_texts"] / ray_run["steady_seconds"] / cpus,
                "per_cpu_s": len(texts) / ray_run["cpu_seconds"]},
        "cos_min": float(cosines.min()), "cos_mean": float(cosines.mean()),
    }
    print(json.dumps(results, indent=1))
    save_results(__file__, results, argv, None if args.no_markdown else markdown)
    return 0


def markdown(results: dict[str, Any], command: str) -> str:
    info = machine()
    local, ray = results["local"], results["ray"]
    cpus = ray["cpus"]
    return "\n".join([
        SECTION, "",
        f"`{command}` — {results['texts']:,} titles + abstracts ({results['source']}); {info.get('cpu', '')}, "
        f"{results['cores']} cores, load {results['load']} (other work on the machine). The cluster: a Ray head on "
        f"this machine with {cpus:g} CPUs, {ray['actors']} actors of 1 CPU each (`index embed --ray`'s default), "
        f"checkpoints of {CHECKPOINT} texts. \"Loaded\": from the first checkpoint back to the last (actors up, "
        "model loaded); \"end to end\" includes starting the actors and loading MiniLM in each. Cosine: the "
        "cluster's vectors against the local path's, min / mean. Per CPU-second: papers per second of CPU time "
        "spent in the embedding calls (the actors' own count on the cluster, model loading aside; this process's "
        "here). Wall-clock rates depend on the other work on the machine, and a process of 2 threads suffers "
        "more from it than actors of 1 thread each (its threads wait for each other): compare per CPU-second "
        "too, with the section above as well.", "",
        "| path | papers/s | per core | per CPU-second | seconds | cosine to local |",
        "|---|---:|---:|---:|---:|---|",
        f"| local (`index embed`), torch, {results['cores']} threads, batch {MINILM_BATCH} | {local['per_s']:.1f} | "
        f"{local['per_s_per_core']:.1f} | {local['per_cpu_s']:.1f} | {local['seconds']:.1f} | reference |",
        f"| Ray (`index embed --ray`), loaded | {ray['steady_per_s']:.1f} | {ray['steady_per_s_per_cpu']:.1f} | "
        f"{ray['per_cpu_s']:.1f} | {ray['steady_seconds']:.1f} | "
        f"{results['cos_min']:.5f} / {results['cos_mean']:.5f} |",
        f"| Ray (`index embed --ray`), end to end | {ray['per_s']:.1f} | {ray['per_s_per_cpu']:.1f} | | "
        f"{ray['seconds']:.1f} | same vectors |",
    ]) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
