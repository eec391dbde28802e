"""Personal recommendations: a linear classifier per user (or per tag) over paper embeddings.

Positives are the papers saved (under the tag); negatives are the papers marked "not relevant"
(weighted x3) plus a sample of everything else, as arxiv-sanity does with all papers. The
classifier's score ranks the rest. A recommendation says why: the saved papers nearest to it. With
nothing saved there is nothing to learn, and the list falls back to trending.

The classifier is class-balanced ridge regression (least squares on +1/-1 targets) rather than
arxiv-sanity's linear SVM: in bench/recommend.py it is at least as precise (0 to +0.025 precision@10),
and its closed form has a negative-sample part (a d x d matrix) computed once and shared by every
user, so a user costs one d x d solve whatever the corpus size. The SVM took 15-20 ms per user with
400 negatives and 150-200 ms with 4,000 on a 2-core machine.

The benchmark also adds arxiv-sanity's tf-idf features to the embeddings: with the SVM they gain
+0.01 to +0.03 precision@10 (which k clears the confidence interval changes from run to run), which
only brings the SVM level with this classifier. Not used: no measurable gain over what is here, and
they would need a second per-paper feature store kept in step with the search index.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from paperwire.model import Paper
from paperwire.rank.trending import rank_trending, trending_candidates
from paperwire.store.accounts import Accounts, Listings
from paperwire.store.library import NOT_RELEVANT, READ, Library
from paperwire.store.mail import MailStore

CLASSIFIER, TRENDING = "classifier", "trending"
# Enough sampled negatives to outline "everything else"; more only costs the one shared matrix.
MAX_SAMPLED_NEGATIVES = 4000
# L2 penalty with the two classes' weights each summing to 1/2: 0.03-0.1 match the linear SVM in
# bench/recommend.py, 0.003 overfits.
RIDGE = 0.1
NOT_RELEVANT_WEIGHT = 3.0  # an explicit "not relevant" says more than a random paper
WHY_COUNT = 2


class VectorIndex(Protocol):
    def all_ids(self) -> list[str]: ...

    def all_vectors(self) -> np.ndarray: ...

    def paper_vectors(self, ids: list[str]) -> np.ndarray: ...


@dataclass
class Reason:
    paper_id: str
    title: str
    similarity: float


@dataclass
class Recommendation:
    paper: Paper
    score: float
    source: str  # classifier | trending
    why: list[Reason] = field(default_factory=list)

    def why_text(self) -> str:
        if self.source == TRENDING:
            return "trending now"
        return "because you saved " + "; ".join(f"“{r.title}”" for r in self.why)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.paper.id, "title": self.paper.title, "score": round(self.score, 6),
                "source": self.source, "authors": self.paper.authors, "listed_on": self.paper.listed_on,
                "why": [{"id": r.paper_id, "title": r.title, "similarity": round(r.similarity, 4)} for r in self.why],
                "why_text": self.why_text()}


@lru_cache(maxsize=1)
def _blas() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread() -> Any:
    """A context with BLAS on one thread: these matrices are small (d x d), and on a busy machine
    BLAS threads waiting for each other made a solve 5-10 times slower."""
    return _blas().limit(limits=1, user_api="blas")


def _augmented(x: np.ndarray) -> np.ndarray:
    """Rows with a constant 1 appended (the intercept), in float64 for the solve."""
    return np.hstack([np.asarray(x, dtype=np.float64), np.ones((len(x), 1))])


@dataclass
class NegativeStats:
    """What the closed form needs of the negatives: sum of w x x^T, sum of w x and sum of w (x with
    the intercept's 1 appended). Sums, so rows can be added and taken out cheaply."""

    gram: np.ndarray
    total: np.ndarray
    weight: float

    @classmethod
    def of(cls, vectors: np.ndarray, weights: np.ndarray | None = None) -> NegativeStats:
        xa = _augmented(vectors)
        w = np.ones(len(xa)) if weights is None else np.asarray(weights, dtype=np.float64)
        return cls((xa * w[:, None]).T @ xa, w @ xa, float(w.sum()))

    def plus(self, vectors: np.ndarray, weight: float) -> NegativeStats:
        """These rows added with `weight` each (a negative weight takes rows out)."""
        if not len(vectors):
            return self
        xa = _augmented(vectors)
        return NegativeStats(self.gram + weight * (xa.T @ xa), self.total + weight * xa.sum(axis=0),
                             self.weight + weight * len(xa))


def ridge_weights(positives: np.ndarray, negatives: NegativeStats, *, ridge: float = RIDGE) -> np.ndarray:
    """Weights (last one the intercept) of the class-balanced ridge classifier: positives +1, negatives -1,
    each class weighing 1/2 in total."""
    pa = _augmented(positives)
    cp, cn = 0.5 / len(pa), 0.5 / negatives.weight
    system = cp * (pa.T @ pa) + cn * negatives.gram
    system[np.arange(len(system) - 1), np.arange(len(system) - 1)] += ridge  # the intercept is not penalised
    return np.linalg.solve(system, cp * pa.sum(axis=0) - cn * negatives.total)


def train_scores(positives: np.ndarray, negatives: np.ndarray, targets: np.ndarray, *,
                 negative_weights: np.ndarray | None = None, ridge: float = RIDGE) -> np.ndarray:
    """Scores of `targets` under the classifier trained on positives vs negatives (rows are vectors)."""
    with one_blas_thread():
        w = ridge_weights(positives, NegativeStats.of(negatives, negative_weights), ridge=ridge)
        return (np.asarray(targets, dtype=np.float64) @ w[:-1] + w[-1]).astype(np.float32)


class Recommender:
    """Recommendations over one store and its search index."""

    def __init__(self, store: Any, index: VectorIndex | None, *, now: datetime | None = None,
                 seed: int = 0) -> None:
        self.store = store
        self.index = index
        self.now = now or datetime.now(UTC)
        self.seed = seed
        self.library = Library(store)
        self.mail = MailStore(store)
        self._ids: list[str] | None = None
        self._vectors: np.ndarray | None = None
        self._row: dict[str, int] = {}
        # The sample of "everything else" and its sums, shared by every user this recommender serves.
        self._sample: set[int] | None = None
        self._sample_stats: NegativeStats | None = None
        # The last candidate list resolved: a digest run asks for every subscriber among the same papers.
        self._pool: tuple[tuple[str, ...], list[str]] | None = None

    # ------------------------------------------------------------ vectors

    def _load(self) -> None:
        if self._ids is None:
            self._ids = list(self.index.all_ids()) if self.index is not None else []
            # The rows of exactly these ids: the index may grow between two calls.
            self._vectors = self.index.paper_vectors(self._ids) if self._ids else np.zeros((0, 1), np.float32)
            self._row = {pid: i for i, pid in enumerate(self._ids)}

    def _resolve(self, ids: Collection[str]) -> list[str]:
        """Stored ids (aliases followed) that the index knows, in order, without duplicates."""
        self._load()
        found = self.store.get_papers(list(ids))
        out: dict[str, None] = {}
        for pid in ids:
            paper = found.get(pid)
            if paper is not None and paper.id in self._row:
                out[paper.id] = None
        return list(out)

    def _negative_sample(self) -> tuple[set[int], NegativeStats]:
        if self._sample is None or self._sample_stats is None:
            assert self._vectors is not None
            count = len(self._vectors)
            rows = list(range(count)) if count <= MAX_SAMPLED_NEGATIVES else \
                random.Random(self.seed).sample(range(count), MAX_SAMPLED_NEGATIVES)
            with one_blas_thread():
                self._sample, self._sample_stats = set(rows), NegativeStats.of(self._vectors[sorted(rows)])
        return self._sample, self._sample_stats

    def _candidates(self, candidates: Collection[str]) -> list[str]:
        key = tuple(candidates)
        if self._pool is None or self._pool[0] != key:
            self._pool = (key, self._resolve(key))
        return self._pool[1]

    # ------------------------------------------------------------ public

    def excluded_for(self, user_id: int) -> set[str]:
        """Papers never to recommend to this user: saved, read, not relevant, already mailed."""
        ids = set(self.library.saved(user_id)) | set(self.library.marked(user_id, READ))
        ids |= set(self.library.marked(user_id, NOT_RELEVANT)) | self.mail.sent_papers_for_user(user_id)
        resolved = self.store.get_papers(list(ids))
        return ids | {p.id for p in resolved.values()}

    def for_user(self, user_id: int, *, tag: str | None = None, limit: int = 10,
                 candidates: Collection[str] | None = None, exclude: Collection[str] = ()) -> list[Recommendation]:
        """Best `limit` papers for a user (or one of their tags), optionally only among `candidates`."""
        positives = self.library.saved(user_id, tag)
        not_relevant = self.library.marked(user_id, NOT_RELEVANT)
        skip = self.excluded_for(user_id) | set(exclude)
        return self.rank(positives, not_relevant, limit=limit, candidates=candidates, exclude=skip)

    def rank(self, positives: Sequence[str], not_relevant: Sequence[str] = (), *, limit: int = 10,
             candidates: Collection[str] | None = None, exclude: Collection[str] = ()) -> list[Recommendation]:
        """The core: classifier over embeddings when there is something to learn, else trending."""
        pos = self._resolve(positives)
        skip = set(exclude) | set(positives) | set(pos) | set(not_relevant)
        if not pos:
            return self.trending(limit=limit, candidates=candidates, exclude=skip)
        assert self._ids is not None and self._vectors is not None
        pos_rows = [self._row[p] for p in pos]
        neg_rows = [self._row[p] for p in self._resolve(not_relevant) if p not in set(pos)]
        # The shared sample, less this user's positives and "not relevant" papers, which come back weighted.
        sample, stats = self._negative_sample()
        inside = sorted({r for r in pos_rows + neg_rows if r in sample})
        pool = [pid for pid in (self._candidates(candidates) if candidates is not None else self._ids)
                if pid not in skip]
        if not pool:
            return []
        pos_vectors = self._vectors[pos_rows]
        pool_vectors = self._vectors[[self._row[p] for p in pool]]
        with one_blas_thread():
            negatives = stats.plus(self._vectors[inside], -1.0).plus(self._vectors[neg_rows], NOT_RELEVANT_WEIGHT)
            if negatives.weight <= 0:
                return self.trending(limit=limit, candidates=candidates, exclude=skip)
            w = ridge_weights(pos_vectors, negatives)
            scores = pool_vectors.astype(np.float64) @ w[:-1] + w[-1]
        order = np.argsort(-scores, kind="stable")[:limit]
        chosen = [pool[i] for i in order]
        papers = self.store.get_papers(chosen + pos)
        # Why: cosine to each saved paper (rows are L2-normalised).
        sims = pool_vectors[order] @ pos_vectors.T
        out = []
        for rank_i, (pid, i) in enumerate(zip(chosen, order, strict=True)):
            nearest = np.argsort(-sims[rank_i], kind="stable")[:WHY_COUNT]
            why = [Reason(pos[j], papers[pos[j]].title if pos[j] in papers else pos[j], float(sims[rank_i][j]))
                   for j in nearest]
            if pid in papers:
                out.append(Recommendation(papers[pid], float(scores[i]), CLASSIFIER, why))
        return out

    def trending(self, *, limit: int = 10, candidates: Collection[str] | None = None,
                 exclude: Collection[str] = ()) -> list[Recommendation]:
        """Trending papers (votes with time decay) as /trending ranks them, or among `candidates`."""
        skip = set(exclude)
        if candidates is not None:
            unique = {p.id: p for p in self.store.get_papers(list(candidates)).values()}
            papers = [p for p in unique.values() if p.id not in skip]
        else:
            found = trending_candidates(Listings(self.store), self.now.date().isoformat(), limit + len(skip))
            papers = [p for p in found if p.id not in skip]
        votes = Accounts(self.store).local_votes([p.id for p in papers])
        ranked = rank_trending(papers, votes, now=self.now)[:limit]
        return [Recommendation(r.paper, r.score, TRENDING) for r in ranked]
