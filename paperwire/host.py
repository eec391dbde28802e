"""What a process may use of the machine it runs on: its cores, and advisory file locks that let one
process of several sharing a home do a thing at a time (deliver the outbox, run the digest schedule)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def available_cores() -> int:
    """Cores this process may run on (its affinity on Linux, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class FileLock:
    """An exclusive lock on a file (flock): released by `release()` or when the process ends, however."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def acquire(self, *, wait: bool = True) -> bool:
        """Take the lock, waiting for it unless `wait` is False; False when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError:
            handle.close()
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file releases the flock
            self._handle = None


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold the lock on `path` for the block, waiting for it first."""
    lock = FileLock(path)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()
