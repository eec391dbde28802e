"""Parse a line-oriented file in worker processes.

Turning a snapshot record into a Paper (JSON, ids, dates, LaTeX clean-up, links) costs more CPU than
storing it, so a bulk ingest is parser-bound on one core. Here this process reads the file in blocks of
whole lines and counts their newlines (cheap, and it keeps error locations exact); worker processes
split, decode and parse the blocks. Results come back in file order, and a bounded number of blocks is
in flight (enough that the workers keep parsing while the caller waits on its disk), so memory stays
flat for any file size.
"""

from __future__ import annotations

import gc
import io
import marshal
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import fields
from operator import attrgetter
from types import ModuleType
from typing import BinaryIO

from paperwire.host import available_cores
from paperwire.model import Paper
from paperwire.sources.base import MAX_RECORD_BYTES, ParseItem, Rejected, iter_lines

# Bytes per task: about 3,000 snapshot records, so a task's overhead is small next to its work.
BLOCK_BYTES = 1 << 20
# Blocks in flight per worker: the caller stores a batch (about 16 blocks) and waits on the disk for up to
# a second at a time, and the workers should spend that parsing, not waiting for new blocks.
BLOCKS_AHEAD = 16
# Below this a file parses faster than worker processes start.
MIN_PARALLEL_BYTES = 32 * 1024 * 1024
MAX_WORKERS = 8

# A Paper crosses the process boundary as a plain tuple: pickling a dataclass costs twice as much.
_PAPER_FIELDS = attrgetter(*(f.name for f in fields(Paper)))


def supports(module: ModuleType) -> bool:
    """Whether a format's records are single lines that can be parsed apart (it has parse_lines)."""
    return hasattr(module, "parse_lines")


def default_workers(size_bytes: int) -> int:
    """Worker processes worth starting for a file of this size: one per core, none for small files."""
    if size_bytes < MIN_PARALLEL_BYTES:
        return 1
    return max(1, min(available_cores(), MAX_WORKERS))


def _alive(pid: int) -> bool:
    """Whether a process is still running: not gone, and not a zombie waiting to be reaped
    (a killed parent whose own parent has not collected it yet would otherwise look alive)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # PermissionError: the pid now belongs to someone else
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc here: the signal check is all there is
        return True


def exit_with_parent(parent: int) -> None:
    """In a worker: leave as soon as the process that started the pool is gone (even by SIGKILL),
    rather than wait forever on a task queue whose other end no one will write to again. The pool's
    helper processes also hold the caller's stdout and stderr, which must not outlive it."""

    def watch() -> None:
        while _alive(parent):
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _start_worker(parent: int) -> None:
    exit_with_parent(parent)
    # What the worker imported lives as long as it does: keep it out of the collector's full passes,
    # which otherwise walk every module object while blocks of fresh records come and go.
    gc.freeze()


def _parse_block(fmt: str, name: str, finish: Callable[[Paper], object], first_line: int,
                 block: bytes) -> list[object] | bytes:
    from paperwire.sources import FORMATS  # in the worker: the registry without an import cycle

    lines = iter_lines(io.BytesIO(block), name, first_line=first_line)
    items = [finish(item) if type(item) is Paper else item for item in FORMATS[fmt].parse_lines(lines, name)]
    if all(type(item) is tuple for item in items):
        try:
            # marshal writes plain tuples of text and numbers in about half the time pickle takes
            return marshal.dumps(items)
        except ValueError:  # something marshal cannot write: pickle it
            pass
    return items


def _blocks(stream: BinaryIO, name: str) -> Iterator[tuple[int, bytes] | Rejected]:
    """(number of its first line, whole lines) pieces of `stream`. A line longer than MAX_RECORD_BYTES that
    would run past a block is skipped here and reported as iter_lines reports it, so memory stays bounded."""
    number = 1
    while True:
        block = stream.read(BLOCK_BYTES)
        if not block:
            return
        while not block.endswith(b"\n"):  # complete the last line
            start = block.rfind(b"\n") + 1
            if len(block) - start > MAX_RECORD_BYTES:
                if start:
                    yield number, block[:start]
                    number += block.count(b"\n", 0, start)
                size = len(block) - start
                while True:
                    rest = stream.readline(MAX_RECORD_BYTES)
                    size += len(rest)
                    if not rest or rest.endswith(b"\n"):
                        break
                yield Rejected(name, f"line {number}",
                               f"line of {size:,} bytes exceeds the {MAX_RECORD_BYTES:,}-byte limit")
                number += 1
                block = b""
                break
            more = stream.readline(MAX_RECORD_BYTES + 1)
            if not more:
                break  # the file ends without a newline
            block += more
        if block:
            yield number, block
            number += block.count(b"\n")


def parse_in_workers(stream: BinaryIO, name: str, fmt: str, workers: int,
                     finish: Callable[[Paper], object] | None = None) -> Iterator[ParseItem | object]:
    """The items `FORMATS[fmt].parse(stream, name)` would yield, parsed by `workers` processes; with
    `finish` (a picklable function), each Paper is passed through it in the worker and the result comes back."""
    unpack = _papers_back if finish is None else _as_is
    # forkserver, not fork: the caller may run threads (a progress bar), and forking those is unsafe.
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(os.getpid(),)) as pool:
        pending: deque[Future[list[object] | bytes] | list[Rejected]] = deque()
        for piece in _blocks(stream, name):
            if isinstance(piece, Rejected):
                pending.append([piece])
                continue
            pending.append(pool.submit(_parse_block, fmt, name, finish or _PAPER_FIELDS, *piece))
            if len(pending) > BLOCKS_AHEAD * workers:
                yield from unpack(_result(pending.popleft()))
        while pending:
            yield from unpack(_result(pending.popleft()))


def _result(task: Future[list[object] | bytes] | list[Rejected]) -> list[object]:
    if isinstance(task, list):
        return task
    items = task.result()
    return marshal.loads(items) if type(items) is bytes else items


def _papers_back(items: list[object]) -> Iterator[ParseItem]:
    for item in items:
        yield Paper(*item) if type(item) is tuple else item  # type: ignore[misc]


def _as_is(items: list[object]) -> Iterator[object]:
    return iter(items)
