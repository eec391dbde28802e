"""Search: BM25 over fields, sentence embeddings with an ANN index, fused; kept in step with the store.

Names are imported on first use so that `paperwire.index.lexical` and friends load without the
embedding stack."""

from __future__ import annotations

from typing import Any

_ENGINE_NAMES = {"MAX_LIMIT", "MODES", "Hit", "SearchIndex", "VerifyReport", "open_index", "rebuild_index",
                 "update_after_ingest", "index_exists"}

__all__ = sorted(_ENGINE_NAMES | {"QueryError"})


def __getattr__(name: str) -> Any:
    if name in _ENGINE_NAMES:
        from paperwire.index import engine

        return getattr(engine, name)
    if name == "QueryError":
        from paperwire.index.query import QueryError

        return QueryError
    raise AttributeError(name)
