"""Embedders load from local files only, retrieve paraphrases, and the cache embeds only changed text."""

from __future__ import annotations

import socket
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import SEEDS, install_static_model

from paperwire.index import embed
from paperwire.index.embed import (
    MAX_EMBED_CHARS,
    MINILM_NAME,
    STATIC_NAME,
    EmbedderError,
    EmbeddingCache,
    embed_papers,
    load_embedder,
    text_for_embedding,
)
from paperwire.model import Paper, make_paper
from paperwire.sources import read_source

# Descriptions of seed papers in other words than their title and abstract use.
PARAPHRASES = {
    "Dual-Head Knowledge Distillation: Enhancing Logits Utilization with an Auxiliary Head":
        "When a small student network learns from a big teacher, matching only the softmax outputs throws away "
        "what the raw scores carry; a second output head trained on a logit loss avoids the conflict.",
    "Fighting Fire with Fire: Contrastive Debiasing without Bias-free Data via Generative Bias-transformation":
        "Removing shortcut correlations from image classifiers when no unbiased training examples exist, by "
        "generating bias-altered versions of each image and contrasting them.",
    "Studying Large Language Model Generalization with Influence Functions":
        "Tracing which training documents are responsible for what a large chatbot says, by scaling "
        "counterfactual influence estimates to models with billions of weights.",
    "Learning Unnormalized Statistical Models via Compositional Optimization":
        "Fitting energy-based models whose normalising constant is intractable, by recasting noise contrastive "
        "estimation as a compositional stochastic optimisation problem.",
    "Conceptualizing Suicidal Behavior: Utilizing Explanations of Predicted Outcomes to Analyze Longitudinal "
    "Social Media Data":
        "Explainable machine learning on years of posts from online communities to understand what drives "
        "people towards self-harm after the pandemic.",
}


def _seed_papers() -> list[Paper]:
    papers: dict[str, Paper] = {}
    for path in SEEDS:
        for item in read_source(path, "hf-page"):
            if isinstance(item, Paper):
                papers.setdefault(item.id, item)
    return list(papers.values())


@contextmanager
def _no_network():
    """Fail any connection attempt that leaves the machine while the block runs."""
    attempts: list[object] = []
    original = socket.socket.connect

    def connect(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            attempts.append(address)
            raise OSError(f"network access during model loading: {address}")
        return original(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    try:
        yield attempts
    finally:
        socket.socket.connect = original  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def seed_papers() -> list[Paper]:
    return _seed_papers()


@pytest.fixture(scope="session")
def minilm(shared_dir: Path):
    with _no_network() as attempts:
        embedder = load_embedder("minilm", shared_dir / "model-home")
    assert not attempts
    return embedder


@pytest.fixture(scope="session")
def minilm_seed_vectors(minilm, seed_papers, shared_dir: Path) -> np.ndarray:
    # The cache lives in the run's shared directory: the seeds are encoded once per run, not per worker.
    cache = EmbeddingCache(shared_dir / "embeddings.sqlite3")
    try:
        return embed_papers(minilm, seed_papers, cache)
    finally:
        cache.close()


@pytest.fixture(scope="session")
def static(static_model_dir: Path):
    with _no_network() as attempts:
        embedder = load_embedder("static", static_model_dir.parent.parent)
    assert not attempts
    return embedder


def _paraphrase_ranks(embedder, vectors: np.ndarray, papers: list[Paper]) -> list[int]:
    by_title = {p.title: i for i, p in enumerate(papers)}
    queries = embedder.encode(list(PARAPHRASES.values()))
    ranks = []
    for title, query in zip(PARAPHRASES, queries, strict=True):
        scores = vectors @ query
        ranks.append(int((scores > scores[by_title[title]]).sum()) + 1)
    return ranks


def test_minilm_loads_offline_and_finds_paraphrases(minilm, minilm_seed_vectors, seed_papers):
    assert minilm.name == MINILM_NAME and minilm.dim == 384
    assert len(seed_papers) == 407
    assert minilm_seed_vectors.shape == (407, 384) and minilm_seed_vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(minilm_seed_vectors, axis=1), 1.0, atol=1e-3)
    # The full model puts every paraphrase's paper at the top or just below it among 407 papers.
    ranks = _paraphrase_ranks(minilm, minilm_seed_vectors, seed_papers)
    assert max(ranks) <= 2 and sum(r == 1 for r in ranks) >= 3, ranks


def test_model_loading_leaves_hub_access_as_it_was(minilm):
    import os

    from huggingface_hub import constants

    # Offline mode is switched on only while loading, so hub clients pointed at a paperwire server still work.
    assert constants.HF_HUB_OFFLINE == (os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
                                        or os.environ.get("TRANSFORMERS_OFFLINE", "").lower() in ("1", "true"))


@pytest.mark.slow
def test_static_model_is_distilled_once_and_then_read_from_the_home(static, static_model_dir, home, monkeypatch):
    assert static.name == STATIC_NAME and static.dim == 256
    assert (static_model_dir / "paperwire.json").is_file()
    assert not [p for p in static_model_dir.parent.iterdir() if p.name.startswith(".") and p.is_dir()]

    install_static_model(static_model_dir, home)

    def no_distillation(*args, **kwargs):
        raise AssertionError("distilled again although the home has the model")

    monkeypatch.setattr(embed, "distil_static_model", no_distillation)
    again = load_embedder("static", home)
    assert again is not static  # another home: loaded, from the copy, without distilling
    assert load_embedder("static", home) is again  # one load per process
    texts = ["Sparse attention for long documents.", "Graph neural networks for molecules."]
    assert np.allclose(again.encode(texts), static.encode(texts))


def test_static_token_ids_equal_the_tokenizers_own(static, seed_papers):
    # Word-piece ids are cached per whitespace-separated chunk; the result must be the tokenizer's.
    texts = [text_for_embedding(p) for p in seed_papers[:50]] + [
        "Naïve café – 10×faster, x_i^2 {\\em foo} İstanbul résumé 東京 $\\alpha$ 5.3% ≥ → don't", "",
        "a\u0301b a\u00a0b\u2003c", "a\x0bb c\x1fd e\u2028f", "x\u200by", "word " * 700, "   "]
    expected = [e.ids[:embed.STATIC_MAX_TOKENS]
                for e in static.tokenizer.encode_batch_fast(texts, add_special_tokens=False)]
    assert static.token_ids(texts) == expected
    assert static.token_ids(texts) == expected  # from the chunk cache this time


@pytest.mark.slow
def test_static_vectors_find_paraphrases(static, seed_papers):
    vectors = embed_papers(static, seed_papers)
    assert vectors.shape == (407, 256)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    ranks = _paraphrase_ranks(static, vectors, seed_papers)
    # A mean of word vectors is weaker than the transformer, yet most paraphrases still land near the top
    # (chance would put them around rank 200).
    assert sorted(ranks)[len(ranks) // 2] <= 2 and max(ranks) <= 25, ranks


class CountingEmbedder:
    """The real static model, counting the texts it is asked to encode."""

    def __init__(self, inner, name: str | None = None) -> None:
        self.inner, self.name, self.dim = inner, name or inner.name, inner.dim
        self.encoded: list[str] = []

    def encode(self, texts, *, batch_size: int = 64, progress: bool = False):
        self.encoded.extend(texts)
        return self.inner.encode(texts)


@pytest.mark.slow
def test_cache_embeds_only_changed_text(static, seed_papers, tmp_path):
    papers = seed_papers[:50]
    counting = CountingEmbedder(static)
    cache = EmbeddingCache(tmp_path / "index" / "embeddings.sqlite3")
    first = embed_papers(counting, papers, cache)
    assert len(counting.encoded) == 50

    cache.close()
    cache = EmbeddingCache(tmp_path / "index" / "embeddings.sqlite3")  # survives a restart
    counting.encoded.clear()
    again = embed_papers(counting, papers, cache)
    assert counting.encoded == []
    assert np.array_equal(first, again)

    changed = papers[7].with_changes(abstract=papers[7].abstract + " We also release the code.")
    edited = [*papers[:7], changed, *papers[8:]]
    third = embed_papers(counting, edited, cache)
    assert counting.encoded == [text_for_embedding(changed)]
    assert np.array_equal(np.delete(third, 7, axis=0), np.delete(first, 7, axis=0))
    assert not np.allclose(third[7], first[7])

    # Another embedder never reuses these vectors, even for the same text.
    other = CountingEmbedder(static, name="static:another-model")
    embed_papers(other, papers[:5], cache)
    assert len(other.encoded) == 5
    assert cache.count(static.name) == 51 and cache.count("static:another-model") == 5
    cache.close()


def test_text_for_embedding_joins_title_and_abstract_and_bounds_length():
    paper = make_paper(title="A Title", abstract="Some  abstract\ntext.", source="test")
    assert text_for_embedding(paper) == "A Title. Some abstract text."
    question = make_paper(title="Is attention all you need?", abstract="Maybe.", source="test")
    assert text_for_embedding(question) == "Is attention all you need? Maybe."
    long = make_paper(title="Long", abstract="word " * 2000, source="test")
    text = text_for_embedding(long)
    assert len(text) <= MAX_EMBED_CHARS and text.endswith("word")
    assert text_for_embedding(make_paper(title="Only a title", abstract="", source="test")) == "Only a title"


def test_unknown_embedder_kind_is_a_clear_error(tmp_path):
    with pytest.raises(EmbedderError, match="unknown embedder 'bert'"):
        load_embedder("bert", tmp_path)


def test_embedding_nothing_returns_an_empty_matrix(tmp_path):
    class Never:
        name, dim = "never", 8

        def encode(self, texts, **kwargs):
            raise AssertionError("nothing to encode")

    assert embed_papers(Never(), [], EmbeddingCache(tmp_path / "c.sqlite3")).shape == (0, 8)
