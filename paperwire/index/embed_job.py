"""The job that gives every paper a MiniLM vector, newest papers first, without blocking anything.

A large home is first indexed with the distilled static model (thousands of papers per second). This job
then embeds the papers with MiniLM (tens per second on 2 cores) into the home's embedding cache, a
checkpoint at a time; a kill loses at most the checkpoint in progress, and the next run starts where the
cache ends. While it runs, search keeps using the static vectors: two models' vectors are never compared.
When every paper has its MiniLM vector, the index switches to MiniLM in one new generation (the vectors
come from the cache, so the switch costs an index build without embedding), and from then on new papers
are embedded with MiniLM as they are ingested.

HOME/index/coverage.json records, per embedder, how many of the store's papers have a vector in the cache;
`index verify` and `stats` print it.
"""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from paperwire.index.embed import (
    EmbedderError,
    EmbeddingCache,
    LazyEmbedder,
    _sentence_transformer,
    minilm_directory,
    text_for_embedding,
    text_key,
)
from paperwire.index.engine import (
    COVERAGE_FILE,
    _progress,
    _read_manifest,
    _write_json_atomic,
    index_dir,
    read_coverage,
    rebuild_index,
    vector_job,
)
from paperwire.store import Store

# Papers embedded between two writes to the cache (at ~24 papers/s on 2 cores, under two minutes of work).
CHECKPOINT = 2000
# Test hook (read only here): the job kills itself with SIGKILL right after recording this many checkpoints,
# so a test can show what a kill -9 keeps without racing a job that may finish first (a cluster reads ahead).
KILL_AFTER_CHECKPOINTS_ENV = "PAPERWIRE_EMBED_KILL_AFTER_CHECKPOINTS"


class EmbedJobError(RuntimeError):
    """An embedding job that cannot run (another is running, no such device, a model that does not load)."""


@dataclass
class EmbedReport:
    embedder: str
    papers: int
    covered: int  # papers whose current text has a vector of this embedder
    embedded: int  # vectors made by this run
    switched: bool  # the index now uses this embedder
    index_embedder: str
    seconds: float

    @property
    def complete(self) -> bool:
        return self.covered >= self.papers

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "complete": self.complete}


def newest_first(store: Store) -> list[str]:
    """Every paper's id, the most recently listed (or published, or written) first."""
    keyed = [((paper.listed_on or paper.updated or paper.published or ""), rev, paper.id)
             for rev, paper in store.iter_papers()]
    keyed.sort(reverse=True)
    return [pid for _, _, pid in keyed]


def _chunks(ids: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def check_device(device: str) -> str:
    """`device` if torch can use it ("cpu", "cuda", "cuda:1", "mps"); an EmbedJobError otherwise."""
    if device == "cpu":
        return device
    try:
        import torch
    except ImportError as exc:
        raise EmbedJobError(f"device {device!r}: torch is not installed") from exc
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise EmbedJobError(f"device {device!r}: torch sees no CUDA GPU on this machine (use --device cpu)")
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise EmbedJobError(f"device {device!r}: torch sees {torch.cuda.device_count()} CUDA GPU(s)")
        return device
    if device == "mps":
        if not torch.backends.mps.is_available():
            raise EmbedJobError("device 'mps': torch sees no Apple GPU on this machine (use --device cpu)")
        return device
    raise EmbedJobError(f"unknown device {device!r}: use cpu, cuda, cuda:N or mps")


def _record_coverage(home: Path, name: str, papers: int, covered: int) -> None:
    data = read_coverage(home)
    data[name] = {"papers": papers, "covered": covered, "at": round(time.time())}
    index_dir(home).mkdir(parents=True, exist_ok=True)
    _write_json_atomic(index_dir(home) / COVERAGE_FILE, data)


Encoder = Callable[[list[str]], Any]
# Takes the texts of each checkpoint as the job plans them and yields their vectors, one array per
# checkpoint and in the same order; it may read ahead (a cluster keeps its workers busy across checkpoints).
StreamEncoder = Callable[[Iterator[list[str]]], Iterator[Any]]


@dataclass
class _Checkpoint:
    ids: list[str]
    keys: list[bytes]  # of each paper's text
    known: set[bytes]  # texts that had a vector when the checkpoint was planned
    todo: list[tuple[bytes, str]]  # distinct texts to embed


def run_embed_job(home: Path, store: Store, *, kind: str = "minilm", limit: int | None = None,
                  checkpoint: int = CHECKPOINT, device: str = "cpu", encoder: Encoder | None = None,
                  stream: StreamEncoder | None = None, switch: bool = True, progress: bool = False) -> EmbedReport:
    """Embed papers that lack a `kind` vector, newest first, at most `limit` of them (None: all), writing
    the cache every `checkpoint` papers; when every paper has one and `switch`, rebuild the index on them.

    `encoder` computes raw vectors for a list of texts elsewhere, or `stream` for the job's checkpoints one
    after the other (a Ray cluster: `embed_ray.RayEncoder`); by default the embedder runs here on `device`.
    One job per home: a second one gets an EmbedJobError at once."""
    started = time.perf_counter()
    if stream is None:
        check_device(device)
    embedder = LazyEmbedder(kind, home)
    directory = index_dir(home)
    with vector_job(directory) as mine:
        if not mine:
            raise EmbedJobError(f"{directory}: another process is making this home's vectors; try again later")
        cache = EmbeddingCache(directory / "embeddings.sqlite3")
        try:
            if stream is None:
                encode = encoder or _local_encoder(embedder, device)
                stream = lambda batches: map(encode, batches)  # noqa: E731
            ids = newest_first(store)
            planned: deque[_Checkpoint] = deque()

            def texts_to_embed() -> Iterator[list[str]]:
                queued = 0
                for chunk in _chunks(ids, checkpoint):
                    if limit is not None and queued >= limit:
                        return
                    papers = store.get_papers(chunk)
                    texts = [text_for_embedding(papers[pid]) for pid in chunk if pid in papers]
                    keys = [text_key(text) for text in texts]
                    known = set(cache.get_many(embedder.name, keys, embedder.dim))
                    todo = list({key: text for key, text in zip(keys, texts, strict=True) if key not in known}.items())
                    if limit is not None:
                        todo = todo[:max(0, limit - queued)]
                    queued += len(todo)
                    planned.append(_Checkpoint(chunk, keys, known, todo))
                    yield [text for _, text in todo]

            covered = embedded = recorded = 0
            kill_after = int(os.environ.get(KILL_AFTER_CHECKPOINTS_ENV) or 0)
            bar = _progress(progress, len(ids), f"embedding ({embedder.name})")
            try:
                for vectors in stream(texts_to_embed()):
                    done = planned.popleft()
                    if done.todo:
                        rows = _unit_rows(vectors, embedder.dim)
                        cache.put_many(embedder.name, list(zip((key for key, _ in done.todo), rows, strict=True)))
                        embedded += len(done.todo)
                    have = done.known | {key for key, _ in done.todo}
                    covered += sum(key in have for key in done.keys)  # papers, not texts: two may share one text
                    _record_coverage(home, embedder.name, len(ids), covered)
                    recorded += 1
                    if recorded == kill_after:
                        os.kill(os.getpid(), signal.SIGKILL)
                    bar(len(done.ids))
            finally:
                bar(0, close=True)
            covered = _count_covered(store, cache, embedder.name, embedder.dim, ids) if limit is not None else covered
            _record_coverage(home, embedder.name, len(ids), covered)
        finally:
            cache.close()
        manifest = _read_manifest(directory) or {}
        switched = manifest.get("embedder") == embedder.name
        if switch and not switched and covered >= len(ids):
            rebuild_index(home, store, embedder=kind, progress=progress)
            switched = True
    manifest = _read_manifest(directory) or {}
    return EmbedReport(embedder.name, len(ids), covered, embedded, switched, str(manifest.get("embedder", "")),
                       time.perf_counter() - started)


def _count_covered(store: Store, cache: EmbeddingCache, name: str, dim: int, ids: list[str]) -> int:
    covered = 0
    for chunk in _chunks(ids, 10_000):
        papers = store.get_papers(chunk)
        keys = [text_key(text_for_embedding(p)) for p in papers.values()]
        found = cache.get_many(name, keys, dim)
        covered += sum(key in found for key in keys)
    return covered


def _unit_rows(vectors: Any, dim: int) -> Any:
    import numpy as np

    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise EmbedJobError(f"the encoder returned vectors of shape {matrix.shape}, expected (n, {dim})")
    return (matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)).astype(np.float16)


def _local_encoder(embedder: LazyEmbedder, device: str) -> Encoder:
    """The embedder in this process; MiniLM on a GPU when `device` names one."""
    if device == "cpu":
        try:
            embedder.load()
        except EmbedderError as exc:
            raise EmbedJobError(str(exc)) from exc
        return lambda texts: embedder.encode(texts)
    if embedder.kind != "minilm":
        raise EmbedJobError(f"--device {device}: only the MiniLM embedder runs on a GPU")
    model, lock = _sentence_transformer(minilm_directory(), device)

    def encode(texts: list[str]) -> Any:
        with lock:
            return model.encode(texts, batch_size=128, convert_to_numpy=True, normalize_embeddings=False)
    return encode


def nice_this_thread(increment: int = 10) -> None:
    """Lower this thread's CPU priority (Linux: per thread; threads it starts inherit it), so the job
    runs in the time requests leave idle."""
    try:
        import threading

        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
    except (AttributeError, OSError):
        pass
