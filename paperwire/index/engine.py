"""The search index of a home: BM25 and embeddings kept in step with the store, fused at query time.

On disk (HOME/index/):
  manifest.json   which generation is current, the store rev it covers, the rev up to which every
                  paper also has a vector (dense_rev), the embedder that built it
  gen-NNNNNN/     lexical/ and dense/ of one generation; a new one is written, then the manifest
                  switches to it (os.replace), then older generations are removed. A crash at any
                  point leaves the previous generation in force and `verify` reports the lag.
The index follows the store's `rev` counter: everything with a higher rev is (re)indexed.
A server on a home without an index indexes the words first (seconds) and answers lexically while the
vectors are made, a checkpoint at a time; hybrid search fuses the two once every paper has its vector.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from paperwire.index.dense import DenseIndex
from paperwire.index.embed import (
    EmbeddingCache,
    LazyEmbedder,
    embed_papers,
    embed_texts_alongside,
    text_for_embedding,
)
from paperwire.index.embed_worker import EmbeddingWorker, worth_it
from paperwire.index.fusion import dense_weight, fuse, lexical_depth
from paperwire.index.lexical import LexicalIndex, remove_stale_spills
from paperwire.index.query import ParsedQuery, QueryError, day_bound, parse_query
from paperwire.index.snippets import snippets
from paperwire.model import Paper, canonical_id
from paperwire.sources.parallel import available_cores
from paperwire.store import PaperNotFound, Store

MANIFEST_FORMAT = 1
MODES = ("hybrid", "lexical", "semantic")
MAX_LIMIT = 100
MAX_OFFSET = 1000
# Below this many papers the first build embeds with MiniLM (about 30 papers/s on 2 cores);
# above it with the distilled static model (thousands per second). Recorded in the manifest.
STATIC_EMBEDDER_ABOVE = 20_000
UPDATE_BATCH = 5000
# Papers embedded between two saves when vectors are made after the words (a kill loses at most this).
EMBED_CHECKPOINT = 2000
# Title overlap adds at most this to a neighbour's cosine: it orders neighbours that are this close,
# no further (at 100k papers, adjacent neighbours are about 0.001 apart).
SIMILAR_TIE_BREAK = 0.002
_side_threads: ThreadPoolExecutor | None = None
_side_lock = threading.Lock()


def _side_pool() -> ThreadPoolExecutor:
    """Threads that run hybrid queries' lexical side, one per core (more would only queue on the GIL)."""
    global _side_threads
    with _side_lock:
        if _side_threads is None:
            _side_threads = ThreadPoolExecutor(available_cores(), thread_name_prefix="paperwire-search")
        return _side_threads


def _forget_side_pool() -> None:
    """In a forked child: the parent's pool has no threads behind it there, and its lock may be held."""
    global _side_threads, _side_lock
    _side_threads, _side_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_side_pool)


@dataclass
class Hit:
    id: str
    title: str
    score: float
    snippet: str
    paper: Paper

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "score": round(self.score, 6), "snippet": self.snippet,
                "authors": self.paper.authors, "listed_on": self.paper.listed_on}


@dataclass
class VerifyReport:
    ok: bool
    store_papers: int
    indexed_papers: int
    store_rev: int
    index_rev: int
    vectors: int = 0  # indexed papers that have a vector
    embedder: str = ""
    missing: list[str] = field(default_factory=list)  # in the store, not in the index
    extra: list[str] = field(default_factory=list)  # in the index, not in the store
    problems: list[str] = field(default_factory=list)
    # per embedder, what the last `index embed` job recorded: {"papers": n, "covered": m, "at": epoch s}
    embedders: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "store_papers": self.store_papers, "indexed_papers": self.indexed_papers,
                "store_rev": self.store_rev, "index_rev": self.index_rev,
                "coverage": {"embedder": self.embedder, "vectors": self.vectors, "papers": self.indexed_papers,
                             "embedders": self.embedders},
                "missing": self.missing[:20],
                "extra": self.extra[:20], "problems": self.problems}


def _has_constraints(parsed: ParsedQuery) -> bool:
    """Whether the query restricts which papers may match (beyond ranking by its words)."""
    return bool(parsed.phrases or parsed.excluded or parsed.fields or parsed.date_from or parsed.date_to)


def index_dir(home: Path) -> Path:
    return home / "index"


COVERAGE_FILE = "coverage.json"


def read_coverage(home: Path) -> dict[str, Any]:
    """What embedding jobs recorded: {embedder name: {"papers": n, "covered": m, "at": epoch s}}."""
    try:
        data = json.loads((index_dir(home) / COVERAGE_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / "manifest.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if data.get("format") == MANIFEST_FORMAT else None


def vector_coverage(home: Path) -> dict[str, dict[str, Any]]:
    """Papers with a vector, per embedder, without loading the index: the saved index's own (from its
    manifest) and what embedding jobs recorded for other embedders."""
    coverage = {name: {"papers": int(c.get("papers", 0)), "covered": int(c.get("covered", 0))}
                for name, c in read_coverage(home).items()}
    manifest = _read_manifest(index_dir(home))
    if manifest:
        papers = int(manifest.get("papers", 0))
        coverage[manifest["embedder"]] = {"papers": papers, "covered": int(manifest.get("vectors", papers)),
                                          "index": True}
    return coverage


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@contextmanager
def _write_lock(directory: Path) -> Iterator[None]:
    """One writer per index directory across processes (CLI ingest next to a running server)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def vector_job(directory: Path) -> Iterator[bool]:
    """Whether this process may make the missing vectors of an index: one process of a home does
    (several server workers, or a server next to `index embed`); the others get False at once."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "vectors.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class SearchIndex:
    """Lexical + dense indexes of one home. Searches may run from many threads; updates are serialised."""

    def __init__(self, home: Path, store: Store, *, embedder_kind: str) -> None:
        self.home = home
        self.store = store
        self.directory = index_dir(home)
        self.embedder_kind = embedder_kind
        self.embedder = LazyEmbedder(embedder_kind, home)
        self.cache = EmbeddingCache(self.directory / "embeddings.sqlite3")
        self.lexical = LexicalIndex()
        self.lexical.spill_dir = self.directory  # big merges go through files here, not memory
        self.dense = DenseIndex(self.embedder.dim, self.embedder.name)
        self.rev = 0
        self.dense_rev = 0  # every paper indexed up to this store rev has its vector
        self.generation = 0
        self.parallel = available_cores() > 1  # hybrid queries run their two retrievers side by side
        self._lock = threading.RLock()

    # ------------------------------------------------------------ persistence

    def _load(self, manifest: dict[str, Any]) -> None:
        gen_dir = self.directory / manifest["generation_dir"]
        self.lexical = LexicalIndex.load(gen_dir / "lexical")
        self.lexical.spill_dir = self.directory
        self.dense = DenseIndex.load(gen_dir / "dense", expected_embedder=self.embedder.name)
        self.rev = int(manifest["rev"])
        self.dense_rev = min(int(manifest.get("dense_rev", self.rev)), self.rev)
        self.generation = int(manifest["generation"])

    def save(self, *, force: bool = False) -> None:
        """Write a new generation, switch the manifest to it, drop the older ones.

        `force` saves even when the manifest already claims this rev (a rebuild replaces a damaged index)."""
        with self._lock, _write_lock(self.directory):
            on_disk = _read_manifest(self.directory)
            if (not force and on_disk and int(on_disk["rev"]) >= self.rev
                    and int(on_disk.get("dense_rev", on_disk["rev"])) >= self.dense_rev
                    and on_disk.get("embedder") == self.embedder.name):
                return  # another process already saved this much
            generation = max(self.generation, int(on_disk["generation"]) if on_disk else 0) + 1
            name = f"gen-{generation:06d}"
            gen_dir = self.directory / name
            shutil.rmtree(gen_dir, ignore_errors=True)
            self.lexical.save(gen_dir / "lexical")
            self.dense.save(gen_dir / "dense")
            _write_json_atomic(self.directory / "manifest.json", {
                "format": MANIFEST_FORMAT, "generation": generation, "generation_dir": name, "rev": self.rev,
                "dense_rev": self.dense_rev, "papers": len(self.lexical), "vectors": len(self.dense),
                "embedder": self.embedder.name,
                "embedder_kind": self.embedder_kind,
            })
            self.generation = generation
            for old in self.directory.glob("gen-*"):
                if old.name != name:
                    shutil.rmtree(old, ignore_errors=True)

    def partial_generations(self) -> list[str]:
        """Generation directories the manifest does not name: what a save killed midway left behind."""
        on_disk = _read_manifest(self.directory)
        current = on_disk["generation_dir"] if on_disk else None
        return sorted(p.name for p in self.directory.glob("gen-*") if p.name != current)

    def remove_partial_generations(self) -> list[str]:
        """Remove leftovers of interrupted saves (under the write lock, so never a save in progress)."""
        with _write_lock(self.directory):
            leftovers = self.partial_generations()
            for name in leftovers:
                shutil.rmtree(self.directory / name, ignore_errors=True)
        return leftovers

    # ------------------------------------------------------------ keeping up with the store

    def pending(self) -> int:
        """Store writes the index has not seen yet."""
        return max(0, self.store.max_rev() - self.rev)

    @property
    def revision(self) -> tuple[int, int, str]:
        """Changes whenever results may change: new words indexed, more papers with vectors, or vectors
        of another embedder."""
        return (self.rev, self.dense_rev, self.embedder.name)

    @property
    def vectors_complete(self) -> bool:
        """Whether every indexed paper has its vector (else hybrid search is lexical for now)."""
        return self.dense_rev >= self.rev

    def update_words(self) -> int:
        """Index the words of every paper written since the last update, leaving their vectors to
        `embed_pending`: seconds where embedding takes minutes. Returns how many were indexed."""
        with self._lock:
            done = 0
            last_rev = self.rev
            with self.lexical.bulk():
                for batch, through in self._new_batches():
                    self.lexical.add(batch)
                    done += len(batch)
                    last_rev = through
            self.rev = last_rev
            return done

    def _new_batches(self) -> Iterator[tuple[list[Paper], int]]:
        """Papers written after the loaded rev, UPDATE_BATCH at a time, each with the rev of its last paper.
        Ids these papers were known by before (re-keyed to their arXiv id) leave the index first; a build
        from nothing has none to drop (the store lists papers under their current ids only)."""
        batch: list[Paper] = []
        last_rev = self.rev
        drop_aliases = self.rev > 0
        for rev, paper in self.store.iter_papers(after_rev=self.rev):
            batch.append(paper)
            last_rev = rev
            if len(batch) >= UPDATE_BATCH:
                if drop_aliases:
                    self._drop_aliases(batch)
                yield batch, last_rev
                batch = []
        if batch:
            if drop_aliases:
                self._drop_aliases(batch)
            yield batch, last_rev

    def _drop_aliases(self, papers: list[Paper]) -> None:
        old_ids = self.store.aliases_of([p.id for p in papers])
        if old_ids:  # unknown ids are ignored by both indexes
            self.lexical.remove(old_ids)
            self.dense.remove(old_ids)

    def embed_pending(self, *, limit: int | None = None, progress: bool = False) -> int:
        """Vectors for indexed papers that lack them, oldest write first, at most `limit` papers
        (None: all); the caller saves (a checkpoint). Returns how many were embedded."""
        with self._lock:
            if self.vectors_complete:
                return 0
            done = 0
            bar = _progress(progress, max(0, self.rev - self.dense_rev) if limit is None else limit)
            try:
                batch: list[Paper] = []
                for rev, paper in self.store.iter_papers(after_rev=self.dense_rev):
                    if rev > self.rev:
                        break  # written after the words were indexed: the next update takes both
                    batch.append(paper)
                    if len(batch) >= 256 or (limit is not None and done + len(batch) >= limit):
                        self._embed_batch(batch, rev)
                        done += len(batch)
                        bar(len(batch))
                        batch = []
                        if limit is not None and done >= limit:
                            return done
                if batch:
                    self._embed_batch(batch, self.rev)
                    done += len(batch)
                    bar(len(batch))
                self.dense_rev = self.rev
                return done
            finally:
                bar(0, close=True)

    def _embed_batch(self, papers: list[Paper], through_rev: int) -> None:
        vectors = embed_papers(self.embedder, papers, self.cache)
        self.dense.add([p.id for p in papers], vectors)
        self.dense_rev = through_rev

    def update(self, *, progress: bool = False, save: bool = True) -> int:
        """Index every paper written since the last update; returns how many were (re)indexed."""
        with self._lock:
            if not self.vectors_complete:
                self.embed_pending(progress=progress)
            total = self.pending()
            if not total:
                if save:
                    self.save()  # what embed_pending made
                return 0
            done = 0
            bar = _progress(progress, total)
            remove_stale_spills(self.directory)
            # Room for every new vector at once: growing by copies would hold two matrices at the end.
            self.dense.reserve(min(total, self.store.count_papers()))
            worker = EmbeddingWorker(self.embedder_kind, self.home) if worth_it(total, self.embedder_kind) else None
            try:
                last_rev = self.rev
                with self.lexical.bulk():  # one merge of the lexical delta at the end, before saving
                    for batch, through in self._new_batches():
                        self._index_batch(batch, worker)
                        done += len(batch)
                        bar(len(batch))
                        last_rev = through
                self.rev = self.dense_rev = last_rev
            finally:
                bar(0, close=True)
                if worker is not None:
                    worker.close()
            if save:
                self.save()
            return done

    def _index_batch(self, papers: list[Paper], worker: EmbeddingWorker | None = None) -> None:
        if worker is None:
            vectors = embed_papers(self.embedder, papers, self.cache)
            self.lexical.add(papers)
        else:  # the worker embeds while this process analyses the words
            vectors = embed_texts_alongside(self.embedder, [text_for_embedding(p) for p in papers], self.cache,
                                            worker.submit, lambda: self.lexical.add(papers))
        self.dense.add([p.id for p in papers], vectors)

    def _newer_on_disk(self) -> dict[str, Any] | None:
        """The saved manifest, if it covers more than what is loaded (more papers, or more vectors), or if
        it is a newer generation of another embedder (an embedding job switched the index)."""
        on_disk = _read_manifest(self.directory)
        if not on_disk:
            return None
        if on_disk.get("embedder") != self.embedder.name:
            return on_disk if int(on_disk["generation"]) > self.generation and on_disk.get("embedder_kind") else None
        rev, dense_rev = int(on_disk["rev"]), int(on_disk.get("dense_rev", on_disk["rev"]))
        if rev > self.rev or (rev == self.rev and dense_rev > self.dense_rev):
            return on_disk
        return None

    def _adopt(self, on_disk: dict[str, Any], embedder: LazyEmbedder | None = None) -> None:
        """Load the generation `on_disk` names (under the lock), taking its embedder when it is another:
        from then on queries are embedded by the model that made the loaded vectors."""
        if on_disk.get("embedder") != self.embedder.name:
            kind = str(on_disk["embedder_kind"])
            embedder = embedder if embedder is not None and embedder.kind == kind else LazyEmbedder(kind, self.home)
            self.embedder_kind, self.embedder = kind, embedder
        self._load(on_disk)

    def reload(self) -> bool:
        """Load a newer generation that another process (an ingest, a vector job) saved; never indexes
        here. Searches keep using the loaded generation until the new one is in place, and when the new
        one is of another embedder, until that model is loaded too."""
        on_disk = self._newer_on_disk()
        if on_disk is None:
            return False
        embedder = None
        if on_disk.get("embedder") != self.embedder.name:
            embedder = LazyEmbedder(str(on_disk["embedder_kind"]), self.home)
            embedder.load()  # outside the lock: searches go on with the loaded generation meanwhile
        with self._lock:
            on_disk = self._newer_on_disk()
            if on_disk is None:
                return False
            self._adopt(on_disk, embedder)
            return True

    def refresh(self) -> None:
        """Cheap when nothing changed; otherwise pick up new papers (from disk if another process saved).
        While vectors are still being made for older papers, only the new papers' words are indexed
        here (their vectors follow with the rest), so a refresh never waits behind that backlog."""
        if not self.pending():
            return
        self.reload()
        with self._lock:
            if self.vectors_complete:
                self.update(save=False)
            else:
                self.update_words()

    def verify(self) -> VerifyReport:
        """Compare the index with the store: same papers, caught up, lexical and dense agree."""
        store_ids = set(self.store.paper_ids())
        lexical_ids = set(self.lexical.ids())
        dense_ids = set(self.dense.ids())
        store_rev = self.store.max_rev()
        problems = []
        on_disk = _read_manifest(self.directory)
        if on_disk is None:
            problems.append("no saved index (manifest missing or unreadable)")
        elif int(on_disk["rev"]) != self.rev:
            problems.append(f"saved index covers rev {on_disk['rev']}, loaded {self.rev}")
        if self.rev < store_rev:
            problems.append(f"index is behind the store: rev {self.rev} < {store_rev}")
        if self.vectors_complete and lexical_ids != dense_ids:
            problems.append(f"lexical ({len(lexical_ids)}) and dense ({len(dense_ids)}) hold different papers")
        elif not dense_ids <= lexical_ids:
            problems.append(f"{len(dense_ids - lexical_ids)} papers have vectors but are not indexed")
        leftovers = self.partial_generations()
        if leftovers:
            problems.append(f"{len(leftovers)} partial generation(s) left by an interrupted save: "
                            f"{', '.join(leftovers)} (`paperwire index update` removes them)")
        missing = sorted(store_ids - lexical_ids)
        extra = sorted(lexical_ids - store_ids)
        if missing:
            problems.append(f"{len(missing)} stored papers are not indexed")
        if extra:
            problems.append(f"{len(extra)} indexed papers are not in the store")
        return VerifyReport(not problems, len(store_ids), len(lexical_ids), store_rev, self.rev,
                            len(dense_ids & lexical_ids), self.embedder.name, missing, extra, problems,
                            read_coverage(self.home))

    # ------------------------------------------------------------ queries

    def search(self, query: str, *, limit: int = 10, offset: int = 0, mode: str = "hybrid",
               categories: list[str] | None = None, date_from: str | None = None,
               date_to: str | None = None, snippets: bool = True) -> list[Hit]:
        """Best first. `snippets=False` skips the query-centred snippets (hits then carry the
        abstract's opening) for callers that show whole abstracts, such as the JSON API."""
        if mode not in MODES:
            raise QueryError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        if not 1 <= limit <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}")
        if not 0 <= offset <= MAX_OFFSET:
            raise QueryError(f"offset must be between 0 and {MAX_OFFSET}")
        parsed = parse_query(query)
        if (mode == "hybrid" and not self.vectors_complete) or (mode == "semantic" and not len(self.dense)):
            mode = "lexical"  # vectors are still being made: the words answer meanwhile
        date_from = day_bound(date_from, end=False, where="the from date")
        date_to = day_bound(date_to, end=True, where="the until date")
        depth = max(100, 2 * (limit + offset))
        filters = {"categories": categories, "date_from": date_from, "date_to": date_to}
        lexical: list[tuple[str, float]] = []
        dense: list[tuple[str, float]] = []
        weight = dense_weight(self.embedder_kind, len(self.lexical))
        if mode == "hybrid" and weight <= 0:
            mode = "lexical"  # at this size the dense side only takes away (see fusion.WEIGHT_BY_SIZE)
        if mode == "hybrid":
            lexical_wanted = lexical_depth(limit + offset, weight, ceiling=depth)
        else:
            lexical_wanted = limit + offset
        shown = parsed if snippets else None
        prepared: dict[str, tuple[Paper, str]] = {}
        if mode == "hybrid" and self.parallel and parsed.text.strip():
            # Side by side: BM25 on a second thread, which then also fetches and snippets its own top
            # papers (most of them end up shown), while this thread runs the longer dense search. numpy,
            # faiss and SQLite release the GIL for their heavy parts; the lexical side finishes first, so
            # this thread never waits to be woken.
            lexical_side = _side_pool().submit(self._lexical_with_hits, parsed, lexical_wanted, filters,
                                               limit if offset == 0 else 0, shown)
            dense = self._dense_search(parsed, depth, filters)
            lexical, prepared = lexical_side.result()
        else:
            if mode in ("hybrid", "semantic") and parsed.text.strip():
                dense = self._dense_search(parsed, depth, filters)
            if mode in ("hybrid", "lexical") or parsed.arxiv_id:
                lexical = self.lexical.search(parsed, lexical_wanted, **filters)
        if mode == "lexical":
            ranked = lexical
        elif mode == "semantic":
            ranked = dense
            if parsed.arxiv_id and lexical and lexical[0][0] == canonical_id(parsed.arxiv_id):
                ranked = [lexical[0], *[r for r in dense if r[0] != lexical[0][0]]]
        else:
            ranked = fuse(lexical, dense, dense_weight=weight)
            if parsed.arxiv_id and lexical and lexical[0][0] == canonical_id(parsed.arxiv_id):
                ranked = [(lexical[0][0], ranked[0][1] + 1.0 if ranked else 1.0),
                          *[r for r in ranked if r[0] != lexical[0][0]]]
        return self._hits(ranked[offset:offset + limit], shown, prepared)

    def _lexical_with_hits(self, parsed: ParsedQuery, depth: int, filters: dict[str, Any], show: int,
                           shown: ParsedQuery | None) -> tuple[list[tuple[str, float]], dict[str, tuple[Paper, str]]]:
        """The lexical ranking, and the papers and snippets of its first `show` hits."""
        ranked = self.lexical.search(parsed, depth, **filters)
        return ranked, {hit.id: (hit.paper, hit.snippet) for hit in self._hits(ranked[:show], shown)}

    def _dense_search(self, parsed: ParsedQuery, depth: int, filters: dict[str, Any]) -> list[tuple[str, float]]:
        vector = self.embed_query(parsed.text)
        if not _has_constraints(parsed) and not any(filters.values()):
            return self.dense.search(vector, depth)
        # Constraints (phrases, exclusions, fields, categories, dates) are decided by the lexical
        # index; the dense side ranks only papers that satisfy them.
        allowed = {pid for pid, _ in self.lexical.search(dataclasses.replace(parsed, terms=[]), 100_000, **filters)}
        if not allowed:
            return []
        return self.dense.search(vector, depth, allowed=allowed.__contains__)

    def similar(self, paper_id: str, *, limit: int = 10, snippets: bool = True) -> list[Hit]:
        """Embedding neighbours, never the paper itself; lexical overlap with its title breaks near-ties.
        `snippets=False`: hits carry the abstract's opening instead of a title-centred snippet."""
        if not 1 <= limit <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}")
        paper = self.store.get_paper(canonical_id(paper_id))
        vector = self.dense.vector(paper.id)
        if vector is None:
            vector = embed_papers(self.embedder, [paper], self.cache)[0]
        neighbours = self.dense.search(vector, limit * 3 + 1, exclude={paper.id})
        if not neighbours:
            return []
        # Only the candidates (and the paper itself, the usual best match of its own title, which sets
        # the scale) are scored lexically: the tie-break needs nothing from the rest of the corpus.
        try:
            title_query: ParsedQuery | None = parse_query(paper.title)
        except QueryError:
            title_query = None
        overlap = self.lexical.scores(title_query, [paper.id, *(pid for pid, _ in neighbours)]) if title_query else {}
        top = max(overlap.values(), default=0.0) or 1.0
        rescored = [(pid, cos + SIMILAR_TIE_BREAK * overlap.get(pid, 0.0) / top)
                    for pid, cos in neighbours if pid != paper.id]
        rescored.sort(key=lambda item: item[1], reverse=True)
        return self._hits(rescored[:limit], title_query if any(overlap.values()) and snippets else None)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embedder.encode([text])[0]

    def _hits(self, ranked: list[tuple[str, float]], parsed: ParsedQuery | None,
              prepared: dict[str, tuple[Paper, str]] | None = None) -> list[Hit]:
        """Hits for ranked ids; `prepared` holds papers and snippets already made for some of them."""
        prepared = prepared or {}
        papers = self.store.get_papers([pid for pid, _ in ranked if pid not in prepared])
        papers.update((pid, paper) for pid, (paper, _) in prepared.items())
        # papers deleted from the store since they were indexed are left out
        found = [(papers[pid], score) for pid, score in ranked if pid in papers]
        missing = [paper for paper, _ in found if paper.id not in prepared]
        made = snippets(missing, parsed) if parsed else [p.abstract[:240] for p in missing]
        texts = dict(zip((p.id for p in missing), made, strict=True))
        texts.update((pid, text) for pid, (_, text) in prepared.items())
        return [Hit(paper.id, paper.title, float(score), texts[paper.id], paper) for paper, score in found]

    # ------------------------------------------------------------ vectors for ranking

    def all_ids(self) -> list[str]:
        return self.dense.ids()

    def all_vectors(self) -> np.ndarray:
        return self.dense.vectors(self.dense.ids())

    def paper_vectors(self, ids: list[str]) -> np.ndarray:
        return self.dense.vectors(ids)


def _progress(enabled: bool, total: int, label: str = "index"):  # type: ignore[no-untyped-def]
    """A rich progress callback, or a no-op."""
    if not enabled:
        return lambda n, close=False: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        transient=True)
    task = progress.add_task("index", total=total)
    progress.start()

    def advance(n: int, close: bool = False) -> None:
        progress.advance(task, n)
        if close:
            progress.stop()

    return advance


def choose_embedder(store: Store, requested: str | None = None) -> str:
    if requested:
        return requested
    env = os.environ.get("PAPERWIRE_EMBEDDER")
    if env:
        return env
    return "static" if store.count_papers() > STATIC_EMBEDDER_ABOVE else "minilm"


def open_index(home: Path, store: Store, *, embedder: str | None = None, progress: bool = False,
               catch_up: bool = True) -> SearchIndex:
    """The home's index, loaded from disk (or built) and caught up with the store.

    An index built by another embedder than the one requested is rebuilt, never mixed.
    """
    manifest = _read_manifest(index_dir(home))
    kind = embedder or (manifest or {}).get("embedder_kind") or choose_embedder(store)
    index = SearchIndex(home, store, embedder_kind=kind)
    if manifest and manifest.get("embedder") == index.embedder.name:
        try:
            index._load(manifest)
        except (OSError, ValueError, KeyError) as exc:
            # A damaged generation: start again from the store, which is the truth.
            index = SearchIndex(home, store, embedder_kind=kind)
            index.load_error = str(exc)  # type: ignore[attr-defined]
    if catch_up:
        index.update(progress=progress)
    return index


def rebuild_index(home: Path, store: Store, *, embedder: str | None = None, progress: bool = False) -> SearchIndex:
    """A fresh index from the store (embeddings of unchanged text come from the cache)."""
    manifest = _read_manifest(index_dir(home))
    kind = embedder or (manifest or {}).get("embedder_kind") or choose_embedder(store)
    index = SearchIndex(home, store, embedder_kind=kind)
    index.update(progress=progress, save=False)
    index.save(force=True)
    return index


def index_exists(home: Path) -> bool:
    return _read_manifest(index_dir(home)) is not None


def update_after_ingest(home: Path, store: Store, *, progress: bool = False) -> int:
    """Keep an existing index in step after an ingest. A home without one builds it on first search."""
    if not index_exists(home):
        return 0
    index = open_index(home, store, progress=progress, catch_up=False)
    return index.update(progress=progress)


__all__ = ["index_exists", "Hit", "QueryError", "SearchIndex", "VerifyReport", "open_index", "rebuild_index",
           "update_after_ingest", "PaperNotFound", "MODES", "MAX_LIMIT"]
