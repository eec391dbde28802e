"""Reading .gz inputs with a bound on how far they may expand.

gzip expands up to about 1,000 times: a 4 MB file can hold 4 GB of blank lines, which takes far longer to
read than anything real of that size. Real metadata compresses 2 to 5 times (the arXiv snapshot 2.8,
Hugging Face JSON indented by 4 spaces 4.0, OAI-PMH XML 2.7), so a file that expands more than MAX_RATIO
times its size (and beyond MIN_LIMIT_BYTES, so that small files of repeated text still read) is refused
part way with a one-line error naming it.
"""

from __future__ import annotations

import gzip
import io
import os
from typing import BinaryIO

from paperwire.sources.base import SourceError

MAX_RATIO = 20
MIN_LIMIT_BYTES = 64 * 1024 * 1024
BUFFER_BYTES = 1 << 16


class ExpandsTooFar(SourceError):
    """A compressed file that decompresses to more than its limit (a decompression bomb)."""


def expansion_limit(compressed_bytes: int) -> int:
    """The most a file of this compressed size may decompress to."""
    return max(MIN_LIMIT_BYTES, MAX_RATIO * compressed_bytes)


class _Bounded(io.RawIOBase):
    """The decompressed bytes of a GzipFile, raising ExpandsTooFar once more than `limit` are read."""

    def __init__(self, gz: gzip.GzipFile, name: str, limit: int) -> None:
        self._gz, self._name, self._limit = gz, name, limit

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = self._gz.readinto(buffer)
        if self._gz.tell() > self._limit:
            raise ExpandsTooFar(
                f"{self._name}: decompresses to more than {self._limit:,} bytes (over {MAX_RATIO} times its "
                "size): refused as a likely gzip bomb; decompress it yourself to read it anyway")
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._gz.seek(offset, whence)

    def tell(self) -> int:
        return self._gz.tell()

    def fileno(self) -> int:
        return self._gz.fileno()

    def close(self) -> None:
        self._gz.close()
        super().close()


def open_gzip(compressed: BinaryIO, name: str, compressed_bytes: int | None = None) -> BinaryIO:
    """A buffered reader of the decompressed bytes of `compressed` (which the caller closes), bounded by
    `expansion_limit` of its size (`compressed_bytes`, else the size of its file)."""
    if compressed_bytes is None:
        compressed_bytes = os.fstat(compressed.fileno()).st_size
    gz = gzip.GzipFile(fileobj=compressed, mode="rb")
    return io.BufferedReader(_Bounded(gz, name, expansion_limit(compressed_bytes)), BUFFER_BYTES)
