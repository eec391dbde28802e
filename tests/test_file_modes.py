"""The files of a home that hold secrets (password hashes, addresses, the outbox, the signing key) are
readable by their owner only, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli

from paperwire.signing import SECRET_FILE, load_secret
from paperwire.store import database_path, open_store

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that lets everyone read new files (the processes started here inherit it)."""
    before = os.umask(0)
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_database_and_its_wal_and_shm_are_private(home: Path, open_umask: None) -> None:
    run_cli(home, "ingest", str(FIXTURES / "arxiv_snapshot.jsonl"), check=True)
    db = database_path(home)
    assert mode(db) == 0o600
    store = open_store(home)  # a connection holds the -wal and -shm files open
    try:
        store.stats()
        wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
        assert wal.exists() and shm.exists()
        assert (mode(wal), mode(shm)) == (0o600, 0o600)
    finally:
        store.close()


def test_an_existing_database_keeps_its_mode(home: Path) -> None:
    home.mkdir()
    db = database_path(home)
    open_store(home).close()
    db.chmod(0o640)  # an administrator's choice (a backup group) is not undone
    open_store(home).close()
    assert mode(db) == 0o640


def test_secret_key_is_private(home: Path, open_umask: None) -> None:
    key = load_secret(home)
    assert key and mode(home / SECRET_FILE) == 0o600
    assert load_secret(home) == key
