"""Topics: the corpus clustered on its paper vectors, each cluster labelled by its most distinctive terms.

Building (`build_topics`, `paperwire topics build`):
  1. The vectors of the saved search index (one embedder: a topic model records it and is never used with
     another model's vectors).
  2. The number of topics: spherical k-means (faiss) for each candidate k on a sample, scored by the mean
     silhouette (cosine) of held-out points; candidates run from tens to a few hundred, fewer for small
     corpora (at least MIN_TOPIC_SIZE papers per topic on average). The best-scoring k wins.
  3. k-means with that k on a bounded training sample; every paper goes to its nearest centroid, a chunk
     at a time (memory does not grow with the corpus beyond the ids and one int per paper).
  4. Labels: class-based tf-idf (each topic's texts as one document; a term's weight is its frequency in
     the topic times log(1 + average topic length / its frequency over all topics)), over words and
     two-word phrases of titles and abstracts, at most LABEL_DOCS papers per topic.
  5. Stable ids: the new clusters are matched to the previous generation's topics by shared papers
     (Hungarian assignment on overlap); a cluster that shares at least MATCH_JACCARD of its papers with an
     old topic keeps that topic's id, others get ids never used before.
Saved under HOME/topics/ as generations (paperwire/rank/generations.py). Files, not store tables: the
topics are derived from the index's vectors, rebuilt from them at will and tied to their embedder, as
the index itself is; arrays of one number per paper (1M papers: 4 MB) load in milliseconds from .npy
where rows would cost a query each. A server keeps them fresh (`LiveTopics`): papers newer than the
build join their nearest topic at once; a rebuild runs in the background on a schedule and when the
corpus has grown by a set fraction.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from paperwire.index.query import STOPWORDS, words
from paperwire.index.saved_vectors import NoVectors, saved_vectors
from paperwire.rank.generations import build_lock, read_array, read_document, read_manifest, write_generation
from paperwire.store.paper_facts import PaperFacts

TOPICS_DIR = "topics"
K_CANDIDATES = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384)
MIN_TOPIC_SIZE = 25  # papers per topic on average, at least: fewer candidates for small corpora
MIN_K = 2
CHOOSE_SAMPLE = 40_000  # papers the candidate k are trained on
SILHOUETTE_SAMPLE = 4000  # held-out papers each candidate is scored on
TRAIN_POINTS_PER_TOPIC = 256  # the final k-means trains on at most k times this many papers
KMEANS_ITERATIONS = 25
ASSIGN_CHUNK = 65_536
LABEL_DOCS = 1000  # papers per topic read for its label
LABEL_TERMS = 8
MATCH_JACCARD = 0.3  # shared papers (of the papers both generations have) for a cluster to keep an old id
GROWTH_REBUILD = 0.10  # rebuild when the corpus has grown by this share since the last build
REFRESH_HOURS = 24.0  # and at least this often while papers keep coming
RISING_DAYS = 7
RISING_BEFORE_DAYS = 28
EPOCH = dt.date(1970, 1, 1)

# Words every field uses: they say nothing about which topic a paper is in.
LABEL_STOPWORDS = STOPWORDS | frozenset("""
abstract approach approaches based paper papers propose proposed proposes present presents show shows shown
study studies result results method methods new novel using use used uses work works also well one two three
first second however many much often can via within provide provides provided demonstrate demonstrates
existing recent recently significant significantly furthermore moreover respectively including various
different several across large small high low problem problems performance improve improves improved
achieve achieves state art address introduce introduces further given show approach thereby whose
extensive experiments experimental evaluation effective effectiveness efficient framework task tasks
""".split())


# Too general to name a topic alone, yet part of phrases that do ("language models", "deep learning").
GENERIC_WORDS = frozenset("""
model models modeling modelling learning data time non multi system systems network networks training
analysis information field fields theory function functions structure structures process processes
dynamics parameter parameters type types order set sets case cases effect effects level levels
""".split())


class TopicsError(ValueError):
    """Topics cannot be built or read; the message is one line for the user."""


@dataclass
class Topic:
    id: int
    terms: list[str]
    size: int

    @property
    def label(self) -> str:
        return ", ".join(self.terms[:3]) if self.terms else f"topic {self.id}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "terms": self.terms, "size": self.size}


@dataclass
class TopicModel:
    """One saved generation: topics, their centroids, and every clustered paper's topic and day."""

    embedder: str
    rev: int  # the store rev of the index the vectors came from
    built_at: str
    topics: list[Topic]
    centroids: np.ndarray  # (k, dim) unit rows, in the order of `topics`
    ids: list[str]
    assignment: np.ndarray  # topic id per paper of `ids`
    days: np.ndarray  # days since 1970-01-01 per paper of `ids`, -1 when unknown
    measure: dict[str, Any] = field(default_factory=dict)
    next_id: int = 0
    generation: int = 0

    def __post_init__(self) -> None:
        self.position = {pid: i for i, pid in enumerate(self.ids)}
        self.by_id = {t.id: t for t in self.topics}
        self.topic_ids = np.asarray([t.id for t in self.topics], dtype=np.int32)

    def topic_of(self, paper_id: str) -> int | None:
        row = self.position.get(paper_id)
        return None if row is None else int(self.assignment[row])

    def nearest(self, vectors: np.ndarray) -> np.ndarray:
        """The topic id nearest to each (unit) vector, by cosine to the centroids."""
        if not len(vectors):
            return np.zeros(0, dtype=np.int32)
        return self.topic_ids[np.argmax(np.asarray(vectors, dtype=np.float32) @ self.centroids.T, axis=1)]


# ---------------------------------------------------------------------------------------------- building


Progress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


def topics_dir(home: Path) -> Path:
    return home / TOPICS_DIR


def k_candidates(n: int) -> list[int]:
    """Candidate numbers of topics for `n` papers: tens to a few hundred, each with enough papers."""
    ceiling = max(MIN_K, n // MIN_TOPIC_SIZE)
    found = [k for k in K_CANDIDATES if k <= ceiling]
    return found or [min(ceiling, max(MIN_K, n // 2))]


def _kmeans(sample: np.ndarray, k: int, seed: int, iterations: int = KMEANS_ITERATIONS) -> np.ndarray:
    import faiss

    km = faiss.Kmeans(sample.shape[1], k, niter=iterations, seed=seed, spherical=True, verbose=False,
                      max_points_per_centroid=TRAIN_POINTS_PER_TOPIC, min_points_per_centroid=1)
    km.train(np.ascontiguousarray(sample, dtype=np.float32))
    return _unit(km.centroids)


def silhouette(vectors: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette by cosine distance (1 - cos) of unit rows."""
    distances = 1.0 - vectors @ vectors.T
    clusters, inverse = np.unique(labels, return_inverse=True)
    if len(clusters) < 2:
        return -1.0
    onehot = np.zeros((len(labels), len(clusters)), dtype=np.float32)
    onehot[np.arange(len(labels)), inverse] = 1.0
    sums = distances @ onehot
    counts = onehot.sum(axis=0)
    own = inverse
    own_count = counts[own] - 1
    a = np.where(own_count > 0, sums[np.arange(len(labels)), own] / np.maximum(own_count, 1), 0.0)
    mean_other = sums / counts
    mean_other[np.arange(len(labels)), own] = np.inf
    b = mean_other.min(axis=1)
    s = np.where(own_count > 0, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(s.mean())


def choose_k(vectors: np.ndarray, seed: int = 0, progress: Progress = _no_progress) -> tuple[int, dict[str, Any]]:
    """The number of topics at the knee of held-out cohesion against log k, and every candidate's scores.

    Cohesion is the mean cosine of held-out papers to their nearest centroid: it always grows with k, fast
    while clusters split real topics apart, slowly once they cut topics into pieces. The knee (Kneedle:
    the candidate furthest above the line from the first to the last, both axes scaled to [0, 1]) is where
    one turns into the other. Silhouette is reported too; on paper embeddings it falls with every k (the
    topics overlap), so on its own it would always pick the fewest."""
    rng = np.random.default_rng(seed)
    n = len(vectors)
    candidates = k_candidates(n)
    held = min(SILHOUETTE_SAMPLE, max(n // 4, min(n, 200)))
    order = rng.permutation(n)
    held_rows, train_rows = np.sort(order[:held]), np.sort(order[held:][:CHOOSE_SAMPLE])
    if len(train_rows) < max(candidates) * 4:
        train_rows = np.sort(order[:CHOOSE_SAMPLE])  # tiny corpora: train on everything
    train, held_out = vectors[train_rows], vectors[held_rows]
    cohesion: dict[int, float] = {}
    silhouettes: dict[int, float] = {}
    for step, k in enumerate(candidates):
        progress("choosing the number of topics", step, len(candidates))
        similarity = held_out @ _kmeans(train, k, seed, iterations=15).T
        cohesion[k] = round(float(similarity.max(axis=1).mean()), 5)
        silhouettes[k] = round(silhouette(held_out, np.argmax(similarity, axis=1)), 5)
    progress("choosing the number of topics", len(candidates), len(candidates))
    best = knee(candidates, [cohesion[k] for k in candidates])
    return best, {"cohesion": {str(k): v for k, v in cohesion.items()},
                  "silhouette": {str(k): v for k, v in silhouettes.items()}}


def knee(ks: list[int], values: list[float]) -> int:
    """The k furthest above the chord of values against log k (both scaled to [0, 1])."""
    if len(ks) < 3:
        return ks[int(np.argmax(values))] if len(ks) == 2 and values[1] - values[0] > 0.01 else ks[0]
    x = np.log(np.asarray(ks, dtype=np.float64))
    y = np.asarray(values, dtype=np.float64)
    x = (x - x[0]) / max(x[-1] - x[0], 1e-12)
    y = (y - y[0]) / max(y[-1] - y[0], 1e-12)
    return ks[int(np.argmax(y - x))]


def _unit(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def _decode_rows(dense: Any, ids: list[str], rows: np.ndarray) -> np.ndarray:
    return _unit(dense.vectors([ids[r] for r in rows.tolist()]))


def cluster(dense: Any, ids: list[str], *, k: int | None = None, seed: int = 0,
            progress: Progress = _no_progress) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(centroids, cluster of each id, how k was chosen) for the vectors of `ids` in `dense`."""
    n = len(ids)
    rng = np.random.default_rng(seed)
    measure: dict[str, Any] = {}
    if k is None:
        sample_rows = np.sort(rng.choice(n, min(n, CHOOSE_SAMPLE + SILHOUETTE_SAMPLE), replace=False))
        k, scores = choose_k(_decode_rows(dense, ids, sample_rows), seed, progress)
        measure = {"measure": "knee of held-out cohesion against log k", **scores}
    k = max(MIN_K, min(k, n))
    measure["k"] = k
    progress("clustering", 0, n)
    train_rows = np.sort(rng.choice(n, min(n, k * TRAIN_POINTS_PER_TOPIC), replace=False))
    centroids = _kmeans(_decode_rows(dense, ids, train_rows), k, seed)
    labels = np.empty(n, dtype=np.int32)
    for start in range(0, n, ASSIGN_CHUNK):
        rows = np.arange(start, min(n, start + ASSIGN_CHUNK))
        labels[rows] = np.argmax(_decode_rows(dense, ids, rows) @ centroids.T, axis=1)
        progress("clustering", int(rows[-1]) + 1, n)
    return centroids, labels, measure


_TOKEN_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


def label_terms_of(text: str) -> list[str]:
    """Words (lower-case, no stopwords, no numbers) and two-word phrases of adjacent kept words."""
    kept: list[str | None] = []
    for word in words(text):
        kept.append(word if len(word) > 2 and word not in LABEL_STOPWORDS and _TOKEN_RE.match(word) else None)
    terms = [w for w in kept if w and w not in GENERIC_WORDS]
    terms.extend(f"{a} {b}" for a, b in zip(kept, kept[1:], strict=False) if a and b and a != b)
    return terms


def ctfidf_labels(texts_by_cluster: dict[int, list[str]], top: int = LABEL_TERMS) -> dict[int, list[str]]:
    """Class-based tf-idf: the `top` most distinctive terms of each cluster (its texts as one document).
    A term must occur in at least two of the cluster's papers (one odd paper does not name a topic)."""
    counts: dict[int, Counter[str]] = {}
    docs: dict[int, Counter[str]] = {}
    for cluster_id, texts in texts_by_cluster.items():
        tf: Counter[str] = Counter()
        df: Counter[str] = Counter()
        for text in texts:
            terms = label_terms_of(text)
            tf.update(terms)
            df.update(set(terms))
        counts[cluster_id], docs[cluster_id] = tf, df
    total: Counter[str] = Counter()
    for tf in counts.values():
        total.update(tf)
    average = sum(total.values()) / max(1, len(counts))
    labels: dict[int, list[str]] = {}
    for cluster_id, tf in counts.items():
        length = sum(tf.values()) or 1
        min_docs = min(2, len(texts_by_cluster[cluster_id]))
        scored = sorted(((count / length * math.log(1 + average / total[term]), term)
                         for term, count in tf.items() if docs[cluster_id][term] >= min_docs), reverse=True)
        chosen: list[str] = []
        for _, term in scored:
            if len(chosen) >= top:
                break
            parts = term.split(" ")
            # a word inside a chosen phrase, or a phrase of chosen words, repeats what the label says
            if any(term in c.split(" ") for c in chosen if " " in c) or \
                    (len(parts) == 2 and all(p in chosen for p in parts)):
                continue
            if len(parts) == 2:
                chosen = [c for c in chosen if c not in parts]
            chosen.append(term)
        labels[cluster_id] = chosen
    return labels


def match_ids(old_ids: list[str], old_assignment: np.ndarray, new_ids: list[str], new_labels: np.ndarray,
              k: int, next_id: int) -> tuple[np.ndarray, int]:
    """Topic id of each new cluster 0..k-1: an old topic's id where they share enough papers, else a new
    id from `next_id`. Returns (ids, next unused id)."""
    from scipy.optimize import linear_sum_assignment

    result = np.full(k, -1, dtype=np.int64)
    if len(old_ids):
        old_position = {pid: i for i, pid in enumerate(old_ids)}
        pairs_new, pairs_old = [], []
        for i, pid in enumerate(new_ids):
            j = old_position.get(pid)
            if j is not None:
                pairs_new.append(new_labels[i])
                pairs_old.append(old_assignment[j])
        if pairs_new:
            old_topics, old_inverse = np.unique(np.asarray(pairs_old), return_inverse=True)
            overlap = np.zeros((k, len(old_topics)), dtype=np.int64)
            np.add.at(overlap, (np.asarray(pairs_new), old_inverse), 1)
            new_sizes, old_sizes = overlap.sum(axis=1), overlap.sum(axis=0)
            rows, cols = linear_sum_assignment(-overlap)
            for r, c in zip(rows, cols, strict=True):
                union = new_sizes[r] + old_sizes[c] - overlap[r, c]
                if union and overlap[r, c] / union >= MATCH_JACCARD:
                    result[r] = int(old_topics[c])
    for r in range(k):
        if result[r] < 0:
            result[r] = next_id
            next_id += 1
    return result.astype(np.int32), next_id


def day_number(day: str | None) -> int:
    try:
        return (dt.date.fromisoformat(day[:10]) - EPOCH).days if day else -1
    except ValueError:
        return -1


def build_topics(home: Path, store: Any, *, k: int | None = None, seed: int = 0,
                 progress: Progress = _no_progress) -> TopicModel:
    """Cluster the home's papers on the saved index's vectors and save a new generation."""
    directory = topics_dir(home)
    saved = saved_vectors(home)
    dense = saved.dense
    with build_lock(directory):
        previous = load_topics(home)
        ids = dense.ids()
        if len(ids) < 2 * MIN_K:
            raise TopicsError(f"{home}: {len(ids)} papers with vectors; topics need at least {2 * MIN_K}")
        centroids, labels, measure = cluster(dense, ids, k=k, seed=seed, progress=progress)
        k = len(centroids)
        same_model = previous is not None and previous.embedder == dense.embedder_name
        topic_ids, next_id = match_ids(previous.ids if same_model else [],  # type: ignore[union-attr]
                                       previous.assignment if same_model else np.zeros(0, np.int32),  # type: ignore[union-attr]
                                       ids, labels, k, previous.next_id if previous else 0)
        facts = PaperFacts(store)
        progress("labelling", 0, k)
        rng = np.random.default_rng(seed)
        wanted: dict[str, int] = {}
        for c in range(k):
            members = np.flatnonzero(labels == c)
            if len(members) > LABEL_DOCS:
                members = rng.choice(members, LABEL_DOCS, replace=False)
            wanted.update((ids[m], c) for m in members.tolist())
        texts: dict[int, list[str]] = {c: [] for c in range(k)}
        for pid, title, abstract in facts.texts(wanted):
            texts[wanted[pid]].append(f"{title}. {title}. {abstract}")  # the title counts twice: it names the paper
        terms = ctfidf_labels(texts)
        progress("labelling", k, k)
        sizes = np.bincount(labels, minlength=k)
        topics = [Topic(int(topic_ids[c]), terms.get(c, []), int(sizes[c])) for c in range(k)]
        days_of = facts.days(ids)
        days = np.fromiter((day_number(days_of.get(pid)) for pid in ids), dtype=np.int32, count=len(ids))
        assignment = topic_ids[labels]
        model = TopicModel(dense.embedder_name, saved.rev, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                           topics, centroids, ids, assignment, days, measure, next_id)
        manifest = write_generation(
            directory, {"centroids": centroids, "assignment": assignment, "days": days},
            {"topics": [t.to_dict() for t in topics], "ids": ids},
            {"embedder": model.embedder, "rev": model.rev, "papers": len(ids), "k": k, "built_at": model.built_at,
             "next_id": next_id, "measure": measure})
        model.generation = int(manifest["generation"])
        return model


def load_topics(home: Path) -> TopicModel | None:
    """The current generation, or None when there is none (or it cannot be read)."""
    directory = topics_dir(home)
    manifest = read_manifest(directory)
    if manifest is None:
        return None
    try:
        topics = [Topic(int(t["id"]), list(t["terms"]), int(t["size"]))
                  for t in read_document(directory, manifest, "topics")]
        model = TopicModel(manifest["embedder"], int(manifest["rev"]), manifest["built_at"], topics,
                           read_array(directory, manifest, "centroids"), read_document(directory, manifest, "ids"),
                           read_array(directory, manifest, "assignment"), read_array(directory, manifest, "days"),
                           manifest.get("measure", {}), int(manifest.get("next_id", 0)), int(manifest["generation"]))
    except (OSError, ValueError, KeyError):
        return None
    if len(model.assignment) != len(model.ids) or len(model.centroids) != len(topics):
        return None
    return model


def topics_manifest(home: Path) -> dict[str, Any] | None:
    return read_manifest(topics_dir(home))


def rebuild_reason(home: Path, *, papers_now: int, embedder_now: str | None,
                   now: dt.datetime | None = None, hours: float = REFRESH_HOURS,
                   growth: float = GROWTH_REBUILD) -> str | None:
    """Why the topics should be built again, or None while they are current enough."""
    manifest = topics_manifest(home)
    if manifest is None:
        return "no topics yet"
    if embedder_now and manifest.get("embedder") != embedder_now:
        return f"the index's vectors are now {embedder_now}'s, the topics {manifest.get('embedder')}'s"
    built = int(manifest.get("papers", 0))
    if papers_now > built * (1 + growth):
        return f"the corpus grew from {built:,} to {papers_now:,} papers"
    try:
        age = (now or dt.datetime.now(dt.UTC)) - dt.datetime.fromisoformat(manifest["built_at"])
    except (KeyError, ValueError):
        return "unknown build time"
    if papers_now > built and age.total_seconds() > hours * 3600:
        return f"built {age.total_seconds() / 3600:.0f} hours ago and papers have come since"
    return None


# ---------------------------------------------------------------------------------------------- serving


@dataclass
class Rising:
    topic: Topic
    recent: int  # papers in the last RISING_DAYS
    before: int  # papers in the RISING_BEFORE_DAYS before those
    growth: float  # share now / share before (smoothed)

    def to_dict(self) -> dict[str, Any]:
        return {**self.topic.to_dict(), "recent": self.recent, "before": self.before, "growth": round(self.growth, 3)}


class LiveTopics:
    """The saved topics plus papers that came since: each joins its nearest topic as soon as the index
    has its vector. Thread-safe for readers; `catch_up` and `reload` are called from one thread."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.model: TopicModel | None = None
        self.extra_ids: list[str] = []
        self.extra_topics: list[int] = []
        self.extra_days: list[int] = []
        self.extra_position: dict[str, int] = {}
        self.seen_rev = 0
        self.version = 0  # moves whenever what readers see changes
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None

    def reload(self) -> bool:
        """Load a generation newer than the loaded one (built by the CLI or the background job)."""
        manifest = topics_manifest(self.home)
        if manifest is None or (self.model is not None and int(manifest["generation"]) == self.model.generation):
            return False
        model = load_topics(self.home)
        if model is None:
            return False
        self.model = model
        self.extra_ids, self.extra_topics, self.extra_days, self.extra_position = [], [], [], {}
        self.seen_rev = model.rev
        self._arrays = None
        self.version += 1
        return True

    def catch_up(self, dense: Any, store: Any, *, through_rev: int | None = None) -> int:
        """Assign papers written since the build (or the last call), up to `through_rev` (what the index
        has vectors for), to their nearest topic by the model's embedder. Returns how many joined."""
        model = self.model
        if model is None or dense is None or dense.embedder_name != model.embedder:
            return 0
        joined = 0
        batch: list[tuple[str, str | None]] = []
        last = self.seen_rev
        for rev, paper in store.iter_papers(after_rev=self.seen_rev):
            if through_rev is not None and rev > through_rev:
                break  # not in the index yet: the next call takes it
            if paper.id not in model.position and paper.id not in self.extra_position and paper.id in dense:
                batch.append((paper.id, paper.listed_on or (paper.published or "")[:10] or None))
            last = rev
        if batch:
            nearest = model.nearest(_unit(dense.vectors([pid for pid, _ in batch])))
            for (pid, day), topic in zip(batch, nearest.tolist(), strict=True):
                self.extra_position[pid] = len(self.extra_ids)
                self.extra_ids.append(pid)
                self.extra_topics.append(int(topic))
                self.extra_days.append(day_number(day))
            joined = len(batch)
            self._arrays = None
            self.version += 1
        self.seen_rev = last
        return joined

    def topic_of(self, paper_id: str) -> Topic | None:
        model = self.model
        if model is None:
            return None
        topic = model.topic_of(paper_id)
        if topic is None:
            row = self.extra_position.get(paper_id)
            topic = self.extra_topics[row] if row is not None else None
        return model.by_id.get(topic) if topic is not None else None

    def _all(self) -> tuple[np.ndarray, np.ndarray]:
        """(topic, day) of every paper: the build's and the ones that joined since."""
        arrays = self._arrays
        if arrays is None:
            model = self.model
            assert model is not None
            arrays = (np.concatenate([model.assignment, np.asarray(self.extra_topics, dtype=np.int32)]),
                      np.concatenate([model.days, np.asarray(self.extra_days, dtype=np.int32)]))
            self._arrays = arrays
        return arrays

    def members(self, topic_id: int) -> tuple[list[str], np.ndarray]:
        """The ids and days of a topic's papers, newest first."""
        model = self.model
        if model is None:
            return [], np.zeros(0, dtype=np.int32)
        topics, days = self._all()
        rows = np.flatnonzero(topics == topic_id)
        rows = rows[np.argsort(-days[rows], kind="stable")]
        n_base = len(model.ids)
        ids = [model.ids[r] if r < n_base else self.extra_ids[r - n_base] for r in rows.tolist()]
        return ids, days[rows]

    def sizes(self) -> dict[int, int]:
        if self.model is None:
            return {}
        topics, _ = self._all()
        found, counts = np.unique(topics, return_counts=True)
        return dict(zip(found.tolist(), counts.tolist(), strict=True))

    def newest_day(self) -> int:
        if self.model is None:
            return -1
        _, days = self._all()
        return int(days.max()) if len(days) else -1

    def weekly_volume(self, topic_id: int, *, weeks: int = 26, until: int | None = None) -> list[tuple[str, int]]:
        """Papers of the topic per week (weeks ending on `until`, a day number; default the newest day)."""
        if self.model is None:
            return []
        topics, days = self._all()
        end = self.newest_day() if until is None else until
        mine = days[(topics == topic_id) & (days >= 0)]
        back = (end - mine) // 7
        counts = np.bincount(back[(back >= 0) & (back < weeks)], minlength=weeks)
        return [((EPOCH + dt.timedelta(days=end - 7 * w - 6)).isoformat(), int(counts[w]))
                for w in reversed(range(weeks))]

    def rising(self, limit: int = 5, *, until: int | None = None, min_recent: int = 3) -> list[Rising]:
        """Topics whose share of the last week's papers grew most against the four weeks before."""
        model = self.model
        if model is None:
            return []
        topics, days = self._all()
        end = self.newest_day() if until is None else until
        recent = (days > end - RISING_DAYS) & (days <= end)
        before = (days > end - RISING_DAYS - RISING_BEFORE_DAYS) & (days <= end - RISING_DAYS)
        n_recent, n_before = int(recent.sum()), int(before.sum())
        if not n_recent:
            return []
        k = len(model.topics)
        counted_recent = Counter(topics[recent].tolist())
        counted_before = Counter(topics[before].tolist())
        found = []
        for topic in model.topics:
            r, b = counted_recent.get(topic.id, 0), counted_before.get(topic.id, 0)
            if r < min_recent:
                continue
            # add-one smoothing: a topic with no papers before does not grow infinitely
            growth = ((r + 1) / (n_recent + k)) / ((b + 1) / (n_before + k))
            if growth > 1.0:
                found.append(Rising(topic, r, b, growth))
        found.sort(key=lambda x: (-x.growth, -x.recent, x.topic.id))
        return found[:limit]


def day_label(day: int) -> str:
    return (EPOCH + dt.timedelta(days=int(day))).isoformat() if day >= 0 else ""


def topics_summary(model: TopicModel, sizes: dict[int, int] | None = None) -> list[dict[str, Any]]:
    sizes = sizes or {}
    return [{**t.to_dict(), "size": sizes.get(t.id, t.size)}
            for t in sorted(model.topics, key=lambda t: -sizes.get(t.id, t.size))]


def papers_with_vectors(home: Path) -> tuple[int, str] | None:
    """(papers with vectors, embedder) of the saved index, or None without a complete one."""
    try:
        saved = saved_vectors(home)
    except NoVectors:
        return None
    return len(saved.dense), saved.dense.embedder_name
