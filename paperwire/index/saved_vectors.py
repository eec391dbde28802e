"""The dense vectors of a home's saved index, read without the lexical part (topics and the map need
only the vectors: loading the words of 187k papers would cost seconds and hundreds of MB for nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from paperwire.index.dense import DenseIndex
from paperwire.index.engine import _read_manifest, index_dir


class NoVectors(LookupError):
    """A home whose index has no complete set of vectors yet; the message says what is missing."""


@dataclass
class SavedVectors:
    dense: DenseIndex
    rev: int  # the store rev the index covers
    generation: int


def saved_vectors(home: Path) -> SavedVectors:
    """The saved index's vectors; NoVectors when there is no index or its vectors are still being made."""
    manifest = _read_manifest(index_dir(home))
    if manifest is None:
        raise NoVectors(f"{home}: no search index yet (run `paperwire index update`)")
    rev, dense_rev = int(manifest["rev"]), int(manifest.get("dense_rev", manifest["rev"]))
    if dense_rev < rev:
        raise NoVectors(f"{home}: the index's vectors are still being made (through rev {dense_rev} of {rev}); "
                        "topics and the map need every paper's vector")
    dense = DenseIndex.load(index_dir(home) / manifest["generation_dir"] / "dense",
                            expected_embedder=manifest.get("embedder"))
    if not len(dense):
        raise NoVectors(f"{home}: the index has no vectors")
    return SavedVectors(dense, rev, int(manifest["generation"]))
