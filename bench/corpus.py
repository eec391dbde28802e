"""Synthetic paper text with realistic term statistics, for benchmarks at scale.

`WordModel.fit(texts)` learns a word bigram model from real abstracts (the bundled sample corpus by
default) and `generate(...)` samples many documents at once with numpy: every document runs its own
Markov chain, all chains advance together, so a million abstracts take seconds, not minutes.

What makes the statistics realistic rather than a shuffled seed corpus:
- bigram transitions interpolated with the unigram distribution (fluent local word order, Zipfian
  frequencies) — the seed punctuation rides along, so sentences end and start naturally;
- a topic per document: a share of its words comes from one seed abstract's bag of words, so terms
  are bursty and documents cluster by subject the way real ones do;
- a long tail of rare made-up terms (Zipf distributed, plus a few per document repeated inside it),
  so the vocabulary keeps growing with the corpus (Heaps' law) instead of stopping at the seed's.

`generate_papers(n, seed)` wraps this into paper-shaped dicts (title, abstract, authors, categories);
bench/snapshot.py turns those into arXiv bulk-snapshot records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

_DATA = Path(__file__).resolve().parent.parent / "paperwire" / "data" / "seeds"


_SLOTS = 256  # successors kept per word: a stratified sample of its successor list


@dataclass
class WordModel:
    """A word bigram model with per-document topics and a rare-term tail; see the module docstring."""

    vocab: list[str]  # seed words, then the rare tail
    n_seed: int  # vocab[:n_seed] are seed words (chain states); the rest is the tail
    tokens: np.ndarray  # the training texts as word ids, concatenated (also the unigram distribution)
    topic_start: np.ndarray  # where text t starts in `tokens` (len = texts + 1)
    successor_slots: np.ndarray  # word w's successors are successor_slots[w * _SLOTS : (w + 1) * _SLOTS]
    sentence_starts: np.ndarray  # ids of words that followed a sentence end
    tail_table: np.ndarray  # inverse-CDF lookup table of the Zipf tail, for O(1) draws
    p_topic: float = 0.2
    p_unigram: float = 0.08
    p_rare: float = 0.025

    @classmethod
    def fit(cls, texts: Iterable[str], *, tail_size: int = 200_000, seed: int = 0) -> WordModel:
        docs = [t.split() for t in texts]
        docs = [d for d in docs if d]
        if not docs:
            raise ValueError("no text to fit a word model on")
        counts = Counter(w for d in docs for w in d)
        vocab = [w for w, _ in counts.most_common()]
        index = {w: i for i, w in enumerate(vocab)}
        n = len(vocab)
        ids = [[index[w] for w in d] for d in docs]
        tokens = np.array([i for d in ids for i in d], dtype=np.int32)
        # each occurrence's successor, wrapping round within its text so every word has one
        following = np.array([i for d in ids for i in (*d[1:], d[0])], dtype=np.int32)
        successors = following[np.argsort(tokens, kind="stable")]
        succ_count = np.bincount(tokens, minlength=n)
        succ_start = np.concatenate([[0], np.cumsum(succ_count)[:-1]])
        # Slot j of word w holds the successor at quantile (j + 0.5) / _SLOTS of w's list: exact
        # proportions up to rounding, and one gather per step when sampling.
        quantile = (np.arange(_SLOTS) + 0.5) / _SLOTS
        slots = succ_start[:, None] + (quantile[None, :] * succ_count[:, None]).astype(np.int64)
        starts = {d[0] for d in ids}
        starts.update(b for d in ids for a, b in zip(d, d[1:], strict=False) if vocab[a].endswith("."))

        rng = np.random.default_rng(seed)
        tail = _made_up_words(vocab, tail_size, rng)
        ranks = np.arange(1, len(tail) + 1, dtype=np.float64)
        cdf = np.cumsum(1.0 / (ranks + 20.0) ** 1.05)
        cdf /= cdf[-1]
        table_size = 1 << 21
        tail_table = np.searchsorted(cdf, (np.arange(table_size) + 0.5) / table_size)
        return cls(
            vocab=vocab + tail,
            n_seed=n,
            tokens=tokens,
            topic_start=np.array(np.cumsum([0] + [len(d) for d in ids]), dtype=np.int64),
            successor_slots=successors[slots.ravel()],
            sentence_starts=np.array(sorted(starts), dtype=np.int32),
            tail_table=(n + tail_table).astype(np.int32),
        )

    @property
    def topics(self) -> int:
        return len(self.topic_start) - 1

    def sample_ids(self, lengths: np.ndarray, rng: np.random.Generator,
                   topics: np.ndarray | None = None) -> np.ndarray:
        """Token ids, shape (max(lengths), docs); column i is meaningful up to lengths[i].

        `lengths` must be sorted in descending order: each step then advances only a prefix of the
        chains, the ones still running."""
        docs = len(lengths)
        steps = int(lengths[0]) if docs else 0
        if topics is None:
            topics = rng.integers(0, self.topics, docs)
        # Everything that does not depend on the previous word is drawn for all positions at once;
        # the loop below only walks the bigram chains. -1 marks "follow the chain".
        u = rng.random((steps, docs), dtype=np.float32)
        t_first = self.topic_start[topics]
        t_len = self.topic_start[topics + 1] - t_first
        override = np.full((steps, docs), -1, dtype=np.int32)
        rows, cols = np.nonzero(u < self.p_topic)
        override[rows, cols] = self.tokens[t_first[cols] + (rng.random(len(cols)) * t_len[cols]).astype(np.int64)]
        uni = (u >= self.p_topic) & (u < self.p_topic + self.p_unigram)
        override[uni] = self.tokens[rng.integers(0, len(self.tokens), int(uni.sum()))]
        override[0] = self.sentence_starts[rng.integers(0, len(self.sentence_starts), docs)]
        slot = rng.integers(0, _SLOTS, (steps, docs), dtype=np.int32)

        out = np.empty((steps, docs), dtype=np.int32)
        out[0] = state = override[0]
        active = np.searchsorted(-lengths, -np.arange(steps), side="left")  # chains with length > step
        table = self.successor_slots
        for step in range(1, steps):
            k = int(active[step])
            chained = table[state[:k] * _SLOTS + slot[step, :k]]
            forced = override[step, :k]
            state = np.where(forced >= 0, forced, chained)
            out[step, :k] = state

        # Rare terms are emitted in place of a word; the chain itself stays on seed words.
        rows, cols = np.nonzero(u > 1.0 - self.p_rare)
        own = self.tail_table[rng.integers(0, len(self.tail_table), (docs, 3))]
        mine = rng.random(len(cols)) < 0.5
        drawn = self.tail_table[rng.integers(0, len(self.tail_table), len(cols))]
        out[rows, cols] = np.where(mine, own[cols, rng.integers(0, 3, len(cols))], drawn)
        return out

    def generate(self, lengths: np.ndarray, rng: np.random.Generator, *, wrap: int = 0,
                 topics: np.ndarray | None = None) -> list[str]:
        """One text per entry of `lengths` (in words). `wrap` > 0 breaks lines every `wrap` words."""
        lengths = np.asarray(lengths, dtype=np.int64)
        order = np.argsort(-lengths, kind="stable")
        sorted_lengths = lengths[order]
        ids = self.sample_ids(sorted_lengths, rng, None if topics is None else topics[order]).T
        steps = ids.shape[1]
        position = np.arange(steps)
        if wrap:
            # a line break after every `wrap`-th word: the same word followed by a newline
            ids = ids + np.where(position % wrap == wrap - 1, len(self.vocab), 0).astype(np.int32)[None, :]
        tokens = ids[position[None, :] < sorted_lengths[:, None]]
        # Texts are assembled as bytes by numpy: every word is copied from a blob of all words,
        # each followed by its separator; a Python join per word would be the bottleneck.
        blob, word_start, word_len = self._blob()
        tok_len = word_len[tokens]
        tok_end = np.cumsum(tok_len, dtype=np.int64)
        source = np.arange(int(tok_end[-1]) if len(tokens) else 0, dtype=np.int32)
        source += np.repeat(word_start[tokens] - (tok_end - tok_len).astype(np.int32), tok_len)
        buffer = blob[source].tobytes()
        doc_end = tok_end[np.cumsum(sorted_lengths) - 1].tolist()
        texts: list[str] = [""] * len(lengths)
        begin = 0
        for slot, end in zip(order.tolist(), doc_end, strict=True):
            texts[slot] = buffer[begin:end - 1].decode()  # drop the last separator
            begin = end
        return texts

    def _blob(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cached = getattr(self, "_blob_cache", None)
        if cached is None:
            pieces = [w.encode() + b" " for w in self.vocab] + [w.encode() + b"\n" for w in self.vocab]
            lengths = np.array([len(p) for p in pieces], dtype=np.int32)
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int32)
            cached = (np.frombuffer(b"".join(pieces), dtype=np.uint8), starts, lengths)
            self._blob_cache = cached
        return cached


def _made_up_words(vocab: list[str], size: int, rng: np.random.Generator) -> list[str]:
    """Plausible new terms: the head of one seed word joined to the tail of another."""
    words = sorted({w.strip(".,;:()\"'").lower() for w in vocab})
    words = [w for w in words if len(w) >= 5 and w.isalpha()] or ["token", "model"]
    heads = sorted({w[:k] for w in words for k in (3, 4)})
    tails = sorted({w[-k:] for w in words for k in (3, 4, 5)})
    made: dict[str, None] = {}
    known = set(vocab)
    while len(made) < size:
        hi = rng.integers(0, len(heads), size)
        ti = rng.integers(0, len(tails), size)
        for h, t in zip(hi.tolist(), ti.tolist(), strict=True):
            word = heads[h] + tails[t]
            if word not in known:
                made[word] = None
                if len(made) == size:
                    break
    return list(made)


# ------------------------------------------------------------------ the sample corpus as training text

def seed_texts() -> tuple[list[str], list[str]]:
    """(titles, abstracts) of the bundled sample corpus, unique papers, in file order."""
    from paperwire.model import Paper
    from paperwire.sources import hf_page

    seen: dict[str, Paper] = {}
    for path in sorted(_DATA.glob("*.txt")):
        with open(path, "rb") as fh:
            for item in hf_page.parse(fh, path.name):
                if isinstance(item, Paper):
                    seen.setdefault(item.id, item)
    return [p.raw_title for p in seen.values()], [p.raw_abstract for p in seen.values()]


@lru_cache(maxsize=4)
def seed_models(seed: int = 0) -> tuple[WordModel, WordModel]:
    """(title model, abstract model) fitted on the sample corpus."""
    titles, abstracts = seed_texts()
    return (WordModel.fit(titles, tail_size=20_000, seed=seed + 1),
            WordModel.fit(abstracts, tail_size=200_000, seed=seed))


@lru_cache(maxsize=4)
def _chunk_models(topic_share: float | None) -> tuple[WordModel, WordModel]:
    title_model, abstract_model = seed_models()
    if topic_share is None:
        return title_model, abstract_model
    return replace(title_model, p_topic=topic_share), replace(abstract_model, p_topic=topic_share)


# ------------------------------------------------------------------ paper-shaped records

# Primary categories roughly in proportion to recent arXiv CS/stat/math volume.
CATEGORIES = [
    ("cs.LG", 16), ("cs.CV", 14), ("cs.CL", 11), ("cs.AI", 7), ("cs.RO", 4), ("stat.ML", 4),
    ("cs.CR", 3), ("cs.IR", 2), ("cs.SE", 2), ("cs.HC", 2), ("cs.NE", 1), ("cs.DC", 2), ("cs.SD", 1),
    ("eess.IV", 2), ("eess.SP", 2), ("eess.AS", 1), ("math.OC", 3), ("math.ST", 1), ("math.NA", 1),
    ("cs.IT", 1), ("cs.DS", 1), ("cs.GT", 1), ("cs.MA", 1), ("cs.CY", 1), ("q-bio.QM", 1),
    ("physics.comp-ph", 1), ("quant-ph", 2), ("cs.SY", 1),
]
_GIVEN = ("Alice Amir Ana Andrei Bo Carlos Chen Daniel David Elena Emma Fatima Feng Gabriel Hana Hao "
          "Hiroshi Igor Ines Jakob James Jia Jin Juan Julia Kai Karim Laura Lei Li Lucas Maria Mei "
          "Mohammed Nadia Naveen Olga Omar Pablo Priya Qiang Rahul Rui Sara Sergey Shu Sofia Tomas Wei "
          "Xin Yan Yoshua Yuki Yusuf Zhen Zoe").split()
_FAMILY = ("Abe Adeyemi Ahmed Bauer Becker Brown Chen Cohen da Silva Dubois Fernandez Fischer Garcia "
           "Gupta Haddad Hoffmann Huang Ivanov Jensen Kim Kowalski Kumar Lee Li Lin Liu Lopez Martin "
           "Mueller Nakamura Nguyen Novak Okafor Olsen Park Patel Petrov Rossi Sato Schmidt Shah Singh "
           "Smith Suzuki Tanaka Wang Weber Wu Xu Yamamoto Yang Zhang Zhao Zhou").split()


def generate_papers(n: int, seed: int = 0, *, start: int = 0, topic_share: float | None = None) -> Iterator[dict]:
    """Synthetic papers {"title", "abstract", "authors": [(family, given)], "categories": [...], "topic"}.

    "topic" is the index, in `seed_texts()` order, of the sample paper whose words the paper borrows.
    `topic_share` overrides the share of words taken from it (0 turns topics off, for ablations).

    Paper i depends only on (seed, i): the first k papers of a larger run are the papers of a
    smaller one, and `start` skips ahead (to generate disjoint slices in parallel). Abstract lengths
    follow a log-normal around 1,000 characters, as on arXiv."""
    first_chunk, end = start // CHUNK, start + n
    for chunk in range(first_chunk, (end + CHUNK - 1) // CHUNK):
        papers = paper_chunk(seed, chunk, topic_share)
        lo = max(start - chunk * CHUNK, 0)
        hi = min(end - chunk * CHUNK, CHUNK)
        yield from papers[lo:hi]


CHUNK = 4096  # papers drawn together; part of the determinism contract, do not change lightly


def paper_chunk(seed: int, chunk: int, topic_share: float | None = None) -> list[dict]:
    """Papers chunk * CHUNK … (chunk + 1) * CHUNK - 1 of the run with this seed."""
    title_model, abstract_model = _chunk_models(topic_share)
    rng = np.random.default_rng([seed, chunk])
    size = CHUNK
    cats = [c for c, _ in CATEGORIES]
    cat_p = np.array([w for _, w in CATEGORIES], dtype=np.float64)
    cat_p /= cat_p.sum()
    topics = rng.integers(0, abstract_model.topics, size)
    abs_len = np.clip(rng.lognormal(np.log(140), 0.33, size), 25, 270).astype(np.int64)  # arXiv caps at 1,920 chars
    title_len = rng.integers(6, 16, size)
    abstracts = abstract_model.generate(abs_len, rng, wrap=13, topics=topics)
    titles = title_model.generate(title_len, rng, topics=topics % title_model.topics)
    n_authors = np.minimum(rng.geometric(0.28, size), 30).tolist()
    given = rng.integers(0, len(_GIVEN), (size, 30)).tolist()
    family = rng.integers(0, len(_FAMILY), (size, 30)).tolist()
    primary = rng.choice(len(cats), size, p=cat_p).tolist()
    cross = rng.choice(len(cats), (size, 3), p=cat_p).tolist()
    n_cross = rng.choice(4, size, p=[0.45, 0.3, 0.17, 0.08]).tolist()
    papers = []
    for i in range(size):
        k = n_authors[i]
        categories = [cats[primary[i]]]
        for c in cross[i][:n_cross[i]]:
            if cats[c] not in categories:
                categories.append(cats[c])
        papers.append({
            "title": titles[i].rstrip(".,;:"),
            "abstract": abstracts[i],
            "authors": [(_FAMILY[f], _GIVEN[g]) for f, g in zip(family[i][:k], given[i][:k], strict=True)],
            "categories": categories,
            "topic": int(topics[i]),
        })
    return papers
