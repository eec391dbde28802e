"""One parser per input format. Each yields Paper records and Rejected entries, never raises
for bad data; `read_source` opens a path, picks the parser and turns file errors into Rejected."""

from __future__ import annotations

import gzip
import inspect
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import BinaryIO

from paperwire.model import Paper
from paperwire.sources import arxiv_atom, arxiv_oai, arxiv_snapshot, bibtex, csl_json, hf_daily, hf_page, parallel
from paperwire.sources.base import ParseItem, Rejected, SourceError
from paperwire.sources.compressed import open_gzip

__all__ = ["FORMATS", "ParseItem", "Rejected", "SourceError", "detect_format", "parse_stream", "read_source"]

# name -> module with parse(stream, name, **options) and looks_like(head: str) -> bool
FORMATS: dict[str, ModuleType] = {}
_EXTENSIONS: dict[str, str] = {}


def register(module: ModuleType, *extensions: str) -> None:
    FORMATS[module.FORMAT] = module
    for ext in extensions:
        _EXTENSIONS[ext] = module.FORMAT


for _module in (hf_page, arxiv_snapshot, arxiv_oai, arxiv_atom, hf_daily, bibtex, csl_json):
    register(_module, *getattr(_module, "EXTENSIONS", ()))


def detect_format(path: Path, head: bytes) -> str:
    """The format of a file from its extension, else from its first bytes; raises SourceError."""
    text = head.decode("utf-8", errors="replace")
    for suffix in (("".join(path.suffixes[-2:])).lower(), path.suffix.lower()):
        fmt = _EXTENSIONS.get(suffix)
        if fmt and FORMATS[fmt].looks_like(text):
            return fmt
    for fmt, module in FORMATS.items():
        if module.looks_like(text):
            return fmt
    raise SourceError(f"{path}: cannot tell the format; pass --format ({', '.join(FORMATS)})")


def parse_stream(stream: BinaryIO, name: str, fmt: str, **options: object) -> Iterator[ParseItem]:
    if fmt not in FORMATS:
        raise SourceError(f"{name}: unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    parser = FORMATS[fmt].parse
    accepted = inspect.signature(parser).parameters
    return parser(stream, name, **{k: v for k, v in options.items() if k in accepted})


def read_source(path: Path, fmt: str = "auto", *, wrap: Callable[[BinaryIO], BinaryIO] | None = None,
                workers: int | None = 1, finish: Callable[[Paper], object] | None = None,
                **options: object) -> Iterator[ParseItem | object]:
    """Parse one file (gzip-compressed if its name ends in .gz, expanding at most compressed.MAX_RATIO
    times). An unreadable file, unknown format or gzip bomb yields a single Rejected (after the records
    read before it). `workers` > 1 parses line-oriented formats in that many processes; None picks a
    number from the file size. `finish` (a picklable function) turns each Paper into what
    the caller wants, where it is parsed: in the worker processes when there are some."""
    name = str(path)
    gzipped = name.endswith(".gz")
    try:
        with open(path, "rb") as raw:
            size = os.fstat(raw.fileno()).st_size
            if fmt == "auto":
                fmt = detect_format(path, (gzip.GzipFile(fileobj=raw) if gzipped else raw).read(4096))
                raw.seek(0)
            # `wrap` sees the bytes of the file itself (compressed ones for .gz): progress over file sizes
            stream = wrap(raw) if wrap else raw
            if gzipped:
                stream = open_gzip(stream, name, size)
            module = FORMATS.get(fmt)
            if workers is None:
                workers = parallel.default_workers(size)
            if workers > 1 and module is not None and parallel.supports(module):
                yield from parallel.parse_in_workers(stream, name, fmt, workers, finish)
            elif finish is None:
                yield from parse_stream(stream, name, fmt, **options)
            else:
                for item in parse_stream(stream, name, fmt, **options):
                    yield finish(item) if type(item) is Paper else item
    except SourceError as exc:
        yield Rejected(name, "file", str(exc).removeprefix(f"{name}: "))
    except IsADirectoryError:
        yield Rejected(name, "file", "is a directory")
    except FileNotFoundError:
        yield Rejected(name, "file", "no such file")
    except PermissionError:
        yield Rejected(name, "file", "permission denied")
    except OSError as exc:
        yield Rejected(name, "file", f"cannot read: {exc.strerror or exc}")
