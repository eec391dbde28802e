"""Speed of the two embedders on the sample corpus: MiniLM (sentence-transformers) and the distilled static model.

    python bench/embedders.py [--markdown BENCHMARKS.md]

Reports wall-clock and CPU-time throughput (CPU time is the better guide on a shared machine), model load
time, and the one-off distillation time recorded when the static model was built.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.quality import machine, write_section  # noqa: E402
from paperwire.cli import seed_paths  # noqa: E402
from paperwire.index.embed import load_embedder, static_model_directory, text_for_embedding  # noqa: E402
from paperwire.model import Paper  # noqa: E402
from paperwire.sources import read_source  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def seed_texts() -> list[str]:
    papers: dict[str, Paper] = {}
    for path in seed_paths():
        for item in read_source(path, "hf-page"):
            if isinstance(item, Paper):
                papers.setdefault(item.id, item)
    return [text_for_embedding(p) for p in papers.values()]


def measure(kind: str, home: Path, texts: list[str], repeat: int) -> dict[str, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    embedder = load_embedder(kind, home)
    load = {"load_s": time.perf_counter() - wall, "load_cpu_s": time.process_time() - cpu}
    embedder.encode(texts[:16])  # warm-up
    batch = texts * repeat
    wall, cpu = time.perf_counter(), time.process_time()
    embedder.encode(batch)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"embedder": embedder.name, "dim": embedder.dim, "texts": len(batch), **load,
            "per_s": len(batch) / wall, "per_cpu_s": len(batch) / cpu}


def markdown(rows: list[dict[str, Any]], distil: dict[str, Any] | None, command: str) -> str:
    info = machine()
    lines = ["## Embedders", "",
             "Title + abstract of the 407 sample papers (the static model: the same texts repeated). "
             "Per CPU-second counts all threads' CPU time, so it is the throughput of one busy core.", "",
             f"Command: `{command}`  ",
             f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB RAM, Python {info['python']}", "",
             "| embedder | dim | texts | load s | texts/s (wall) | texts per CPU-second |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['embedder']} | {r['dim']} | {r['texts']} | {r['load_s']:.1f} | {r['per_s']:,.0f} | "
                     f"{r['per_cpu_s']:,.0f} |")
    if distil:
        lines += ["", f"Distilling the static model from MiniLM (once per home, offline): "
                      f"{distil['distil_seconds']:.0f} s wall."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=OUT / "dense-home")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    texts = seed_texts()
    rows = [measure("minilm", args.home, texts, 1), measure("static", args.home, texts, 20)]
    record = static_model_directory(args.home) / "paperwire.json"
    distil = json.loads(record.read_text()) if record.is_file() else None
    for row in rows:
        print(json.dumps(row))
    if distil:
        print(json.dumps(distil))
    if args.markdown:
        write_section(args.markdown, markdown(rows, distil, "python bench/embedders.py " + " ".join(
            sys.argv[1:] if argv is None else argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
