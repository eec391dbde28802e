"""Ways to compute MiniLM vectors for abstracts on the CPU, and how close each stays to the reference.

    .venv/bin/python bench/embed_throughput.py [--texts 1024] [--data arxiv-real-187k.jsonl.gz] [--no-markdown]

The texts are title + abstract of real arXiv records drawn with a fixed seed (the sample captures when no
data file is given). The reference is sentence-transformers on torch, batches of 64, every core, 256 word
pieces. Each variant computes the same texts in the same process; reported: papers/s (wall), papers per
CPU-second, papers/s per core, and the cosine of its vectors with the reference (mean, 1st percentile,
share >= 0.99). A variant is acceptable only when 99% of its vectors are within cosine 0.99.
Writes bench/out/embed_throughput.json and the "## MiniLM throughput" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.embedders import seed_texts  # noqa: E402
from bench.quality import load_average, machine, save_results  # noqa: E402
from paperwire.index.embed import MINILM_MAX_TOKENS, minilm_directory, text_for_embedding  # noqa: E402
from paperwire.model import Paper  # noqa: E402
from paperwire.sources.parallel import available_cores  # noqa: E402

SECTION = "## MiniLM throughput"


def real_texts(path: Path, n: int, seed: int = 20261206) -> list[str]:
    """`n` records drawn uniformly (reservoir sampling) from a JSON-lines dump of arXiv metadata."""
    rng = random.Random(seed)
    chosen: list[dict[str, Any]] = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if len(chosen) < n:
                chosen.append(json.loads(line))
            elif (j := rng.randrange(i + 1)) < n:
                chosen[j] = json.loads(line)
    return [text_for_embedding(Paper(id=str(r.get("id", "")), title=r.get("title", ""),
                                     abstract=r.get("abstract", ""))) for r in chosen]


def normalise(m: np.ndarray) -> np.ndarray:
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


def torch_encoder(threads: int, max_tokens: int = MINILM_MAX_TOKENS, batch: int = 64,
                  ) -> Callable[[list[str]], np.ndarray]:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(minilm_directory()), device="cpu", local_files_only=True)
    model.max_seq_length = max_tokens

    def encode(texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            return model.encode(texts, batch_size=batch, convert_to_numpy=True, normalize_embeddings=False)
    return encode


def onnx_encoder(graph_dir: Path, threads: int, *, sort: bool = True, batch: int = 64,
                 max_tokens: int = MINILM_MAX_TOKENS) -> Callable[[list[str]], np.ndarray]:
    import onnxruntime
    from tokenizers import Tokenizer

    from paperwire.index.onnx_minilm import ONNX_FILE

    tokenizer = Tokenizer.from_file(str(minilm_directory() / "tokenizer.json"))
    tokenizer.enable_truncation(max_tokens)
    tokenizer.no_padding()  # the packaged tokenizer.json pads to 128; batches are padded here instead
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(graph_dir / ONNX_FILE), options, providers=["CPUExecutionProvider"])

    def encode(texts: list[str]) -> np.ndarray:
        encodings = tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids)) if sort else list(range(len(texts)))
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[r, :n] = encodings[i].ids
                mask[r, :n] = 1
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask,
                                        "token_type_ids": np.zeros_like(ids)})[0]
            m = mask[..., None].astype(np.float32)
            out[rows] = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)
        return out
    return encode


_WORKER: Callable[[list[str]], np.ndarray] | None = None


def _init_worker(kind: str, graph_dir: str) -> None:
    global _WORKER
    _WORKER = torch_encoder(1) if kind == "torch" else onnx_encoder(Path(graph_dir), 1)


def _work(texts: list[str]) -> np.ndarray:
    assert _WORKER is not None
    return _WORKER(texts)


def process_encoder(kind: str, graph_dir: Path, processes: int) -> tuple[Callable[[list[str]], np.ndarray], Any]:
    pool = ProcessPoolExecutor(processes, initializer=_init_worker, initargs=(kind, str(graph_dir)))
    list(pool.map(_work, [["warm up"]] * processes))

    def encode(texts: list[str]) -> np.ndarray:
        # Length-sorted chunks dealt round-robin, so each process gets a like share of long texts.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = [order[p::processes] for p in range(processes)]
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for rows, vectors in zip(chunks, pool.map(_work, [[texts[i] for i in c] for c in chunks]), strict=True):
            out[rows] = vectors
        return out
    return encode, pool


def quantised_graph(graph_dir: Path, target: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from paperwire.index.onnx_minilm import ONNX_FILE

    target.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(str(graph_dir / ONNX_FILE), str(target / ONNX_FILE), weight_type=QuantType.QInt8)
    return target


def exported_graph(target: Path) -> Path:
    from paperwire.index.embed import _sentence_transformer
    from paperwire.index.onnx_minilm import export_onnx

    model, _ = _sentence_transformer(minilm_directory())
    target.mkdir(parents=True, exist_ok=True)
    export_onnx(model[0].auto_model, target)
    return target


def measure(name: str, encode: Callable[[list[str]], np.ndarray], texts: list[str], cores: int,
            reference: np.ndarray | None, child_cpu: Callable[[], float] | None = None) -> dict[str, Any]:
    encode(texts[:8])  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    before = child_cpu() if child_cpu else 0.0
    vectors = normalise(encode(texts))
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu + ((child_cpu() - before) if child_cpu else 0.0)
    row: dict[str, Any] = {"variant": name, "texts": len(texts), "seconds": wall, "per_s": len(texts) / wall,
                           "per_cpu_s": len(texts) / cpu, "per_s_per_core": len(texts) / wall / cores}
    if reference is not None:
        cos = np.sum(vectors * reference, axis=1)
        row.update(cos_mean=float(cos.mean()), cos_p1=float(np.percentile(cos, 1)),
                   share_099=float((cos >= 0.99).mean()))
        row["acceptable"] = row["share_099"] >= 0.99
    print(f"{name:55s} {row['per_s']:7.1f}/s  {row['per_cpu_s']:6.1f}/cpu-s  "
          f"cos p1 {row.get('cos_p1', 1.0):.4f}", file=sys.stderr)
    return {**row, "vectors": vectors}


def _pool_cpu(pool: ProcessPoolExecutor) -> Callable[[], float]:
    """CPU seconds used so far by the pool's worker processes (they are not waited for, so os.times misses them)."""
    import psutil

    workers = [psutil.Process(pid) for pid in pool._processes]  # noqa: SLF001 - no public accessor

    def used() -> float:
        return sum(sum(w.cpu_times()[:2]) for w in workers)
    return used


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1024)
    parser.add_argument("--data", type=Path, help="a JSON-lines(.gz) arXiv dump to draw texts from")
    parser.add_argument("--no-markdown", action="store_true")
    args = parser.parse_args(argv)
    texts = real_texts(args.data, args.texts) if args.data else (seed_texts() * 4)[:args.texts]
    random.Random(1).shuffle(texts)
    cores = available_cores()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        graph = exported_graph(Path(tmp) / "fp32")
        reference = measure(f"torch, {cores} threads, batch 64 (reference)", torch_encoder(cores), texts, cores, None)
        ref = reference.pop("vectors")
        rows.append(reference)
        variants: list[tuple[str, Callable[[list[str]], np.ndarray]]] = [
            ("torch, batch 8", torch_encoder(cores, batch=8)),
            ("torch, batch 16", torch_encoder(cores, batch=16)),
            ("torch, batch 32", torch_encoder(cores, batch=32)),
            ("torch, batch 128", torch_encoder(cores, batch=128)),
            (f"onnxruntime, {cores} threads, length-sorted batches of 64", onnx_encoder(graph, cores)),
            (f"onnxruntime, {cores} threads, unsorted batches of 64", onnx_encoder(graph, cores, sort=False)),
            (f"onnxruntime, {cores} threads, length-sorted batches of 16", onnx_encoder(graph, cores, batch=16)),
            ("onnxruntime, 128 word pieces", onnx_encoder(graph, cores, max_tokens=128)),
            ("onnxruntime, dynamic int8", onnx_encoder(quantised_graph(graph, Path(tmp) / "int8"), cores)),
        ]
        for name, encode in variants:
            row = measure(name, encode, texts, cores, ref)
            row.pop("vectors")
            rows.append(row)
        if cores > 1:
            for kind in ("torch", "onnx"):
                encode, pool = process_encoder(kind, graph, cores)
                try:
                    row = measure(f"{kind}, {cores} processes x 1 thread", encode, texts, cores, ref, _pool_cpu(pool))
                finally:
                    pool.shutdown()
                row.pop("vectors")
                rows.append(row)
    results = {"texts": len(texts), "source": str(args.data.name) if args.data else "sample captures",
               "cores": cores, "rows": rows, "load": load_average()}
    save_results(__file__, results, argv, None if args.no_markdown else markdown)
    return 0


def markdown(results: dict[str, Any], command: str) -> str:
    info = machine()
    ref = results["rows"][0]["per_s"]
    lines = [SECTION, "",
             f"`{command}` — {results['texts']:,} titles + abstracts ({results['source']}); {info.get('cpu', '')}, "
             f"{results['cores']} cores, load {results['load']} (other work on the machine). Cosine against the "
             "reference's vectors; acceptable = 99% of vectors within cosine 0.99.", "",
             "| variant | papers/s | per core | per CPU-second | × reference | cos mean | cos 1st pct | "
             "share ≥ 0.99 | acceptable |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results["rows"]:
        cos = (f"{r['cos_mean']:.4f} | {r['cos_p1']:.4f} | {r['share_099']:.3f} | "
               f"{'yes' if r['acceptable'] else 'no'}") if "cos_mean" in r else "1 | 1 | 1 | reference"
        lines.append(f"| {r['variant']} | {r['per_s']:.1f} | {r['per_s_per_core']:.1f} | {r['per_cpu_s']:.1f} | "
                     f"{r['per_s'] / ref:.2f} | {cos} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
