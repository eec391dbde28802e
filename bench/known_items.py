"""The known-item queries (bench/known_items.json) and the checks that keep them honest.

Each item is a description of one sample-corpus paper written from memory of its abstract:
{"query", "id", "kind", "split", "page"}. Kinds: concept (the contribution in other words), method
(how it works), finding (a result), vague (3-6 words), keywords (a bag of terms, no authors), and
paraphrase (the gist with the abstract's own vocabulary deliberately avoided: the hard cases).
`split` is "tune" (about a third: the only queries any weight tuning may look at) or "test".
`page` is the seed page the paper first appears on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

KNOWN_ITEMS = Path(__file__).resolve().parent / "known_items.json"
KINDS = ("concept", "method", "finding", "vague", "keywords", "paraphrase")
SPLITS = ("tune", "test")
# A description that repeats this many consecutive title words is a title lookup, not a memory.
MAX_SHARED_RUN = 2

_WORD = re.compile(r"[a-z0-9]+")


def load_known_items(path: Path = KNOWN_ITEMS) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))


def words(text: str) -> list[str]:
    """Lowercase alphanumeric runs: hyphens and punctuation split words, so `two-layer` is two."""
    return _WORD.findall(text.lower())


def shared_title_runs(query: str, title: str, run: int = MAX_SHARED_RUN + 1) -> set[tuple[str, ...]]:
    """Runs of `run` consecutive title words that also occur consecutively in the query."""
    q, t = words(query), words(title)
    title_runs = {tuple(t[i:i + run]) for i in range(len(t) - run + 1)}
    return {tuple(q[i:i + run]) for i in range(len(q) - run + 1)} & title_runs


def seed_titles() -> dict[str, str]:
    """Paper id -> title for the bundled sample corpus, parsed the way ingest parses it."""
    from paperwire.cli import seed_paths
    from paperwire.model import Paper
    from paperwire.sources import read_source

    titles: dict[str, str] = {}
    for path in seed_paths():
        for item in read_source(path, "hf-page"):
            if isinstance(item, Paper):
                titles.setdefault(item.id, item.title)
    return titles


def problems(items: list[dict[str, Any]], titles: dict[str, str], *, min_items: int = 60) -> list[str]:
    """Everything wrong with a query file, one line each; empty when it is fit to benchmark with."""
    found = []
    if len(items) < min_items:
        found.append(f"only {len(items)} queries, need at least {min_items}")
    seen_queries: set[str] = set()
    for number, item in enumerate(items, 1):
        where = f"item {number} ({item.get('id')})"
        missing = {"query", "id", "kind", "split"} - item.keys()
        if missing:
            found.append(f"{where}: missing {', '.join(sorted(missing))}")
            continue
        if item["id"] not in titles:
            found.append(f"{where}: id is not in the sample corpus")
        elif runs := shared_title_runs(item["query"], titles[item["id"]]):
            found.append(f"{where}: repeats title words {sorted(' '.join(r) for r in runs)}")
        if item["kind"] not in KINDS:
            found.append(f"{where}: unknown kind {item['kind']!r}")
        if item["split"] not in SPLITS:
            found.append(f"{where}: unknown split {item['split']!r}")
        if item["query"].strip().lower() in seen_queries:
            found.append(f"{where}: duplicate query")
        seen_queries.add(item["query"].strip().lower())
    for split in SPLITS:
        if not any(item.get("split") == split for item in items):
            found.append(f"no {split!r} queries")
    return found
