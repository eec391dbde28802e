"""Wall time of one `paperwire search` / `paperwire similar` command on the sample corpus, start to exit.

    .venv/bin/python bench/cli_search.py [--runs N] [--no-markdown]

A command-line search is a new process each time, so what it imports and loads counts as much as the
search. The home is built once (ingest of the bundled seeds, then a first search that builds the index
with MiniLM and exports MiniLM's query graph), then each command runs --runs times. The baseline is what
the query vector alone cost through torch: a process that imports sentence-transformers, loads the
packaged MiniLM and embeds the query.

Writes bench/out/cli_search.json and the "## Command-line search (start to exit)" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE] + [_HERE]

from quality import BENCHMARKS_MD, OUT, machine, write_section  # noqa: E402

from paperwire.cli import seed_paths  # noqa: E402

SECTION = "## Command-line search (start to exit)"
QUERY = "a student network learns from the raw scores of a big teacher through a second output head"
TORCH_QUERY = """
import sys
from sentence_transformers import SentenceTransformer
from paperwire.index.embed import minilm_directory
SentenceTransformer(str(minilm_directory()), device="cpu", local_files_only=True).encode([sys.argv[1]])
"""


def timed(argv: list[str], env: dict[str, str]) -> float:
    return timed_output(argv, env)[0]


def timed_output(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(argv, check=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return time.perf_counter() - start, out.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-markdown", action="store_true", help="do not touch BENCHMARKS.md")
    args = parser.parse_args(argv)

    cli = [sys.executable, "-m", "paperwire.cli"]
    with tempfile.TemporaryDirectory(prefix="paperwire-cli-") as tmp:
        env = {**os.environ, "PAPERWIRE_HOME": tmp, "HF_HUB_OFFLINE": "1"}
        ingest_seconds = timed([*cli, "ingest", *map(str, seed_paths()), "--json"], env)
        search_seconds, hits = timed_output([*cli, "search", QUERY, "--json"], env)
        first = {"ingest the seeds": ingest_seconds,
                 "first search (builds the index, exports the query graph)": search_seconds}
        paper = json.loads(hits)[0]["id"]
        commands = {
            "search --mode lexical": [*cli, "search", QUERY, "--mode", "lexical", "--json"],
            "search (hybrid)": [*cli, "search", QUERY, "--json"],
            "search --mode semantic": [*cli, "search", QUERY, "--mode", "semantic", "--json"],
            f"similar {paper}": [*cli, "similar", paper, "--json"],
            "baseline: MiniLM query vector through torch": [sys.executable, "-c", TORCH_QUERY, QUERY],
        }
        runs = {name: [timed(command, env) for _ in range(args.runs)] for name, command in commands.items()}
    baseline = statistics.median(runs["baseline: MiniLM query vector through torch"])
    result = {"machine": machine(), "runs": args.runs, "query": QUERY,
              "first": {k: round(v, 2) for k, v in first.items()},
              "seconds": {k: [round(x, 3) for x in v] for k, v in runs.items()}}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "cli_search.json").write_text(json.dumps(result, indent=2) + "\n")

    m = result["machine"]
    lines = [SECTION, "",
             "Wall time of one command on the sample corpus (407 papers, MiniLM index), from process start to "
             "exit, median of the runs. Baseline: a process that only imports sentence-transformers, loads "
             "MiniLM and embeds the query (what the query vector cost through torch).", "",
             f"Command: `python bench/cli_search.py --runs {args.runs}`  ",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, Python {m['python']}, {m['os']} "
             f"(load {m['load_average']})", "",
             "| command | median s | min s | max s | x baseline |", "|---|---:|---:|---:|---:|"]
    for name, seconds in runs.items():
        median = statistics.median(seconds)
        lines.append(f"| `{name}` | {median:.2f} | {min(seconds):.2f} | {max(seconds):.2f} | "
                     f"{median / baseline:.2f} |")
    lines += ["", "Once per home: " + "; ".join(f"{k} {v:.1f} s" for k, v in first.items()) + ".", "",
              "Reading: commands that need no query vector (lexical search, similar papers: their vectors are "
              "in the index) load no model; hybrid and semantic searches load MiniLM's ONNX graph and "
              "tokenizer, not torch.", ""]
    print("\n".join(lines))
    if not args.no_markdown:
        write_section(BENCHMARKS_MD, "\n".join(lines))
        print(f"wrote {BENCHMARKS_MD} ({shlex.quote(SECTION)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
