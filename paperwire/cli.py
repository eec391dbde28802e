"""The `paperwire` command. Contracts (flags, --json shapes) are documented in the README."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import click

from paperwire import ingest as ingest_pipeline
from paperwire.config import default_home
from paperwire.model import InvalidPaperId, canonical_id
from paperwire.sources import FORMATS
from paperwire.store import PaperNotFound, open_store


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=None))


def fail(message: str, code: int = 1) -> None:
    click.echo(f"paperwire: {message}", err=True)
    sys.exit(code)


def show_progress(json_output: bool) -> bool:
    """Whether to draw progress bars: on a terminal only, never under --json. When not, the progress bars
    of the libraries below (tqdm: model distillation, downloads) are turned off too, in this process and
    the ones it starts; tqdm reads the setting when it is first imported, which the commands do later."""
    wanted = not json_output and sys.stdout.isatty() and sys.stderr.isatty()
    if not wanted:
        os.environ["TQDM_DISABLE"] = "1"
    return wanted


def existing_home(ctx: click.Context) -> Path:
    """The home of a command that only reads: one without a database is an error (exit 2), and nothing is
    created in it."""
    from paperwire.store import database_path, database_url

    home = home_of(ctx)
    if not database_url(home) and not database_path(home).is_file():
        where = "does not exist" if not home.exists() else "has no paperwire database"
        fail(f"{home} {where}: nothing ingested there yet (run `paperwire ingest FILE` or `paperwire demo`, "
             "or pass --home)", 2)
    return home


@contextmanager
def ingest_progress(enabled: bool, paths: list[Path]) -> Iterator[Any]:
    """A rich progress line on stderr: bytes of the input files read, records and records per second,
    papers added so far; or nothing when not on a terminal."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    total = sum(p.stat().st_size for p in paths if p.is_file())
    with Progress(TextColumn("ingest"), BarColumn(), DownloadColumn(), TextColumn("{task.fields[records]}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[counts]}"),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("ingest", total=total, records="", counts="")

        def wrap(stream: BinaryIO) -> BinaryIO:
            return _CountingReader(stream, lambda n: progress.advance(task, n))  # type: ignore[return-value]

        def on_records(count: int) -> None:
            elapsed = progress.tasks[0].elapsed or 0.0
            rate = f" ({count / elapsed:,.0f}/s)" if elapsed > 0.5 else ""
            progress.update(task, records=f"{count:,} records{rate}")

        def on_batch(summary: ingest_pipeline.IngestSummary) -> None:
            progress.update(task, counts=f"{summary.added:,} added {summary.updated:,} updated "
                                         f"{summary.rejected:,} rejected")

        yield wrap, on_records, on_batch


class _CountingReader:
    def __init__(self, stream: BinaryIO, advance: Any) -> None:
        self._stream, self._advance = stream, advance

    def readline(self, size: int = -1) -> bytes:
        data = self._stream.readline(size)
        self._advance(len(data))
        return data

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._advance(len(data))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Commands(click.Group):
    """paperwire's commands; a database that cannot be reached or used ends any of them with one line."""

    def invoke(self, ctx: click.Context) -> Any:
        from paperwire.store.base import DatabaseUnavailable

        try:
            return super().invoke(ctx)
        except DatabaseUnavailable as exc:
            fail(str(exc))


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the database and indexes live (env PAPERWIRE_HOME; default ~/.paperwire).")
@click.option("--database-url", default=None, metavar="postgresql://…",
              help="Keep the store in this PostgreSQL database instead of SQLite under the home "
                   "(env PAPERWIRE_DATABASE_URL).")
@click.version_option(package_name="paperwire")
@click.pass_context
def main(ctx: click.Context, home: Path | None, database_url: str | None) -> None:
    """paperwire: a self-hosted daily paper feed with hybrid search."""
    if database_url is not None:
        from paperwire.store import database_url_problem

        problem = database_url_problem(database_url)
        if problem:
            fail(f"--database-url: {problem}", 2)
        os.environ["PAPERWIRE_DATABASE_URL"] = database_url  # for this process and the ones it starts
    ctx.obj = {"home": home or default_home()}


def home_of(ctx: click.Context) -> Path:
    return ctx.obj["home"]


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, readable=False))
@click.option("--format", "fmt", default="auto", type=click.Choice(["auto", *FORMATS]),
              help="Input format (default: detect from name and content).")
@click.option("--strict", is_flag=True, help="Store nothing if any record is rejected.")
@click.option("--year", type=int, default=None, help="Year for hf-page captures whose days have none.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Parser processes for large line-oriented files (default: one per core above 32 MB).")
@click.option("--json", "json_output", is_flag=True, help="Print one JSON summary object.")
@click.pass_context
def ingest(ctx: click.Context, paths: tuple[Path, ...], fmt: str, strict: bool, year: int | None,
           workers: int | None, json_output: bool) -> None:
    """Add papers from files (arXiv Atom/OAI/snapshot, HF pages or daily JSON, BibTeX, CSL-JSON)."""
    options: dict[str, Any] = {"year": year} if year else {}
    options["workers"] = workers
    store = open_store(home_of(ctx))
    try:
        with ingest_progress(show_progress(json_output), list(paths)) as hooks:
            wrap, on_records, on_batch = hooks if hooks else (None, None, None)
            summary = ingest_pipeline.ingest_paths(store, paths, fmt=fmt, strict=strict, wrap=wrap,
                                                   on_records=on_records, on_batch=on_batch, **options)
        after_ingest(home_of(ctx), store, json_output)
    finally:
        store.close()
    if json_output:
        emit_json(summary.to_dict())
    else:
        for error in summary.errors:
            click.echo(f"paperwire: rejected: {error}", err=True)
        note = " (rolled back: --strict and something was rejected)" if summary.rolled_back else ""
        click.echo(f"{summary.added} added, {summary.updated} updated, {summary.unchanged} unchanged, "
                   f"{summary.rejected} rejected{note}")
    if summary.rejected:
        sys.exit(1)


def after_ingest(home: Path, store: Any, json_output: bool) -> None:
    """Keep derived data (search indexes) in step with the store after new papers land.

    PAPERWIRE_SKIP_INDEX=1 defers that to `paperwire index update` (bulk loads, maintenance)."""
    if os.environ.get("PAPERWIRE_SKIP_INDEX") == "1":
        return
    try:
        from paperwire.index import update_after_ingest
    except ImportError:
        return
    update_after_ingest(home, store, progress=show_progress(json_output))


@main.command()
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def stats(ctx: click.Context, json_output: bool) -> None:
    """Counts of what is stored."""
    from paperwire.index.engine import vector_coverage

    store = open_store(existing_home(ctx))
    try:
        data = store.stats()
    finally:
        store.close()
    data["vectors"] = vector_coverage(home_of(ctx))
    if json_output:
        emit_json(data)
        return
    for key, value in data.items():
        if key == "vectors":
            for name, count in value.items():
                click.echo(f"{'vectors':>16}: {name}: {count['covered']:,} of {count['papers']:,} papers"
                           + (" (the index's)" if count.get("index") else ""))
        else:
            click.echo(f"{key:>16}: {value}")


@main.command()
@click.argument("paper_id")
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def show(ctx: click.Context, paper_id: str, json_output: bool) -> None:
    """One paper by arXiv id, arXiv URL or paperwire id."""
    store = open_store(existing_home(ctx))
    try:
        try:
            paper = store.get_paper(canonical_id(paper_id))
        except (InvalidPaperId, PaperNotFound) as exc:
            fail(str(exc))
    finally:
        store.close()
    if json_output:
        emit_json(paper.to_dict())
        return
    for line in paper_lines(paper):
        click.echo(line)


def paper_lines(paper: Any) -> list[str]:
    """A paper for reading on a terminal; fields the sources did not give are left out."""
    lines = [paper.title]
    if paper.authors:
        lines.append(", ".join(paper.authors))
    meta = [f"id {paper.id}"]
    if paper.arxiv_id and paper.version:
        meta.append(f"arXiv {paper.arxiv_id}v{paper.version}")
    if paper.published:
        meta.append(f"published {paper.published}")
    if paper.updated and paper.updated != paper.published:
        meta.append(f"updated {paper.updated}")
    meta.append(f"listed {paper.listed_on}" if paper.listed_on else "not listed on a day")
    if paper.categories:
        meta.append(" ".join(paper.categories))
    lines.append(" · ".join(meta))
    extra = []
    if paper.doi:
        extra.append(f"doi {paper.doi}")
    if paper.upvotes:
        extra.append(f"{paper.upvotes} upvote{'s' if paper.upvotes != 1 else ''}")
    if paper.submitted_by:
        extra.append(f"submitted by {paper.submitted_by}")
    if extra:
        lines.append(" · ".join(extra))
    lines.extend(["", paper.abstract])
    lines.extend(f"  {link}" for link in paper.links)
    return lines


@main.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to a file instead of standard output.")
@click.pass_context
def export(ctx: click.Context, fmt: str, output: Path | None) -> None:
    """Every paper as JSON lines, in the order they were written."""
    store = open_store(existing_home(ctx))
    target = open(output.with_suffix(output.suffix + ".part"), "w", encoding="utf-8") if output else sys.stdout
    try:
        for _, paper in store.iter_papers():
            target.write(json.dumps(paper.to_dict(), ensure_ascii=False) + "\n")
    finally:
        store.close()
        if output:
            target.close()
            target_path = Path(target.name)
            target_path.replace(output)  # never leave a half-written export under the real name


def seed_paths() -> list[Path]:
    from importlib.resources import files

    seeds = files("paperwire") / "data" / "seeds"
    return sorted(Path(str(p)) for p in seeds.iterdir() if p.name.endswith(".txt"))


def demo_paper_paths() -> list[Path]:
    """Recent real arXiv papers shipped for the demo (snapshot format; see scripts/demo_subset.py)."""
    from importlib.resources import files

    demo = files("paperwire") / "data" / "demo"
    return sorted(Path(str(p)) for p in demo.iterdir() if p.name.endswith(".jsonl.gz"))


@main.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=8000, type=int)
@click.option("--no-serve", is_flag=True, help="Ingest the sample corpus and print the feed, then exit.")
@click.pass_context
def demo(ctx: click.Context, host: str, port: int, no_serve: bool) -> None:
    """Load the bundled sample corpus (five captured pages and a few thousand recent arXiv papers)
    into the home and show it. Search answers at once; vectors are made while it serves."""
    home = home_of(ctx)
    store = open_store(home)
    try:
        summary = ingest_pipeline.ingest_paths(store, seed_paths(), fmt="hf-page")
        recent = ingest_pipeline.ingest_paths(store, demo_paper_paths(), fmt="arxiv-snapshot")
        # no index update here: the server indexes the words at once and makes the vectors while it serves
        click.echo(f"sample corpus: {summary.added + recent.added} added, "
                   f"{summary.unchanged + recent.unchanged} unchanged ({store.count_papers()} papers in {home})")
        days = store.listing_days()
        if days:
            newest = days[-1][0]
            click.echo(f"\nNewest day: {newest}")
            for paper in store.papers_listed_between(newest, newest)[:20]:
                click.echo(f"  {paper.id}  {paper.title}")
    finally:
        store.close()
    if not no_serve:
        serve_app(home, host, port)


@main.command()
@click.option("--host", default="127.0.0.1", help="Address to listen on.")
@click.option("--port", default=8000, type=int, help="Port to listen on.")
@click.option("--workers", default=1, type=click.IntRange(1, 64), help="Server processes (each loads the index).")
@click.option("--digest-at", default=None, metavar="HH:MM",
              help="Send the digests from the server each day at this local time (else PAPERWIRE_DIGEST_AT; "
                   "unset: use cron and `paperwire digest send`).")
@click.option("--digest-weekday", default=None, type=click.Choice(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
              help="Day of the weekly digest (default mon, or PAPERWIRE_DIGEST_WEEKDAY).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, digest_at: str | None,
          digest_weekday: str | None) -> None:
    """Serve the web site, the JSON and arXiv-style APIs and the feeds (and, if asked, the digests)."""
    from paperwire.config import load_config
    from paperwire.digest.schedule import ScheduleConfigError, parse_times

    home = home_of(ctx)
    # The server's processes read the schedule from the environment, like every other setting.
    if digest_at:
        os.environ["PAPERWIRE_DIGEST_AT"] = digest_at
    if digest_weekday:
        os.environ["PAPERWIRE_DIGEST_WEEKDAY"] = digest_weekday
    try:
        times = parse_times(load_config(home))
    except ScheduleConfigError as exc:
        fail(str(exc), 2)
    if times is not None:
        _mail_settings_or_fail(home)
    serve_app(home, host, port, workers=workers)


def serve_app(home: Path, host: str, port: int, workers: int = 1) -> None:
    try:
        from paperwire.web.app import CannotListen, run
    except ImportError:
        click.echo("(the web app is not available in this build)")
        return
    show_progress(json_output=False)  # off a terminal (a service's log), the libraries' progress bars go too
    try:
        run(home, host=host, port=port, workers=workers)
    except CannotListen as exc:
        fail(str(exc))


def open_search_index(ctx: click.Context, store: Any, *, json_output: bool, embedder: str | None = None) -> Any:
    """The home's index, built or caught up on first use (with a progress bar on a terminal)."""
    progress = show_progress(json_output)  # first: it settles the libraries' progress bars before they load
    from paperwire.index import open_index

    return open_index(home_of(ctx), store, embedder=embedder, progress=progress)


def print_hits(hits: list[Any], json_output: bool) -> None:
    if json_output:
        emit_json([hit.to_dict() for hit in hits])
        return
    if not hits:
        click.echo("no results")
    for rank, hit in enumerate(hits, 1):
        click.echo(f"{rank:>3}. {hit.title}")
        click.echo(f"     {hit.id} · score {hit.score:.4f}")
        if hit.snippet:
            click.echo(f"     {hit.snippet}")


# A query may start with an exclusion (-word, -"a phrase"): that is the query, not an unknown option.
@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("query")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100))
@click.option("--offset", default=0, type=click.IntRange(0, 1000))
@click.option("--mode", type=click.Choice(["hybrid", "lexical", "semantic"]), default="hybrid", show_default=True)
@click.option("--category", "categories", multiple=True, help="Only papers in this arXiv category (prefix).")
@click.option("--from", "date_from", default=None, help="Only papers from this day (YYYY-MM-DD).")
@click.option("--until", "date_to", default=None, help="Only papers up to this day (YYYY-MM-DD).")
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def search(ctx: click.Context, query: str, limit: int, offset: int, mode: str, categories: tuple[str, ...],
           date_from: str | None, date_to: str | None, json_output: bool) -> None:
    """Hybrid keyword + semantic search. Supports "phrases", -exclusions, ti: au: abs: cat: id: date:A..B."""
    from paperwire.index import QueryError

    store = open_store(existing_home(ctx))
    try:
        index = open_search_index(ctx, store, json_output=json_output)
        try:
            hits = index.search(query, limit=limit, offset=offset, mode=mode, categories=list(categories) or None,
                                date_from=date_from, date_to=date_to)
        except QueryError as exc:
            fail(f"bad query: {exc}", 2)
        print_hits(hits, json_output)
    finally:
        store.close()


@main.command()
@click.argument("paper_id")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100))
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def similar(ctx: click.Context, paper_id: str, limit: int, json_output: bool) -> None:
    """Papers nearest to one paper (never the paper itself)."""
    store = open_store(existing_home(ctx))
    try:
        index = open_search_index(ctx, store, json_output=json_output)
        try:
            hits = index.similar(paper_id, limit=limit)
        except (InvalidPaperId, PaperNotFound) as exc:
            fail(str(exc))
        print_hits(hits, json_output)
    finally:
        store.close()


# As for search: a query may start with an exclusion (-word), which is not an option.
@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("queries", nargs=-1, required=True)
@click.option("--by", type=click.Choice(["auto", "month", "week"]), default="auto", show_default=True,
              help="Periods to count by; auto: weeks for ranges up to six months, else months.")
@click.option("--from", "date_from", default=None, help="First day counted (YYYY-MM-DD, YYYY-MM or YYYY).")
@click.option("--until", "date_to", default=None, help="Last day counted (YYYY-MM-DD, YYYY-MM or YYYY).")
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def trends(ctx: click.Context, queries: tuple[str, ...], by: str, date_from: str | None, date_to: str | None,
           json_output: bool) -> None:
    """Papers matching each QUERY (up to three) per month or week, and their share of all papers."""
    from paperwire.index import QueryError
    from paperwire.index.trends import compute_trends

    store = open_store(existing_home(ctx))
    try:
        index = open_search_index(ctx, store, json_output=json_output)
        try:
            found = compute_trends(index.lexical, queries, by=by, date_from=date_from, date_to=date_to)
        except QueryError as exc:
            fail(f"bad trend: {exc}", 2)
            return
    finally:
        store.close()
    if json_output:
        emit_json(found.to_dict())
        return
    click.echo(f"papers with every word of the query, by {found.by}, {found.first} to {found.last}")
    heads = [s.query if len(s.query) <= 22 else s.query[:21] + "…" for s in found.series]
    click.echo(f"{'period':<9} {'all':>8}" + "".join(f"  {h:>22}" for h in heads))
    for i, period in enumerate(found.periods):
        cells = "".join(f"  {s.counts[i]:>11,} {100 * s.shares[i]:>9.2f}%" for s in found.series)
        click.echo(f"{period.key:<9} {period.papers:>8,}{cells}")
    total = sum(p.papers for p in found.periods)
    cells = "".join(f"  {s.papers:>11,} {100 * s.papers / total if total else 0:>9.2f}%" for s in found.series)
    click.echo(f"{'total':<9} {total:>8,}{cells}")


@main.group("index")
def index_group() -> None:
    """Inspect and repair the search index."""


@index_group.command("update")
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def index_update(ctx: click.Context, json_output: bool) -> None:
    """Index papers written since the last update (builds the index if there is none)."""
    store = open_store(existing_home(ctx))
    try:
        from paperwire.index import open_index

        index = open_index(home_of(ctx), store, progress=show_progress(json_output), catch_up=False)
        removed = index.remove_partial_generations()
        indexed = index.update(progress=show_progress(json_output))
        report = index.verify()
    finally:
        store.close()
    if json_output:
        emit_json({"indexed": indexed, "removed_partial_generations": removed, **report.to_dict()})
    else:
        if removed:
            click.echo(f"removed what interrupted saves left: {', '.join(removed)}")
        click.echo(f"{indexed} papers indexed; {report.indexed_papers} in the index")


@index_group.command("verify")
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def index_verify(ctx: click.Context, json_output: bool) -> None:
    """Compare the saved index with the store; exit 1 if they differ."""
    from paperwire.index import open_index

    store = open_store(existing_home(ctx))
    try:
        index = open_index(home_of(ctx), store, catch_up=False)
        report = index.verify()
        load_error = getattr(index, "load_error", None)
        if load_error:
            report.ok = False
            report.problems.insert(0, f"saved index is damaged: {load_error}")
    finally:
        store.close()
    if json_output:
        emit_json(report.to_dict())
    else:
        click.echo("index matches the store" if report.ok else "index does not match the store:")
        click.echo(f"  vectors ({report.embedder}): {report.vectors:,} of {report.indexed_papers:,} papers")
        for name, done in report.embedders.items():
            if name != report.embedder:
                click.echo(f"  vectors made by `index embed` ({name}): {done['covered']:,} of {done['papers']:,} "
                           "papers (search switches to them when all have one)")
        for problem in report.problems:
            click.echo(f"  {problem}")
        if not report.ok:
            click.echo("run `paperwire index update` (or `paperwire index rebuild`) to repair")
    if not report.ok:
        sys.exit(1)


@index_group.command("rebuild")
@click.option("--embedder", type=click.Choice(["minilm", "static"]), default=None,
              help="Embedding model (default: the one the index was built with).")
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def index_rebuild(ctx: click.Context, embedder: str | None, json_output: bool) -> None:
    """Build the index again from the store (changing --embedder re-embeds everything)."""
    from paperwire.index import rebuild_index

    store = open_store(existing_home(ctx))
    try:
        index = rebuild_index(home_of(ctx), store, embedder=embedder, progress=show_progress(json_output))
        report = index.verify()
    finally:
        store.close()
    if json_output:
        emit_json({"embedder": index.embedder.name, **report.to_dict()})
    else:
        click.echo(f"rebuilt: {report.indexed_papers} papers, embedder {index.embedder.name}")


@index_group.command("train-static")
@click.option("--sample", type=click.IntRange(min=1), default=None,
              help="Train on at most this many abstracts (default 20,000).")
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def index_train_static(ctx: click.Context, sample: int | None, json_output: bool) -> None:
    """Train the static model on this home's abstracts against their MiniLM vectors (`index embed` makes
    them), and rebuild the index if it is on static vectors. Restart a running server afterwards."""
    from paperwire.index import rebuild_index
    from paperwire.index.embed import EmbedderError
    from paperwire.index.engine import vector_coverage
    from paperwire.index.static_train import TRAINING_SAMPLE, train_home_static_model

    home = home_of(ctx)
    store = open_store(existing_home(ctx))
    try:
        try:
            record = train_home_static_model(home, store, sample=sample or TRAINING_SAMPLE)
        except EmbedderError as exc:
            fail(str(exc), 2)
            return
        on_static = any(name.startswith("static:") and c.get("index") for name, c in vector_coverage(home).items())
        if on_static:
            rebuild_index(home, store, progress=show_progress(json_output))
    finally:
        store.close()
    if json_output:
        emit_json({**record, "index_rebuilt": on_static})
        return
    click.echo(f"static model trained on {record['trained_on']:,} abstracts in {record['train_seconds']:.0f} s"
               + ("; index rebuilt" if on_static else ""))


@index_group.command("embed")
@click.option("--embedder", type=click.Choice(["minilm", "static"]), default="minilm", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Embed at most this many papers now.")
@click.option("--checkpoint", type=click.IntRange(min=1), default=None,
              help="Papers between two saves of the embedding cache (a kill loses at most this many).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or mps.")
@click.option("--ray", "ray_address", default=None, metavar="ADDRESS",
              help="Embed on the Ray cluster at HOST:PORT (or ray://HOST:PORT); the vectors come back here.")
@click.option("--no-switch", is_flag=True, help="Leave the index on its embedder even when all papers are covered.")
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def index_embed(ctx: click.Context, embedder: str, limit: int | None, checkpoint: int | None, device: str,
                ray_address: str | None, no_switch: bool, json_output: bool) -> None:
    """Give every paper a vector of EMBEDDER, newest first, resumably; then search uses them."""
    from paperwire.index.embed_job import CHECKPOINT, EmbedJobError, run_embed_job

    store = open_store(existing_home(ctx))
    cluster = None
    try:
        if ray_address is not None:
            if embedder != "minilm":
                fail(f"--ray {ray_address}: only the MiniLM embedder runs on a Ray cluster", 2)
            from paperwire.index.embed_ray import RayEncoder

            cluster = RayEncoder(ray_address, device=device)
        report = run_embed_job(home_of(ctx), store, kind=embedder, limit=limit, checkpoint=checkpoint or CHECKPOINT,
                               device=device, stream=cluster.stream if cluster else None, switch=not no_switch,
                               progress=show_progress(json_output))
    except EmbedJobError as exc:
        fail(str(exc), 2)
        return
    finally:
        if cluster is not None:
            cluster.close()
        store.close()
    if json_output:
        emit_json(report.to_dict())
        return
    click.echo(f"{report.embedded:,} papers embedded with {report.embedder} in {report.seconds:.0f} s; "
               f"{report.covered:,} of {report.papers:,} have one")
    if report.switched:
        click.echo(f"the index uses {report.embedder}")
    elif report.complete:
        click.echo(f"the index stays on {report.index_embedder} (--no-switch)")
    else:
        click.echo("run `paperwire index embed` again to go on (search keeps its current vectors meanwhile)")


@main.group("harvest")
def harvest_group() -> None:
    """Pull papers from arXiv: OAI-PMH for bootstrap and daily increments, the query API for small pulls."""


_DAY = click.DateTime(formats=["%Y-%m-%d"])


def harvest_client(delay: float | None) -> Any:
    from paperwire.sources.harvest import DEFAULT_DELAY, PoliteClient

    return PoliteClient(delay=DEFAULT_DELAY if delay is None else delay)


@contextmanager
def page_progress(enabled: bool) -> Iterator[Any]:
    """A rich progress bar over the records of a harvest (the server's completeListSize), or nothing."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("harvest"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.fields[counts]}"), transient=True) as progress:
        task = progress.add_task("harvest", total=None, counts="")

        def on_page(report: Any, page: Any) -> None:
            if report.complete_list_size:
                progress.update(task, total=report.complete_list_size)
            progress.update(task, advance=page.info.records + page.info.deleted,
                            counts=f"{report.added:,} added {report.updated:,} updated")

        yield on_page


def finish_harvest(ctx: click.Context, store: Any, report: Any, error: Exception | None, json_output: bool) -> None:
    after_ingest(home_of(ctx), store, json_output)
    if error is not None:
        fail(f"harvest stopped: {error} (what was fetched is kept; run again to resume)")
    if json_output:
        emit_json(report.to_dict())
    else:
        for message in report.errors:
            click.echo(f"paperwire: rejected: {message}", err=True)
        click.echo(f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
                   f"{report.rejected} rejected, {report.deleted} deleted upstream "
                   f"({report.requests} requests{', resumed' if report.resumed else ''}; "
                   f"high-water mark {report.high_water or 'none'})")
    if report.rejected:
        sys.exit(1)


@harvest_group.command("arxiv")
@click.option("--set", "set_spec", default=None, metavar="SET",
              help="arXiv OAI set: cs, math, stat, q-bio, physics, physics:hep-th, … (default: all of arXiv).")
@click.option("--from", "date_from", type=_DAY, default=None,
              help="First datestamp (YYYY-MM-DD). Default: a few days before the last run's high-water mark.")
@click.option("--until", type=_DAY, default=None, help="Last datestamp (YYYY-MM-DD).")
@click.option("--endpoint", default=None, metavar="URL",
              help="OAI-PMH base URL (env PAPERWIRE_ARXIV_OAI_URL; default arXiv's).")
@click.option("--delay", type=click.FloatRange(min=0), default=None,
              help="Seconds between requests (default 3, as arXiv asks).")
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def harvest_arxiv(ctx: click.Context, set_spec: str | None, date_from: Any, until: Any, endpoint: str | None,
                  delay: float | None, json_output: bool) -> None:
    """Harvest arXiv metadata over OAI-PMH; resumes an interrupted run, else continues from the last one."""
    from paperwire.harvest_job import HarvestReport
    from paperwire.harvest_job import harvest_arxiv as run_harvest
    from paperwire.sources import SourceError

    store = open_store(home_of(ctx))
    report, error = HarvestReport(), None
    try:
        with harvest_client(delay) as client, page_progress(show_progress(json_output)) as on_page:
            try:
                report = run_harvest(store, set_spec=set_spec, endpoint=endpoint, client=client, on_page=on_page,
                                     date_from=date_from.date().isoformat() if date_from else None,
                                     until=until.date().isoformat() if until else None)
            except SourceError as exc:
                error = exc
        finish_harvest(ctx, store, report, error, json_output)
    finally:
        store.close()


@harvest_group.command("arxiv-query")
@click.argument("query", required=False)
@click.option("--id", "ids", multiple=True, help="An arXiv id to fetch (repeatable).")
@click.option("--max", "max_results", type=click.IntRange(1, 30000), default=100, show_default=True)
@click.option("--endpoint", default=None, metavar="URL",
              help="arXiv API query URL (env PAPERWIRE_ARXIV_QUERY_URL; default arXiv's).")
@click.option("--delay", type=click.FloatRange(min=0), default=None, help="Seconds between requests (default 3).")
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def harvest_arxiv_query(ctx: click.Context, query: str | None, ids: tuple[str, ...], max_results: int,
                        endpoint: str | None, delay: float | None, json_output: bool) -> None:
    """A small pull from the arXiv query API, e.g. 'cat:cs.CL AND ti:retrieval' or --id 2401.01234."""
    from paperwire.harvest_job import HarvestReport, query_arxiv
    from paperwire.sources import SourceError

    if not query and not ids:
        fail("give a QUERY or at least one --id", 2)
    store = open_store(home_of(ctx))
    report, error = HarvestReport(), None
    try:
        with harvest_client(delay) as client:
            try:
                report = query_arxiv(store, search_query=query, id_list=list(ids) or None, max_results=max_results,
                                     endpoint=endpoint, client=client)
            except SourceError as exc:
                error = exc
        finish_harvest(ctx, store, report, error, json_output)
    finally:
        store.close()


# ---------------------------------------------------------------- users, libraries, recommendations, mail

def _user_or_fail(store: Any, name: str) -> Any:
    from paperwire.store.library import Library, UnknownUser

    try:
        return Library(store).user(name)
    except UnknownUser as exc:
        fail(f"{exc} (create one with `paperwire user add`)")


def _paper_ids_or_fail(store: Any, ids: tuple[str, ...]) -> list[str]:
    out = []
    for raw in ids:
        try:
            out.append(store.get_paper(canonical_id(raw)).id)
        except (InvalidPaperId, PaperNotFound) as exc:
            fail(str(exc))
    return out


@main.group("user")
def user_group() -> None:
    """Local accounts."""


@user_group.command("add")
@click.argument("username")
@click.option("--email", default=None)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_context
def user_add(ctx: click.Context, username: str, email: str | None, password_stdin: bool) -> None:
    """Create a user (the same account the web sign-up makes)."""
    from paperwire.digest.compose import InvalidEmail, validate_email
    from paperwire.passwords import hash_password, password_problem, username_problem
    from paperwire.store.accounts import Accounts, UsernameTaken

    problem = username_problem(username)
    if problem:
        fail(problem)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else click.prompt(
        "Password", hide_input=True, confirmation_prompt=True)
    problem = password_problem(password, user_inputs=(username, email or "", "paperwire"))
    if problem:
        fail(problem)
    try:
        email = validate_email(email) if email else None
    except InvalidEmail as exc:
        fail(str(exc))
    store = open_store(home_of(ctx))
    try:
        user_id = Accounts(store).create_user(username, hash_password(password), email)
    except UsernameTaken as exc:
        fail(str(exc))
    finally:
        store.close()
    click.echo(f"user {username} created (id {user_id})")


@main.group("library")
def library_group() -> None:
    """A user's saved papers, tags, read / not-relevant marks and keyword alerts."""


@library_group.command("import")
@click.argument("user")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tag", default=None, help="Save the matched papers under this tag.")
@click.option("--format", "fmt", default="auto", type=click.Choice(["auto", "bibtex", "csl-json", "ids"]))
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def library_import(ctx: click.Context, user: str, path: Path, tag: str | None, fmt: str, json_output: bool) -> None:
    """Save papers from a BibTeX or CSL-JSON file or a list of arXiv ids; unmatched entries are listed."""
    from paperwire.library_import import import_library

    store = open_store(home_of(ctx))
    try:
        report = import_library(store, _user_or_fail(store, user).id, path, tag=tag, fmt=fmt)
    except (OSError, ValueError) as exc:
        fail(f"{path}: {exc}")
    finally:
        store.close()
    if json_output:
        emit_json(report.to_dict())
        return
    click.echo(f"{report.matched} of {report.entries} matched ({report.added} new), {len(report.unmatched)} unmatched")
    for entry in report.unmatched:
        click.echo(f"  unmatched: {entry['key']}: {entry['title'] or entry['arxiv_id'] or entry['doi']}")
    for error in report.rejected:
        click.echo(f"paperwire: rejected: {error}", err=True)


@library_group.command("save")
@click.argument("user")
@click.argument("paper_ids", nargs=-1, required=True)
@click.option("--tag", default=None)
@click.option("--remove", is_flag=True, help="Remove from the tag (or the whole library without --tag).")
@click.pass_context
def library_save(ctx: click.Context, user: str, paper_ids: tuple[str, ...], tag: str | None, remove: bool) -> None:
    """Save papers (under a tag)."""
    from paperwire.store.library import Library

    store = open_store(home_of(ctx))
    try:
        library, ids = Library(store), _paper_ids_or_fail(store, paper_ids)
        uid = _user_or_fail(store, user).id
        for pid in ids if remove else ():
            library.unsave(uid, pid, tag)
        added = 0 if remove else library.save(uid, ids, tag)
    except ValueError as exc:
        fail(str(exc))
    finally:
        store.close()
    click.echo(f"{len(ids)} removed" if remove else f"{added} saved")


@library_group.command("mark")
@click.argument("user")
@click.argument("paper_ids", nargs=-1, required=True)
@click.option("--as", "mark", required=True, type=click.Choice(["read", "not-relevant"]))
@click.option("--undo", is_flag=True)
@click.pass_context
def library_mark(ctx: click.Context, user: str, paper_ids: tuple[str, ...], mark: str, undo: bool) -> None:
    """Mark papers read or not relevant (never recommended again; not relevant also teaches the classifier)."""
    from paperwire.store.library import Library

    store = open_store(home_of(ctx))
    try:
        uid, ids = _user_or_fail(store, user).id, _paper_ids_or_fail(store, paper_ids)
        for pid in ids:
            Library(store).mark(uid, pid, mark.replace("-", "_"), on=not undo)
    finally:
        store.close()
    click.echo(f"{len(ids)} {'unmarked' if undo else 'marked ' + mark}")


@library_group.command("alert")
@click.argument("user")
@click.argument("query")
@click.option("--remove", is_flag=True)
@click.pass_context
def library_alert(ctx: click.Context, user: str, query: str, remove: bool) -> None:
    """Save a search as a keyword alert (its new matches go into the user's digest)."""
    from paperwire.store.library import Library

    store = open_store(home_of(ctx))
    try:
        uid = _user_or_fail(store, user).id
        (Library(store).remove_search if remove else Library(store).add_search)(uid, query)
    except ValueError as exc:
        fail(str(exc))
    finally:
        store.close()


@library_group.command("list")
@click.argument("user")
@click.option("--tag", default=None)
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def library_list(ctx: click.Context, user: str, tag: str | None, json_output: bool) -> None:
    """A user's saved papers, tags, marks and alerts."""
    from paperwire.store.library import NOT_RELEVANT, READ, Library

    store = open_store(existing_home(ctx))
    try:
        library, uid = Library(store), _user_or_fail(store, user).id
        saved = library.saved(uid, tag)
        papers = store.get_papers(saved)
        data = {"tags": library.tags(uid), "searches": library.searches(uid), "read": library.marked(uid, READ),
                "not_relevant": library.marked(uid, NOT_RELEVANT),
                "saved": [{"id": pid, "title": papers[pid].title if pid in papers else None,
                           "tags": library.tags_of(uid, [pid]).get(pid, [])} for pid in saved]}
    finally:
        store.close()
    if json_output:
        emit_json(data)
        return
    for item in data["saved"]:
        click.echo(f"{item['id']}  {item['title']}  [{', '.join(t for t in item['tags'] if t)}]")


@main.command()
@click.option("--user", "user_name", required=True)
@click.option("--tag", default=None, help="Learn from one tag instead of the whole library.")
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def recommend(ctx: click.Context, user_name: str, tag: str | None, limit: int, json_output: bool) -> None:
    """Papers for a user: a classifier over embeddings of their saved papers, or trending."""
    from paperwire.rank.recommend import Recommender

    store = open_store(existing_home(ctx))
    try:
        user = _user_or_fail(store, user_name)
        index = open_search_index(ctx, store, json_output=json_output)
        recs = Recommender(store, index).for_user(user.id, tag=tag, limit=limit)
    finally:
        store.close()
    if json_output:
        emit_json([r.to_dict() for r in recs])
        return
    for rank, rec in enumerate(recs, 1):
        click.echo(f"{rank:>3}. {rec.paper.title}\n     {rec.paper.id} · {rec.why_text()}")


def _mail_settings_or_fail(home: Path) -> Any:
    """The mail settings; a setting that cannot work exits 2 (fix the configuration) before any work."""
    from paperwire.digest.settings import MailConfigError, load_mail_settings

    try:
        return load_mail_settings(home)
    except MailConfigError as exc:
        fail(str(exc), 2)


@main.command()
@click.argument("email")
@click.option("--period", type=click.Choice(["daily", "weekly"]), default="daily", show_default=True)
@click.option("--user", "user_name", default=None, help="Link to a user: recommendations and keyword alerts.")
@click.option("--tag", default=None, help="Recommend from this tag of the user's library only.")
@click.option("--search", "searches", multiple=True, help="A keyword alert (repeatable).")
@click.option("--no-trending", is_flag=True, help="Leave out the trending section.")
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def subscribe(ctx: click.Context, email: str, period: str, user_name: str | None, tag: str | None,
              searches: tuple[str, ...], no_trending: bool, json_output: bool) -> None:
    """Subscribe an address to the digest; it gets a confirmation mail (double opt-in)."""
    from paperwire.digest.compose import InvalidEmail
    from paperwire.digest.subscriptions import deliver_confirmation, subscription_content
    from paperwire.digest.subscriptions import subscribe as subscribe_address
    from paperwire.signing import signing_secret

    home = home_of(ctx)
    settings = _mail_settings_or_fail(home)
    store = open_store(home)
    try:
        user_id = _user_or_fail(store, user_name).id if user_name else None
        if tag and user_id is None:
            fail("--tag needs --user (recommendations learn from that user's library)", 2)
        try:
            content = subscription_content(trending=not no_trending, recommendations=user_id is not None, tag=tag,
                                           alerts=user_id is not None, searches=searches,
                                           linked=user_id is not None)
            result = subscribe_address(store, settings, signing_secret(home), email, period=period, user_id=user_id,
                                       content=content)
        except (InvalidEmail, ValueError) as exc:
            fail(str(exc), 2)
        sub = result.subscription
        # An active subscription needs no confirmation; otherwise say what became of the newest one
        # (queued now, or a few minutes ago) only once delivery has been tried.
        problem = None if sub.status == "active" else deliver_confirmation(home, store, settings, sub)
    finally:
        store.close()
    data = {**sub.to_dict(), "confirmation_sent": result.confirmation_queued and problem is None}
    if problem:
        data["error"] = f"confirmation mail to {sub.email} {problem}"
    if json_output:
        emit_json(data)
    elif problem:
        pass  # the one line on stderr below says it
    elif sub.status == "active":
        click.echo(f"{sub.email} is already subscribed ({sub.period})")
    elif result.confirmation_queued:
        click.echo(f"confirmation mail sent to {sub.email}")
    else:
        click.echo(f"a confirmation mail went to {sub.email} a few minutes ago")
    if problem:
        fail(data["error"])


@main.group("subscribers")
def subscribers_group() -> None:
    """Digest subscribers."""


@subscribers_group.command("list")
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def subscribers_list(ctx: click.Context, json_output: bool) -> None:
    """Every subscription and its status (pending, active, unsubscribed)."""
    from paperwire.store.mail import MailStore

    store = open_store(home_of(ctx))
    try:
        subs = MailStore(store).subscriptions()
    finally:
        store.close()
    if json_output:
        emit_json([s.to_dict() for s in subs])
        return
    for sub in subs:
        click.echo(f"{sub.email}  {sub.period}  {sub.status}")


@main.group("digest")
def digest_group() -> None:
    """Digest mails."""


@digest_group.command("send")
@click.option("--period", type=click.Choice(["daily", "weekly"]), required=True)
@click.option("--day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="The digest day (default today).")
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def digest_send(ctx: click.Context, period: str, day: Any, json_output: bool) -> None:
    """Queue one digest per active subscriber (once per period day) and deliver the outbox."""
    from paperwire.digest.run import send_digests

    home = home_of(ctx)
    settings = _mail_settings_or_fail(home)
    store = open_store(home)
    try:
        with count_progress(show_progress(json_output), "digests") as (advance, on_total):
            report = send_digests(home, store, settings, period, day=day.date() if day else None,
                                  advance=advance, on_total=on_total)
    finally:
        store.close()
    data = report.to_dict()
    if json_output:
        emit_json(data)
    else:
        waiting = f", {data['deferred']} of them waiting to retry" if data["deferred"] else ""
        click.echo(f"{data['queued']} queued, {data['sent']} sent, {data['failed']} failed{waiting} "
                   f"({data['nothing_new']} subscribers had nothing new)")
    if report.delivery.failed:  # mails waiting on their backoff count: they are not delivered either
        fail(report.delivery.summary())


@main.command()
@click.option("--to", "url", required=True, metavar="postgresql://…", help="The PostgreSQL database to copy into.")
@click.option("--force", is_flag=True, help="Replace what the database already holds.")
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def migrate(ctx: click.Context, url: str, force: bool, json_output: bool) -> None:
    """Copy the home's SQLite store into PostgreSQL (resumable; verified by counts and checksums)."""
    from paperwire.store import database_path, database_url_problem
    from paperwire.store.copy_to_postgres import CopyError, copy_to_postgres

    problem = database_url_problem(url)
    if problem:
        fail(f"--to: {problem}", 2)
    home = home_of(ctx)
    with count_progress(show_progress(json_output), "copy, then verify") as (advance, on_total):
        try:
            report = copy_to_postgres(database_path(home), url, force=force, on_total=on_total, advance=advance)
        except CopyError as exc:
            fail(str(exc))
    data = report.to_dict()
    if json_output:
        emit_json(data)
        return
    rate = f", {data['rows_per_second']:,} rows/s" if data["rows_per_second"] else ""
    click.echo(f"{data['rows']:,} rows in {len(data['tables'])} tables copied to {data['target']} and verified "
               f"({data['copied']:,} this run in {data['seconds']:.1f} s{rate}); point the home at it with "
               f"PAPERWIRE_DATABASE_URL in {home / 'config.toml'}")


@contextmanager
def count_progress(enabled: bool, label: str) -> Iterator[tuple[Any, Any]]:
    """(advance, set_total) callbacks of a rich progress bar, or no-ops."""
    if not enabled:
        yield None, None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  transient=True) as progress:
        task = progress.add_task(label, total=None)
        yield (lambda n: progress.advance(task, n)), (lambda total: progress.update(task, total=total))


from paperwire.cli_topics import topics_group  # noqa: E402  (its commands import the helpers above)

main.add_command(topics_group)

if __name__ == "__main__":
    main()
