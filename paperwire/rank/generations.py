"""Derived data saved as generations, as the search index saves its own: each build is written to a new
directory gen-NNNNNN, then manifest.json is switched to it with os.replace, then older generations go.
A reader holds the manifest it loaded; a build killed midway leaves the previous generation in force."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 1


def read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def _fsync_write(path: Path, write: Callable[[Any], Any]) -> None:
    with open(path, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())


def write_generation(directory: Path, arrays: dict[str, np.ndarray], documents: dict[str, Any],
                     manifest: dict[str, Any]) -> dict[str, Any]:
    """Write a new generation (arrays as .npy, documents as .json), switch the manifest to it and remove
    older ones. Returns the manifest written. Callers hold `build_lock`."""
    directory.mkdir(parents=True, exist_ok=True)
    current = read_manifest(directory)
    generation = (int(current["generation"]) if current else 0) + 1
    name = f"gen-{generation:06d}"
    gen_dir = directory / name
    shutil.rmtree(gen_dir, ignore_errors=True)
    gen_dir.mkdir()
    for key, array in arrays.items():
        _fsync_write(gen_dir / f"{key}.npy", lambda fh, a=array: np.save(fh, a))
    for key, document in documents.items():
        _fsync_write(gen_dir / f"{key}.json", lambda fh, d=document: fh.write(json.dumps(d).encode()))
    written = {**manifest, "format": FORMAT, "generation": generation, "generation_dir": name}
    tmp = directory / "manifest.json.tmp"
    _fsync_write(tmp, lambda fh: fh.write(json.dumps(written, indent=1).encode()))
    os.replace(tmp, directory / "manifest.json")
    for old in directory.glob("gen-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return written


def read_array(directory: Path, manifest: dict[str, Any], key: str) -> np.ndarray:
    return np.load(directory / manifest["generation_dir"] / f"{key}.npy")


def read_document(directory: Path, manifest: dict[str, Any], key: str) -> Any:
    return json.loads((directory / manifest["generation_dir"] / f"{key}.json").read_text())


@contextmanager
def build_lock(directory: Path, *, wait: bool = True) -> Iterator[bool]:
    """One build of a directory at a time across processes; with wait=False, False at once when another
    process is building."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "build.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
