"""A static model trained on a home's own abstracts to reproduce MiniLM's vectors of them.

The distilled static model (embed.distil_static_model) gives each word piece the MiniLM vector of that
piece alone. Training starts from it and fits, on abstracts of the home that already have MiniLM vectors,
the weighted mean of the pieces' vectors (then a linear map) to MiniLM's vector of the whole text, so
that words take the meaning they have in this corpus (the tokenlearn method, bench/static_model.py).
Only the pieces the abstracts contain move; the others keep their distilled vectors.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from paperwire.index.embed import (
    MINILM_NAME,
    STATIC_DIMS,
    EmbedderError,
    EmbeddingCache,
    MiniLMEmbedder,
    StaticEmbedder,
    _model_directory,
    _threads,
    text_for_embedding,
    text_key,
)

# Fewer abstracts than this fit the vocabulary of one corner of the corpus and little else.
MIN_TRAINING_TEXTS = 1000
# Bounds the work: 2,774 abstracts trained in 152 s on 2 busy cores (BENCHMARKS "Static model").
TRAINING_SAMPLE = 20_000
BATCH = 256
LEARNING_RATE = 1e-3
MAX_EPOCHS = 60
PATIENCE = 3  # epochs without a better validation loss before training stops
SEED = 5


def minilm_training_set(store: Any, cache: EmbeddingCache, *, sample: int = TRAINING_SAMPLE,
                        leave_out: set[str] | frozenset[str] = frozenset(),
                        ) -> tuple[list[str], np.ndarray]:
    """Texts of the store's papers that `cache` holds MiniLM vectors for (a seeded sample of at most
    `sample`, without the papers in `leave_out`), and those vectors."""
    texts = list(dict.fromkeys(text_for_embedding(p) for _, p in store.iter_papers() if p.id not in leave_out))
    keys = [text_key(t) for t in texts]
    found = cache.get_many(MINILM_NAME, keys, MiniLMEmbedder.dim)
    pairs = [(t, found[k]) for t, k in zip(texts, keys, strict=True) if k in found]
    random.Random(SEED).shuffle(pairs)
    pairs = pairs[:sample]
    if not pairs:
        return [], np.zeros((0, MiniLMEmbedder.dim), dtype=np.float32)
    return [t for t, _ in pairs], np.stack([v for _, v in pairs]).astype(np.float32)


def train_static_model(target: Path, base: Path, texts: Sequence[str], minilm: np.ndarray, *,
                       min_texts: int = MIN_TRAINING_TEXTS) -> dict[str, Any]:
    """Train from the static model in `base` on `texts` and their MiniLM vectors; write the model to
    `target` (replacing what is there, under the same lock as its first making). Returns its record."""
    if len(texts) < min_texts:
        raise EmbedderError(f"{target}: {len(texts)} abstracts have MiniLM vectors, training needs at least "
                            f"{min_texts} (paperwire index embed makes them)")

    def build(tmp: Path) -> dict[str, Any]:
        from model2vec import StaticModel

        started = time.perf_counter()
        start = StaticEmbedder(base)
        table, info = fit_token_vectors(start, texts, minilm)
        config = {"model_type": "model2vec", "architectures": ["StaticModel"], "hidden_dim": int(table.shape[1]),
                  "normalize": True, "pooling": "mean"}
        StaticModel(vectors=table, tokenizer=start.tokenizer, config=config, normalize=True).save_pretrained(str(tmp))
        # Its own name (of its table's bytes): vectors of two trainings are never taken for one model's.
        name = f"static:trained-{STATIC_DIMS}-{hashlib.sha1(table.tobytes()).hexdigest()[:10]}"
        return {"name": name, "source": MINILM_NAME, "pca_dims": STATIC_DIMS, "trained_on": len(texts),
                **info, "train_seconds": round(time.perf_counter() - started, 2)}

    # A model made before is replaced: training is asked for, never skipped.
    with _model_directory(target, build, is_current=lambda record: False) as record:
        return record


def fit_token_vectors(start: StaticEmbedder, texts: Sequence[str], minilm: np.ndarray,
                      ) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-piece vectors whose weighted mean over a text, through a learnt linear map, comes closest (mean
    squared error) to the text's MiniLM vector projected on its first STATIC_DIMS principal components.
    The pieces' directions and weights start from `start`; the map is dropped afterwards, as a cosine of
    two means through one linear map ranks much as the means do (and the model stays one table)."""
    import torch

    torch.manual_seed(SEED)
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, _threads()))
    try:
        targets = _principal_components(np.asarray(minilm, dtype=np.float32), STATIC_DIMS)
        ids = start.token_ids(list(texts))
        keep = [i for i, row in enumerate(ids) if row]  # a text without known pieces has no mean to fit
        order = random.Random(SEED).sample(keep, len(keep))
        held = max(1, len(order) // 10)  # validation texts: training stops when they stop improving
        validation, training = order[:held], order[held:]

        table = torch.from_numpy(np.asarray(start.table, dtype=np.float32))
        norms = table.norm(dim=1)
        directions = table / norms.clamp_min(1e-12)[:, None]
        vectors = torch.nn.EmbeddingBag.from_pretrained(directions, freeze=False, mode="sum", sparse=True)
        weights = torch.nn.Embedding.from_pretrained(norms[:, None], freeze=False, sparse=True)
        project = torch.nn.Linear(table.shape[1], targets.shape[1])
        sparse_step = torch.optim.SparseAdam([*vectors.parameters(), *weights.parameters()], lr=LEARNING_RATE)
        dense_step = torch.optim.Adam(project.parameters(), lr=LEARNING_RATE)
        wanted = torch.from_numpy(targets)

        def batch(rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            pieces = [ids[r] for r in rows]
            flat = torch.tensor([t for p in pieces for t in p], dtype=torch.long)
            lengths = torch.tensor([len(p) for p in pieces], dtype=torch.float32)
            offsets = torch.zeros(len(pieces), dtype=torch.long)
            offsets[1:] = torch.cumsum(lengths[:-1].long(), 0)
            share = torch.repeat_interleave(1.0 / lengths, lengths.long())
            return flat, offsets, share

        def predict(rows: Sequence[int]) -> torch.Tensor:
            flat, offsets, share = batch(rows)
            per_piece = weights(flat).squeeze(1) * share  # the weighted mean of the text's pieces
            return project(vectors(flat, offsets, per_sample_weights=per_piece))

        def validation_loss() -> float:
            with torch.no_grad():
                losses = [float(torch.nn.functional.mse_loss(predict(validation[i:i + BATCH]),
                                                             wanted[validation[i:i + BATCH]], reduction="sum"))
                          for i in range(0, len(validation), BATCH)]
            return sum(losses) / (len(validation) * targets.shape[1])

        best = validation_loss()
        first = best
        best_state = (vectors.weight.detach().clone(), weights.weight.detach().clone())
        shuffle = random.Random(SEED)
        epochs = waited = 0
        while epochs < MAX_EPOCHS and waited < PATIENCE:
            epochs += 1
            shuffle.shuffle(training)
            for i in range(0, len(training), BATCH):
                rows = training[i:i + BATCH]
                sparse_step.zero_grad()
                dense_step.zero_grad()
                loss = torch.nn.functional.mse_loss(predict(rows), wanted[rows])
                loss.backward()
                sparse_step.step()
                dense_step.step()
            current = validation_loss()
            if current < best - 1e-6:
                best, waited = current, 0
                best_state = (vectors.weight.detach().clone(), weights.weight.detach().clone())
            else:
                waited += 1
        directions, piece_weights = best_state
        trained = (directions * piece_weights).numpy().astype(np.float32)
    finally:
        torch.set_num_threads(threads)
    return trained, {"epochs": epochs, "validation_loss": round(best, 6), "validation_loss_before": round(first, 6),
                     "validation_texts": len(validation)}


def _principal_components(matrix: np.ndarray, dims: int) -> np.ndarray:
    """`matrix` centred and projected on its first `dims` principal axes (fewer when it has fewer rows)."""
    centred = matrix - matrix.mean(axis=0, keepdims=True)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    return np.ascontiguousarray(centred @ axes[:dims].T, dtype=np.float32)


def train_home_static_model(home: Path, store: Any, *, sample: int = TRAINING_SAMPLE,
                            min_texts: int = MIN_TRAINING_TEXTS) -> dict[str, Any]:
    """Train the home's static model on its abstracts that have MiniLM vectors in its embedding cache,
    in place of the one it has (distilled first when it has none), and forget the static vectors the old
    model made. Returns the new model's record; the caller rebuilds an index on static vectors."""
    from paperwire.index.embed import distil_static_model, static_model_directory, static_model_name
    from paperwire.index.engine import index_dir

    directory = static_model_directory(home)
    if not (directory / "paperwire.json").is_file():
        distil_static_model(directory)
    replaced = static_model_name(directory)
    cache = EmbeddingCache(index_dir(home) / "embeddings.sqlite3")
    try:
        texts, minilm = minilm_training_set(store, cache, sample=sample)
        record = train_static_model(directory, directory, texts, minilm, min_texts=min_texts)
        cache.forget(replaced)  # the replaced model's vectors: of no use any more
    finally:
        cache.close()
    return record
