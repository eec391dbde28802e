"""Personal recommendations: a linear classifier per user (or per tag) over paper embeddings.

Positives are the papers saved (under the tag); negatives are the papers marked "not relevant"
plus a sample of everything else, as arxiv-sanity does with all papers. The classifier's margin
ranks the rest. A recommendation says why: the saved papers nearest to it. With nothing saved
there is nothing to learn, and the list falls back to trending.

bench/recommend.py compares this with trending-only and random lists (BENCHMARKS.md).
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from paperwire.model import Paper
from paperwire.rank.trending import TRENDING_WINDOW_DAYS, rank_trending, window
from paperwire.store.accounts import Accounts
from paperwire.store.library import NOT_RELEVANT, READ, Library
from paperwire.store.mail import MailStore

CLASSIFIER, TRENDING = "classifier", "trending"
# Enough sampled negatives to outline "everything else"; more only costs training time.
MAX_SAMPLED_NEGATIVES = 4000
C = 0.1  # weak regularisation: like arxiv-sanity-lite's SVM; the benchmark agrees across 0.01-1
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


def train_scores(positives: np.ndarray, negatives: np.ndarray, targets: np.ndarray, *,
                 negative_weights: np.ndarray | None = None, c: float = C) -> np.ndarray:
    """Margins of `targets` under a linear SVM trained on positives vs negatives (rows are vectors)."""
    from sklearn.svm import LinearSVC

    x = np.vstack([positives, negatives]).astype(np.float32, copy=False)
    y = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
    weights = np.concatenate([np.ones(len(positives)),
                              negative_weights if negative_weights is not None else np.ones(len(negatives))])
    model = LinearSVC(C=c, class_weight="balanced", max_iter=10_000, tol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ConvergenceWarning on tiny sets changes nothing useful
        model.fit(x, y, sample_weight=weights)
    return targets @ model.coef_[0].astype(np.float32) + float(model.intercept_[0])


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
        # The last candidate list resolved: a digest run asks for every subscriber among the same papers.
        self._pool: tuple[tuple[str, ...], list[str]] | None = None

    # ------------------------------------------------------------ vectors

    def _load(self) -> None:
        if self._ids is None:
            self._ids = list(self.index.all_ids()) if self.index is not None else []
            self._vectors = self.index.all_vectors() if self._ids else np.zeros((0, 1), np.float32)
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
        return self.rank(positives, not_relevant, limit=limit, candidates=candidates, exclude=skip,
                         seed=self.seed + user_id)

    def rank(self, positives: Sequence[str], not_relevant: Sequence[str] = (), *, limit: int = 10,
             candidates: Collection[str] | None = None, exclude: Collection[str] = (),
             seed: int = 0) -> list[Recommendation]:
        """The core: classifier over embeddings when there is something to learn, else trending."""
        pos = self._resolve(positives)
        skip = set(exclude) | set(positives) | set(pos) | set(not_relevant)
        if not pos:
            return self.trending(limit=limit, candidates=candidates, exclude=skip)
        assert self._ids is not None and self._vectors is not None
        neg_ids = [pid for pid in self._resolve(not_relevant) if pid not in set(pos)]
        others = [pid for pid in self._ids if pid not in skip]
        rng = random.Random(seed)
        sampled = others if len(others) <= MAX_SAMPLED_NEGATIVES else rng.sample(others, MAX_SAMPLED_NEGATIVES)
        pos_vectors = self._vectors[[self._row[p] for p in pos]]
        negatives = neg_ids + sampled
        if not negatives:
            return self.trending(limit=limit, candidates=candidates, exclude=skip)
        neg_vectors = self._vectors[[self._row[p] for p in negatives]]
        # An explicit "not relevant" says more than a random paper.
        weights = np.array([3.0] * len(neg_ids) + [1.0] * len(sampled), dtype=np.float32)
        pool = [pid for pid in (self._candidates(candidates) if candidates is not None else self._ids)
                if pid not in skip]
        if not pool:
            return []
        pool_vectors = self._vectors[[self._row[p] for p in pool]]
        scores = train_scores(pos_vectors, neg_vectors, pool_vectors, negative_weights=weights)
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
        """Trending papers (votes with time decay) of the recent listing window, or among `candidates`."""
        skip = set(exclude)
        if candidates is not None:
            unique = {p.id: p for p in self.store.get_papers(list(candidates)).values()}
            papers = [p for p in unique.values() if p.id not in skip]
        else:
            days = self.store.listing_days()
            if not days:
                return []
            first, last = window(days[-1][0], TRENDING_WINDOW_DAYS)
            papers = [p for p in self.store.papers_listed_between(first, last) if p.id not in skip]
        votes = Accounts(self.store).local_votes([p.id for p in papers])
        ranked = rank_trending(papers, votes, now=self.now)[:limit]
        return [Recommendation(r.paper, r.score, TRENDING) for r in ranked]
