"""Static embeddings computed in a worker process during a bulk index build.

A bulk build spends about as much CPU on embedding as on the lexical analysis of the same papers, both in
Python on one core. With the embedding of a batch in a second process while this one analyses the batch's
words, a two-core machine builds about twice as fast (BENCHMARKS.md, "Search speed"). The worker loads the
same model from the same home, and its vectors cross back as float16, which is what the embedding cache
keeps anyway.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import numpy as np

from paperwire.sources.parallel import available_cores, exit_with_parent

# Below this many papers to index, starting a process costs more than it saves.
MIN_PAPERS = 20_000

_embedder = None


def worth_it(papers: int, kind: str) -> bool:
    """Whether a build of `papers` with embedder `kind` should embed in a worker: the static model only
    (MiniLM already uses every core through torch), a big backlog, a second core, and a process that may
    start children (a daemonic one, such as a multiprocessing.Pool worker, may not)."""
    if multiprocessing.current_process().daemon:
        return False
    return kind == "static" and papers >= MIN_PAPERS and available_cores() > 1


class EmbeddingWorker:
    """One process that encodes texts with the home's embedder of `kind`."""

    def __init__(self, kind: str, home: Path) -> None:
        # forkserver, not fork: a server's threads must not be forked.
        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver"),
                                         initializer=_start, initargs=(os.getpid(), kind, str(home)))

    def submit(self, texts: list[str]) -> Future[np.ndarray]:
        """float16 unit rows for `texts`, computed in the worker."""
        return self._pool.submit(_encode, texts)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _start(parent: int, kind: str, home: str) -> None:
    global _embedder
    exit_with_parent(parent)
    from paperwire.index.embed import load_embedder

    _embedder = load_embedder(kind, Path(home))


def _encode(texts: list[str]) -> np.ndarray:
    assert _embedder is not None
    return _embedder.encode(texts).astype(np.float16)
