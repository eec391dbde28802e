"""A server of a home indexed with the static model makes MiniLM vectors in its idle time (a niced
`paperwire index embed` process), then switches its search to them without a restart."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
from conftest import copy_home
from web_server import serve_app

from paperwire.index.embed import MINILM_NAME, STATIC_NAME, EmbeddingCache, text_for_embedding, text_key
from paperwire.index.engine import index_dir
from paperwire.model import Paper
from paperwire.store import open_store
from paperwire.web import background_embed

IN_BACKGROUND = {"PAPERWIRE_EMBED_IN_BACKGROUND": "1", "PAPERWIRE_EMBED_FIRST_CHECK_SECONDS": "0.2"}


def _health(base: str) -> dict:
    return httpx.get(f"{base}/healthz", timeout=30).json()


def _a_paper(home: Path) -> tuple[str, str]:
    store = open_store(home, readonly=True)
    try:
        paper = next(p for _, p in store.iter_papers() if len(p.title.split()) >= 5)
        return paper.id, paper.title
    finally:
        store.close()


def test_server_switches_to_minilm_made_in_the_background(static_home: Path) -> None:
    paper_id, title = _a_paper(static_home)
    with serve_app(static_home, IN_BACKGROUND) as (base, app):
        before = _health(base)
        assert before["index"]["embedder"] == STATIC_NAME
        # Search answers with the static vectors while the job runs.
        hits = httpx.get(f"{base}/api/papers/search", params={"q": title, "mode": "semantic"}, timeout=60).json()
        assert hits and hits[0]["paper"]["id"] == paper_id

        service = background_embed.service(app.state.site)
        deadline = time.monotonic() + 300
        while service.last_result is None or _health(base)["index"]["embedder"] != MINILM_NAME:
            assert time.monotonic() < deadline, f"no switch to MiniLM: {_health(base)}"
            time.sleep(0.5)
        assert service.last_result["switched"] is True and service.process.returncode == 0
        after = _health(base)
        assert after["index"]["vectors_complete"]
        assert after["vectors"][MINILM_NAME]["covered"] == after["papers"]

        # The server now embeds queries with MiniLM: its vectors are MiniLM's, read back from the cache.
        index = app.state.site.index()
        assert index.embedder.name == MINILM_NAME and index.dense.embedder_name == MINILM_NAME
        text = text_for_embedding(_paper(static_home, paper_id))
        cache = EmbeddingCache(index_dir(static_home) / "embeddings.sqlite3")
        try:
            cached = cache.get_many(MINILM_NAME, [text_key(text)], 384)[text_key(text)].astype(np.float32)
        finally:
            cache.close()
        query = index.embedder.encode([text])[0]
        assert float(np.dot(query, cached) / np.linalg.norm(cached)) > 0.999
        hits = httpx.get(f"{base}/api/papers/search", params={"q": title, "mode": "semantic", "limit": 5},
                         timeout=60).json()
        assert [h["paper"]["id"] for h in hits] == [h.id for h in index.search(title, mode="semantic", limit=5)]
        assert paper_id in [h["paper"]["id"] for h in hits]


def _paper(home: Path, paper_id: str) -> Paper:
    store = open_store(home, readonly=True)
    try:
        return store.get_papers([paper_id])[paper_id]
    finally:
        store.close()


def test_no_job_where_the_index_already_has_minilm_or_it_is_off(seed_home: Path, static_home: Path,
                                                               tmp_path: Path) -> None:
    with serve_app(copy_home(seed_home, tmp_path / "minilm"), IN_BACKGROUND) as (_base, app):
        service = background_embed.service(app.state.site)
        assert app.state.site.index().embedder.name == MINILM_NAME
        assert not service.due() and service.run_if_due() is None
    with serve_app(static_home, {"PAPERWIRE_EMBED_IN_BACKGROUND": "0"}) as (_base, app):
        service = background_embed.service(app.state.site)
        assert not service.enabled() and service.thread is None
