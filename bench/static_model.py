"""Static model for the bootstrap: distilled from MiniLM against trained on the home's own corpus.

    .venv/bin/python bench/static_model.py targets --home HOME --out CACHE [--count 5000]
    .venv/bin/python bench/static_model.py train --home HOME [--targets CACHE...] --out MODEL_DIR
        [--trainer paperwire|tokenlearn] [--holdout 300]
    .venv/bin/python bench/static_model.py compare --home HOME... --model MODEL_DIR... --work WORK_DIR [--draws 3]

`targets` makes MiniLM vectors for a seeded random sample of the home's real papers (known-item targets
left out) in an embedding cache of their own. `train` fits a static model on the home's abstracts that
such caches hold MiniLM vectors for (keys are sha1 of text_for_embedding; the home's own cache by
default), known-item targets left out, with paperwire's own trainer (what `paperwire index train-static`
runs) or tokenlearn's (pip install tokenlearn==0.2.1 --no-deps: its own requirements would move
transformers below the version the project runs), both started from the home's distilled model. A
held-out part of the texts measures agreement with MiniLM: overlap@10 of each held-out text's nearest
neighbours among the held-out texts.

`compare` copies each home (never writes into it), puts a trained model in place of the distilled one,
rebuilds the copy's index with `index rebuild --embedder static`, and measures the home and each copy:
known-item MRR and R@10 of paperwire's lexical, semantic and hybrid modes on both query sets, and
bench/recommend.py's simulated users (save k papers of one sample page, P@10 / nDCG@10 against the rest
of the page, every real paper a distractor) with paperwire's recommender, the same users for every model.
Writes bench/out/static_model.json and the "## Static model: distilled against trained on the corpus"
section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE] + [_HERE]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from known_items import load_known_items  # noqa: E402
from quality import BENCHMARKS_MD, OUT, evaluate, load_average, machine, metrics, write_section  # noqa: E402
from real_scale import REAL_ITEMS, canonical_targets  # noqa: E402
from recommend import K_VALUES, pages, precision_ndcg  # noqa: E402

SECTION = "## Static model: distilled against trained on the corpus"
SAMPLE_SEED = 5
RECOMMEND_SEED = 7
TOP = 10
QUERY_SETS = {"sample papers (known_items.json)": None, "real papers (known_items_real.json)": REAL_ITEMS}


def known_targets(store: Any) -> set[str]:
    """Stored ids of every paper either known-item query set looks for."""
    return {item["id"] for path in QUERY_SETS.values()
            for item in canonical_targets(store, load_known_items(path) if path else load_known_items())}


def training_texts(home: Path, caches: list[Path]) -> tuple[list[str], np.ndarray, dict[str, int]]:
    """Texts of the home's papers (known-item targets left out) that a cache holds MiniLM vectors for,
    in a seeded random order, with those vectors."""
    from paperwire.index.embed import MINILM_NAME, EmbeddingCache, MiniLMEmbedder, text_for_embedding, text_key
    from paperwire.store import open_store

    store = open_store(home, readonly=True)
    try:
        left_out = known_targets(store)
        texts = list(dict.fromkeys(text_for_embedding(p) for _, p in store.iter_papers() if p.id not in left_out))
    finally:
        store.close()
    keys = [text_key(t) for t in texts]
    found: dict[bytes, np.ndarray] = {}
    for path in caches:
        cache = EmbeddingCache(path)
        try:
            found.update(cache.get_many(MINILM_NAME, [k for k in keys if k not in found], MiniLMEmbedder.dim))
        finally:
            cache.close()
    pairs = [(t, found[k]) for t, k in zip(texts, keys, strict=True) if k in found]
    random.Random(SAMPLE_SEED).shuffle(pairs)
    counts = {"papers_left_out": len(left_out), "texts": len(texts), "with_minilm_vectors": len(pairs)}
    return [t for t, _ in pairs], np.stack([v for _, v in pairs]).astype(np.float32), counts


def make_targets(home: Path, out: Path, count: int) -> int:
    """MiniLM vectors of a seeded random sample of the home's abstracts (known-item targets left out) into
    the embedding cache `out`, a few hundred at a time (an interrupted run keeps what it made)."""
    from paperwire.index.embed import EmbeddingCache, MiniLMEmbedder, embed_texts, text_for_embedding
    from paperwire.store import open_store

    store = open_store(home, readonly=True)
    try:
        left_out = known_targets(store)
        # real papers only: the bundled captures (pw- ids) are what known_items.json asks for
        papers = [p for _, p in store.iter_papers() if p.id not in left_out and not p.id.startswith("pw-")]
    finally:
        store.close()
    random.Random(SAMPLE_SEED).shuffle(papers)
    texts = list(dict.fromkeys(text_for_embedding(p) for p in papers))
    cache, embedder = EmbeddingCache(out), MiniLMEmbedder()
    try:
        for start in range(0, min(count, len(texts)), 250):
            embed_texts(embedder, texts[start:min(start + 250, count)], cache)
            print(f"{min(start + 250, count):,} of {count:,}", file=sys.stderr)
    finally:
        cache.close()
    return min(count, len(texts))


def train(home: Path, caches: list[Path], out: Path, holdout: int, trainer: str) -> dict[str, Any]:
    from paperwire.index.embed import MINILM_NAME, STATIC_DIMS, STATIC_NAME, static_model_directory

    texts, targets, counts = training_texts(home, caches)
    fit_texts, fit_targets = texts[holdout:], targets[holdout:]
    started = time.perf_counter()
    if trainer == "tokenlearn":
        import torch
        from model2vec import StaticModel
        from tokenlearn.train import train_model

        base = StaticModel.from_pretrained(str(static_model_directory(home)))
        # tokenlearn fine-tunes float32 vectors with the weights folded in
        vectors = np.asarray(base.embedding, dtype=np.float32)
        if base.weights is not None:
            vectors = vectors * np.asarray(base.weights, dtype=np.float32)[:, None]
        start = StaticModel(vectors=vectors, tokenizer=base.tokenizer, config=base.config)
        torch.manual_seed(SAMPLE_SEED)
        torch.set_num_threads(1)  # small matrices: a second thread only adds waiting on a busy machine
        trained = train_model(start, fit_texts, fit_targets, device="cpu", pca_dims=STATIC_DIMS)
        if out.exists():
            shutil.rmtree(out)
        trained.save_pretrained(str(out))
        record = {"name": STATIC_NAME, "source": MINILM_NAME, "pca_dims": STATIC_DIMS,
                  "method": "tokenlearn 0.2.1", "trained_on": len(fit_texts)}
        (out / "paperwire.json").write_text(json.dumps(record, indent=2) + "\n")
    else:  # what `paperwire index train-static` runs
        from paperwire.index.static_train import train_static_model

        record = train_static_model(out, static_model_directory(home), fit_texts, fit_targets)
    seconds = time.perf_counter() - started
    agreement = heldout_agreement(texts[:holdout], targets[:holdout],
                                  {"distilled": static_model_directory(home), "trained": out})
    result = {"home": str(home), "trainer": trainer, **counts, "holdout": holdout, "trained_on": len(fit_texts),
              "train_seconds": seconds, "record": record, "heldout_overlap_with_minilm": agreement}
    print(json.dumps(result, indent=1), file=sys.stderr)
    return result


def heldout_agreement(texts: list[str], minilm: np.ndarray, models: dict[str, Path]) -> dict[str, float]:
    """Mean overlap@10 between each model's nearest neighbours among `texts` and MiniLM's."""
    from paperwire.index.embed import StaticEmbedder

    def neighbours(matrix: np.ndarray) -> list[set[int]]:
        matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        scores = matrix @ matrix.T
        np.fill_diagonal(scores, -np.inf)
        return [set(np.argsort(-row, kind="stable")[:TOP].tolist()) for row in scores]

    reference = neighbours(minilm)
    return {name: float(np.mean([len(a & b) / TOP for a, b in zip(neighbours(StaticEmbedder(d).encode(texts)),
                                                                      reference, strict=True)]))
            for name, d in models.items()}


def trained_copy(home: Path, model: Path, work: Path, label: str) -> Path:
    """A copy of `home` whose index is rebuilt with the trained static model in `model`."""
    from paperwire.index.embed import static_model_directory

    copy = work / f"{home.parent.name}-{home.name}-{label}"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(home, copy, symlinks=True)
    shutil.rmtree(static_model_directory(copy))
    shutil.copytree(model, static_model_directory(copy))
    for cached in (copy / "index").glob("embeddings.sqlite3*"):  # the distilled model's vectors
        cached.unlink()
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "paperwire.cli", "--home", str(copy), "index", "rebuild",
                    "--embedder", "static", "--json"], check=True, stdout=subprocess.DEVNULL)
    print(f"{copy}: rebuilt in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return copy


def measure(home: Path, draws: int) -> dict[str, Any]:
    """Known-item MRR / R@10 of lexical, semantic and hybrid, and recommendation P@10 / nDCG@10."""
    from paperwire.index import open_index
    from paperwire.rank.recommend import Recommender
    from paperwire.store import open_store

    store = open_store(home, readonly=True)
    index = open_index(home, store, catch_up=False)
    try:
        known = {}
        for set_name, path in QUERY_SETS.items():
            items = canonical_targets(store, load_known_items(path) if path else load_known_items())
            known[set_name] = {}
            for mode in ("lexical", "semantic", "hybrid"):
                run = evaluate(lambda q, m=mode: [h.id for h in index.search(q, mode=m, limit=100, snippets=False)],
                               items)
                known[set_name][mode] = {"all": metrics(run["ranks"]), "test": metrics(
                    [r for r, it in zip(run["ranks"], items, strict=True) if it["split"] == "test"])}
                print(f"{home}: {set_name} {mode} MRR {known[set_name][mode]['all']['mrr']:.3f}", file=sys.stderr)
        recommender = Recommender(store, index)
        rng = random.Random(RECOMMEND_SEED)
        per_k: dict[int, list[tuple[float, float]]] = {k: [] for k in K_VALUES}
        for page in pages(store):
            for k in K_VALUES:
                for _ in range(draws):
                    saved = rng.sample(page, k)
                    ranked = [r.paper.id for r in recommender.rank(saved, limit=TOP)]
                    per_k[k].append(precision_ndcg(ranked, set(page) - set(saved)))
        recommend = {str(k): {"p@10": float(np.mean([r[0] for r in v])), "ndcg@10": float(np.mean([r[1] for r in v]))}
                     for k, v in per_k.items()}
        return {"home": str(home), "papers": len(index.all_ids()), "known": known,
                "recommend": recommend}
    finally:
        store.close()


def compare(homes: list[Path], models: list[Path], work: Path, draws: int, command: str,
            markdown: bool) -> dict[str, Any]:
    trainings = {}
    for model in models:
        record = json.loads((model / "training.json").read_text())
        trainings[f"trained ({record['trainer']})"] = {"model": str(model), **record}
    runs = []
    for home in homes:
        # the distilled side is the home as it is: measured once per home and work directory
        saved = work / f"{home.parent.name}-{home.name}-distilled.json"
        if saved.exists():
            measured = {"distilled": json.loads(saved.read_text())}
        else:
            measured = {"distilled": measure(home, draws)}
            work.mkdir(parents=True, exist_ok=True)
            saved.write_text(json.dumps(measured["distilled"]))
        for label, record in trainings.items():
            copy = trained_copy(home, Path(record["model"]), work, record["trainer"])
            measured[label] = measure(copy, draws)
            shutil.rmtree(copy)  # a 100k copy is most of a gigabyte
        runs.append({"home": str(home), "papers": measured["distilled"]["papers"], "models": measured})
        result = {"runs": runs, "training": trainings, "machine": machine(), "load": load_average(),
                  "command": command, "draws": draws}
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "static_model.json").write_text(json.dumps(result, indent=1))
        if markdown:
            write_section(BENCHMARKS_MD, section(result))
    return result


def section(result: dict[str, Any]) -> str:
    names = list(dict.fromkeys(n for run in result["runs"] for n in run["models"]))
    lines = [SECTION, "",
             "The static model that indexes a home before MiniLM vectors exist: today's, distilled from the packaged",
             "MiniLM (model2vec, PCA to 256 dimensions), against models trained on the home's own abstracts to",
             "reproduce MiniLM's vectors of them, started from the distilled model: tokenlearn 0.2.1's trainer, and",
             "paperwire's own (`paperwire index train-static`, the same method with sparse updates). Each home is",
             "measured as it is and as a copy rebuilt with each trained model.", ""]
    for label, record in result["training"].items():
        agreement = record["heldout_overlap_with_minilm"]
        lines.append(f"- {label}: {record['trained_on']:,} abstracts of a seeded random sample of the home's "
                     f"{record['texts']:,} (known-item targets left out) that have MiniLM vectors, "
                     f"{record['train_seconds']:.0f} s on the shared machine; on {record['holdout']} held-out "
                     f"abstracts, overlap@10 of nearest neighbours with MiniLM's: distilled "
                     f"{agreement['distilled']:.3f}, trained {agreement['trained']:.3f}.")
    header = " | ".join(f"{n} MRR / R@10" for n in names)
    lines += ["", f"| papers | query set | mode | {header} |", "|---:|---|---|" + "---:|" * len(names)]
    for run in result["runs"]:
        models = run["models"]
        for set_name, modes in models["distilled"]["known"].items():
            for mode in modes:
                cells = " | ".join(f"{models[n]['known'][set_name][mode]['all']['mrr']:.3f} / "
                                   f"{models[n]['known'][set_name][mode]['all']['r10']:.3f}" if n in models
                                   else "not run" for n in names)
                lines.append(f"| {run['papers']:,} | {set_name} | {mode} | {cells} |")
    header = " | ".join(f"{n} P@10 / nDCG@10" for n in names)
    lines += ["", "Recommendations (paperwire's recommender over the index vectors; k saved papers of one sample page,",
              f"{result['draws']} draws per page and k, the same users for every model):", "",
              f"| papers | k | {header} |", "|---:|---:|" + "---:|" * len(names)]
    for run in result["runs"]:
        models = run["models"]
        for k in models["distilled"]["recommend"]:
            cells = " | ".join(f"{models[n]['recommend'][k]['p@10']:.3f} / {models[n]['recommend'][k]['ndcg@10']:.3f}"
                               if n in models else "not run" for n in names)
            lines.append(f"| {run['papers']:,} | {k} | {cells} |")
    cores = result["machine"].get("cores", "?")
    lines += ["", f"Command: `{result['command']}` ({cores} cores shared with other work, load {result['load']});",
              "targets and models made with this script's `targets` and `train` commands (see its docstring).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("targets", help="MiniLM vectors of a random sample of the home's abstracts")
    make.add_argument("--home", type=Path, required=True)
    make.add_argument("--out", type=Path, required=True, help="an embedding cache file to fill")
    make.add_argument("--count", type=int, default=5000)
    fit = sub.add_parser("train", help="train a static model on the home's abstracts against MiniLM's vectors")
    fit.add_argument("--home", type=Path, required=True)
    fit.add_argument("--targets", type=Path, nargs="*", help="embedding caches holding MiniLM vectors "
                     "(default: the home's own)")
    fit.add_argument("--out", type=Path, required=True)
    fit.add_argument("--holdout", type=int, default=300, help="texts kept out of training to measure agreement")
    fit.add_argument("--trainer", choices=("paperwire", "tokenlearn"), default="paperwire",
                     help="paperwire's own trainer (paperwire.index.static_train) or tokenlearn's")
    cmp_ = sub.add_parser("compare", help="measure homes with the distilled and the trained model")
    cmp_.add_argument("--home", type=Path, nargs="+", required=True)
    cmp_.add_argument("--model", type=Path, nargs="+", required=True, help="models written by `train`")
    cmp_.add_argument("--work", type=Path, required=True, help="where the homes' copies go")
    cmp_.add_argument("--draws", type=int, default=3, help="simulated users per sample page and k")
    cmp_.add_argument("--no-markdown", action="store_true")
    args = parser.parse_args(argv)
    command = "python bench/static_model.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    if args.command == "targets":
        print(f"{make_targets(args.home, args.out, args.count):,} abstracts", file=sys.stderr)
        return 0
    if args.command == "train":
        caches = args.targets or [args.home / "index" / "embeddings.sqlite3"]
        result = train(args.home, caches, args.out, args.holdout, args.trainer)
        (args.out / "training.json").write_text(json.dumps(result, indent=1))
        return 0
    compare(args.home, args.model, args.work, args.draws, command, not args.no_markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
