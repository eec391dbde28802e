"""Draw the real arXiv papers that bench/known_items_real.json describes, reproducibly.

    .venv/bin/python bench/draw_real_items.py PATH/TO/arxiv-real-187k.jsonl.gz [--count 80]

Procedure: read every line of the file (gzip JSON lines, one paper each), shuffle the line numbers with
random.Random(20261206), walk the shuffled order and keep the first `count` papers whose abstract has at
least 400 characters (short abstracts give too little to remember a paper by). No field is skipped:
physics papers count as much as cs ones. Prints id, first category, title and abstract of each draw in
draw order, which is the order of the query file; a query was then written by hand for each.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random

SEED = 20261206
COUNT = 80
MIN_ABSTRACT_CHARS = 400


def draw(path: str, count: int = COUNT, seed: int = SEED) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        lines = handle.readlines()
    order = list(range(len(lines)))
    random.Random(seed).shuffle(order)
    drawn = []
    for index in order:
        paper = json.loads(lines[index])
        if len(paper.get("abstract") or "") >= MIN_ABSTRACT_CHARS:
            drawn.append(paper)
            if len(drawn) == count:
                break
    return drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="the real arXiv metadata file (.jsonl.gz)")
    parser.add_argument("--count", type=int, default=COUNT)
    args = parser.parse_args()
    for number, paper in enumerate(draw(args.data, args.count), 1):
        field = paper["categories"].split()[0].split(".")[0]
        print(f"## {number} {paper['id']} [{field}] {paper['categories']}")
        print(f"title: {' '.join(paper['title'].split())}")
        print(' '.join(paper["abstract"].split()))
        print()


if __name__ == "__main__":
    main()
