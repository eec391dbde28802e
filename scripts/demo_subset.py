"""Cut the demo's real papers out of an arXiv bulk-snapshot file: every record whose first version falls on
or after a day, written unchanged (gzip, JSON lines) to paperwire/data/demo/. The demo ships the result,
so `make demo` needs nothing outside the repository.

    python scripts/demo_subset.py ../shared/data/arxiv-real-187k.jsonl.gz --since 2026-06-26
"""

from __future__ import annotations

import argparse
import gzip
import json
from email.utils import parsedate_to_datetime
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "paperwire" / "data" / "demo" / "arxiv-recent.jsonl.gz"


def first_day(record: dict) -> str:
    return parsedate_to_datetime(record["versions"][0]["created"]).date().isoformat()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("snapshot", type=Path)
    parser.add_argument("--since", required=True, help="first listing day kept (YYYY-MM-DD)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    kept = []
    with gzip.open(args.snapshot, "rt", encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            if record.get("versions") and first_day(record) >= args.since:
                kept.append((first_day(record), record["id"], line if line.endswith("\n") else line + "\n"))
    kept.sort()  # by day, then id: a stable file whatever the input order
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0: the same input gives the same bytes
    with open(args.out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        for _, _, line in kept:
            out.write(line.encode("utf-8"))
    print(f"{len(kept)} records from {kept[0][0]} to {kept[-1][0]} -> {args.out}")


if __name__ == "__main__":
    main()
