"""Where papers live. `open_store` picks the backend; callers see only the Store interface."""

from __future__ import annotations

from pathlib import Path

from paperwire.store.base import ADDED, UNCHANGED, UPDATED, PaperNotFound, Store, UpsertResult
from paperwire.store.sqlite import SQLiteStore

DATABASE_NAME = "paperwire.sqlite3"

__all__ = ["ADDED", "UNCHANGED", "UPDATED", "PaperNotFound", "Store", "UpsertResult", "SQLiteStore",
           "open_store", "database_path"]


def database_path(home: Path) -> Path:
    return home / DATABASE_NAME


def open_store(home: Path, *, readonly: bool = False) -> SQLiteStore:
    """The store under a paperwire home directory (SQLite; PostgreSQL plugs in here)."""
    return SQLiteStore(database_path(home), readonly=readonly)
