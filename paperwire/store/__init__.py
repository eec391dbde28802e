"""Where papers live. `open_store` picks the backend; callers see only the Store interface."""

from __future__ import annotations

from pathlib import Path

from paperwire.config import load_config
from paperwire.store.base import ADDED, UNCHANGED, UPDATED, DatabaseUnavailable, PaperNotFound, Store, UpsertResult
from paperwire.store.sqlite import SQLiteStore

DATABASE_NAME = "paperwire.sqlite3"
DATABASE_URL_KEY = "PAPERWIRE_DATABASE_URL"

__all__ = ["ADDED", "UNCHANGED", "UPDATED", "DatabaseUnavailable", "PaperNotFound", "Store", "UpsertResult",
           "SQLiteStore", "open_store", "database_path", "database_url", "database_url_problem"]


def database_path(home: Path) -> Path:
    return home / DATABASE_NAME


def database_url(home: Path) -> str | None:
    """The PostgreSQL database of this home (PAPERWIRE_DATABASE_URL, or the key in its config.toml), or
    None for the SQLite file under the home."""
    return str(load_config(home).get(DATABASE_URL_KEY) or "") or None


def database_url_problem(url: str) -> str | None:
    """Why `url` cannot name the store's database (one plain sentence), or None."""
    if not url.startswith(("postgresql://", "postgres://")):
        return f"use a postgresql://USER@HOST/DATABASE URL, not {url[:80]!r}"
    return None


def open_store(home: Path, *, readonly: bool = False) -> SQLiteStore:
    """The store of a paperwire home: PostgreSQL when a database URL is configured, else SQLite under it."""
    url = database_url(home)
    if url:
        problem = database_url_problem(url)
        if problem:
            raise DatabaseUnavailable(f"{DATABASE_URL_KEY}: {problem}")
        from paperwire.store.postgres import PostgresStore

        return PostgresStore(url, readonly=readonly)
    return SQLiteStore(database_path(home), readonly=readonly)
