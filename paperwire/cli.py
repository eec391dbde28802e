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
    return not json_output and sys.stderr.isatty()


@contextmanager
def byte_progress(enabled: bool, paths: list[Path]) -> Iterator[Any]:
    """A rich progress bar over the bytes of the input files, or nothing when not on a terminal."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    total = sum(p.stat().st_size for p in paths if p.is_file())
    with Progress(TextColumn("ingest"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  TextColumn("{task.fields[counts]}"), transient=True) as progress:
        task = progress.add_task("ingest", total=total, counts="")

        def wrap(stream: BinaryIO) -> BinaryIO:
            return _CountingReader(stream, lambda n: progress.advance(task, n))  # type: ignore[return-value]

        def on_batch(summary: ingest_pipeline.IngestSummary) -> None:
            progress.update(task, counts=f"{summary.added:,} added {summary.updated:,} updated "
                                         f"{summary.rejected:,} rejected")

        yield wrap, on_batch


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the database and indexes live (env PAPERWIRE_HOME; default ~/.paperwire).")
@click.version_option(package_name="paperwire")
@click.pass_context
def main(ctx: click.Context, home: Path | None) -> None:
    """paperwire: a self-hosted daily paper feed with hybrid search."""
    ctx.obj = {"home": home or default_home()}


def home_of(ctx: click.Context) -> Path:
    return ctx.obj["home"]


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", default="auto", type=click.Choice(["auto", *FORMATS]),
              help="Input format (default: detect from name and content).")
@click.option("--strict", is_flag=True, help="Store nothing if any record is rejected.")
@click.option("--year", type=int, default=None, help="Year for hf-page captures whose days have none.")
@click.option("--json", "json_output", is_flag=True, help="Print one JSON summary object.")
@click.pass_context
def ingest(ctx: click.Context, paths: tuple[Path, ...], fmt: str, strict: bool, year: int | None,
           json_output: bool) -> None:
    """Add papers from files (arXiv Atom/OAI/snapshot, HF pages or daily JSON, BibTeX, CSL-JSON)."""
    options: dict[str, Any] = {"year": year} if year else {}
    store = open_store(home_of(ctx))
    try:
        with byte_progress(show_progress(json_output), list(paths)) as hooks:
            wrap, on_batch = hooks if hooks else (None, None)
            summary = ingest_pipeline.ingest_paths(store, paths, fmt=fmt, strict=strict, wrap=wrap,
                                                   on_batch=on_batch, **options)
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
    store = open_store(home_of(ctx))
    try:
        data = store.stats()
    finally:
        store.close()
    if json_output:
        emit_json(data)
        return
    for key, value in data.items():
        click.echo(f"{key:>16}: {value}")


@main.command()
@click.argument("paper_id")
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def show(ctx: click.Context, paper_id: str, json_output: bool) -> None:
    """One paper by arXiv id, arXiv URL or paperwire id."""
    store = open_store(home_of(ctx))
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
    click.echo(paper.title)
    if paper.authors:
        click.echo(", ".join(paper.authors))
    meta = [f"id {paper.id}", f"listed {paper.listed_on}"]
    if paper.categories:
        meta.append(" ".join(paper.categories))
    click.echo(" · ".join(meta))
    click.echo()
    click.echo(paper.abstract)
    for link in paper.links:
        click.echo(f"  {link}")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to a file instead of standard output.")
@click.pass_context
def export(ctx: click.Context, fmt: str, output: Path | None) -> None:
    """Every paper as JSON lines, in the order they were written."""
    store = open_store(home_of(ctx))
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


@main.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=8000, type=int)
@click.option("--no-serve", is_flag=True, help="Ingest the sample corpus and print the feed, then exit.")
@click.pass_context
def demo(ctx: click.Context, host: str, port: int, no_serve: bool) -> None:
    """Load the bundled sample corpus into the home and show it."""
    home = home_of(ctx)
    store = open_store(home)
    try:
        summary = ingest_pipeline.ingest_paths(store, seed_paths(), fmt="hf-page")
        after_ingest(home, store, json_output=False)
        click.echo(f"sample corpus: {summary.added} added, {summary.unchanged} unchanged "
                   f"({store.count_papers()} papers in {home})")
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
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the web site, the JSON and arXiv-style APIs and the feeds."""
    serve_app(home_of(ctx), host, port)


def serve_app(home: Path, host: str, port: int) -> None:
    try:
        from paperwire.web.app import run
    except ImportError:
        click.echo("(the web app is not available in this build)")
        return
    run(home, host=host, port=port)


def open_search_index(ctx: click.Context, store: Any, *, json_output: bool, embedder: str | None = None) -> Any:
    """The home's index, built or caught up on first use (with a progress bar on a terminal)."""
    from paperwire.index import open_index

    return open_index(home_of(ctx), store, embedder=embedder, progress=show_progress(json_output))


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


@main.command()
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

    store = open_store(home_of(ctx))
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
    store = open_store(home_of(ctx))
    try:
        index = open_search_index(ctx, store, json_output=json_output)
        try:
            hits = index.similar(paper_id, limit=limit)
        except (InvalidPaperId, PaperNotFound) as exc:
            fail(str(exc))
        print_hits(hits, json_output)
    finally:
        store.close()


@main.group("index")
def index_group() -> None:
    """Inspect and repair the search index."""


@index_group.command("update")
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def index_update(ctx: click.Context, json_output: bool) -> None:
    """Index papers written since the last update (builds the index if there is none)."""
    store = open_store(home_of(ctx))
    try:
        from paperwire.index import open_index

        index = open_index(home_of(ctx), store, progress=show_progress(json_output), catch_up=False)
        indexed = index.update(progress=show_progress(json_output))
        report = index.verify()
    finally:
        store.close()
    if json_output:
        emit_json({"indexed": indexed, **report.to_dict()})
    else:
        click.echo(f"{indexed} papers indexed; {report.indexed_papers} in the index")


@index_group.command("verify")
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def index_verify(ctx: click.Context, json_output: bool) -> None:
    """Compare the saved index with the store; exit 1 if they differ."""
    from paperwire.index import open_index

    store = open_store(home_of(ctx))
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

    store = open_store(home_of(ctx))
    try:
        index = rebuild_index(home_of(ctx), store, embedder=embedder, progress=show_progress(json_output))
        report = index.verify()
    finally:
        store.close()
    if json_output:
        emit_json({"embedder": index.embedder.name, **report.to_dict()})
    else:
        click.echo(f"rebuilt: {report.indexed_papers} papers, embedder {index.embedder.name}")


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


if __name__ == "__main__":
    main()
