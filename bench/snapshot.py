"""A synthetic arXiv bulk metadata snapshot (JSON lines, the shape arXiv publishes for all papers).

    python bench/snapshot.py N [--seed S] > snapshot.jsonl

Text comes from bench/corpus.py (a word model fitted on the bundled sample corpus). Ids are
new-style and unique (YYMM.NNNNN, 20,000 a month from 2001 onwards); record i depends only on
(seed, i), so a smaller snapshot is a prefix of a larger one. Chunks are generated in parallel
processes when writing a file; the output is the same for any number of workers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import numpy as np

try:
    import orjson

    def _dumps(record: dict) -> str:
        return orjson.dumps(record).decode()
except ImportError:  # the bench extra brings orjson; the standard library gives the same lines, slower
    def _dumps(record: dict) -> str:
        return json.dumps(record, ensure_ascii=False, separators=(",", ":"))

# The repository root, not bench/ itself: bench/http.py would stand in for the standard library's http
# in every process that inherits the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.corpus import CHUNK, paper_chunk  # noqa: E402

PER_MONTH = 20_000
FIRST_MONTH = (2020, 1)
LICENSES = [
    ("http://arxiv.org/licenses/nonexclusive-distrib/1.0/", 0.55),
    ("http://creativecommons.org/licenses/by/4.0/", 0.30),
    ("http://creativecommons.org/licenses/by-nc-sa/4.0/", 0.05),
    ("http://creativecommons.org/licenses/by-sa/4.0/", 0.02),
    ("http://creativecommons.org/publicdomain/zero/1.0/", 0.02),
    (None, 0.06),
]
_VENUES = ["NeurIPS", "ICML", "ICLR", "CVPR", "ACL", "EMNLP", "AAAI", "ECCV", "KDD", "COLT"]
_JOURNALS = ["Phys. Rev. D", "IEEE Trans. Pattern Anal. Mach. Intell.", "J. Mach. Learn. Res.",
             "Nature Communications", "SIAM J. Optim.", "Neural Computation", "Ann. Statist."]
_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def arxiv_id(index: int) -> str:
    """The id of record `index`: 20,000 papers a month, numbered from 00001 in each month."""
    month, number = divmod(index, PER_MONTH)
    year, mon = divmod(FIRST_MONTH[0] * 12 + FIRST_MONTH[1] - 1 + month, 12)
    return f"{year % 100:02d}{mon + 1:02d}.{number + 1:05d}"


def _rfc2822(moment: datetime) -> str:
    return (f"{_DAYS[moment.weekday()]}, {moment.day} {_MONTHS[moment.month - 1]} {moment.year} "
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} GMT")


def _wrap_title(title: str) -> str:
    # the snapshot keeps arXiv's hard line breaks: "...and\n  LHC energies"
    if len(title) <= 72:
        return title
    cut = title.rfind(" ", 0, 70)
    return title if cut <= 0 else title[:cut] + "\n " + title[cut:]


def record_chunk(seed: int, chunk: int) -> list[dict]:
    """Snapshot records chunk * CHUNK … (chunk + 1) * CHUNK - 1."""
    papers = paper_chunk(seed, chunk)
    rng = np.random.default_rng([seed, chunk, 1])
    size = len(papers)
    day = rng.integers(0, 28, size).tolist()
    second = rng.integers(0, 86400, size).tolist()
    n_versions = rng.choice(4, size, p=[0.6, 0.28, 0.09, 0.03]).tolist()
    gaps = rng.integers(1, 240, (size, 3)).tolist()
    pages = rng.integers(4, 60, size).tolist()
    figures = rng.integers(0, 20, size).tolist()
    kind = rng.random((size, 5)).tolist()
    venue = rng.integers(0, len(_VENUES), size).tolist()
    journal = rng.integers(0, len(_JOURNALS), size).tolist()
    numbers = rng.integers(1000, 999999, size).tolist()
    lic = rng.choice(len(LICENSES), size, p=[p for _, p in LICENSES]).tolist()
    records = []
    base = chunk * CHUNK
    month_start: dict[str, datetime] = {}
    for i, paper in enumerate(papers):
        pid = arxiv_id(base + i)
        start = month_start.get(pid[:4])
        if start is None:
            start = month_start[pid[:4]] = datetime(2000 + int(pid[:2]), int(pid[2:4]), 1)
        year = start.year
        created = start + timedelta(days=day[i], seconds=second[i])
        versions = [{"version": "v1", "created": _rfc2822(created)}]
        for v in range(n_versions[i]):
            created += timedelta(days=gaps[i][v], seconds=second[i] % 3600)
            versions.append({"version": f"v{v + 2}", "created": _rfc2822(created)})
        authors = paper["authors"]
        initials = kind[i][2] < 0.4  # some papers list initials, some full given names
        names = [f"{given[0]}. {family}" if initials else f"{given} {family}" for family, given in authors]
        author_text = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 and kind[i][0] < 0.3 \
            else ", ".join(names)
        r = kind[i]
        comments = None
        if r[1] < 0.7:
            comments = f"{pages[i]} pages, {figures[i]} figures"
            if r[2] < 0.2:
                comments += f"; accepted at {_VENUES[venue[i]]} {year}"
        records.append({
            "id": pid,
            "submitter": names[0] if r[3] < 0.8 else names[-1],
            "authors": author_text,
            "title": _wrap_title(paper["title"]),
            "comments": comments,
            "journal-ref": f"{_JOURNALS[journal[i]]} {numbers[i] % 120 + 1}, {numbers[i]} ({year + 1})"
            if r[4] < 0.12 else None,
            "doi": f"10.{1000 + numbers[i] % 9000}/{pid}" if r[4] < 0.2 else None,
            "report-no": None,
            "categories": " ".join(paper["categories"]),
            "license": LICENSES[lic[i]][0],
            "abstract": "  " + paper["abstract"] + "\n",
            "versions": versions,
            "update_date": created.date().isoformat(),
            "authors_parsed": [[family, given, ""] for family, given in authors],
        })
    return records


def snapshot_records(n: int, seed: int = 0) -> Iterator[dict]:
    """The first `n` records of the snapshot with this seed."""
    for chunk in range((n + CHUNK - 1) // CHUNK):
        yield from record_chunk(seed, chunk)[: n - chunk * CHUNK]


def _chunk_text(seed: int, chunk: int, count: int) -> str:
    return "".join([_dumps(r) + "\n" for r in record_chunk(seed, chunk)[:count]])


def write_snapshot(out: IO[str] | str | Path, n: int, seed: int = 0, *, workers: int | None = None) -> int:
    """Write `n` records as JSON lines to a path or text stream; returns n."""
    if isinstance(out, str | Path):
        with open(out, "w", encoding="utf-8") as fh:
            return write_snapshot(fh, n, seed, workers=workers)
    chunks = (n + CHUNK - 1) // CHUNK
    counts = [min(CHUNK, n - c * CHUNK) for c in range(chunks)]
    workers = min(workers or os.cpu_count() or 1, chunks)
    if workers <= 1:
        for chunk, count in enumerate(counts):
            out.write(_chunk_text(seed, chunk, count))
        return n
    with ProcessPoolExecutor(workers) as pool:
        for text in pool.map(_chunk_text, [seed] * chunks, range(chunks), counts):
            out.write(text)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, help="number of records")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    args = parser.parse_args()
    write_snapshot(sys.stdout, args.n, args.seed, workers=args.workers)


if __name__ == "__main__":
    main()
