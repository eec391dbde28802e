"""`paperwire topics build|list`: cluster the corpus into topics and lay out the map (paperwire/rank/).

Registered on the main group by paperwire/cli.py; the shared helpers are imported when a command runs
(this module is imported by cli.py, so it must not import cli.py at load time)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click


@contextmanager
def stage_progress(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback (stage, done, total) drawn as one rich bar per stage on a terminal."""
    if not enabled:
        yield lambda stage, done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    transient=True)
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=total)
        bars.update(tasks[stage], completed=done, total=total)

    with bars:
        yield update


@click.group("topics")
def topics_group() -> None:
    """Topics (clusters of the papers' embeddings) and the map of all papers."""


@topics_group.command("build")
@click.option("--k", "k", type=click.IntRange(2, 2000), default=None,
              help="Number of topics (default: chosen by measure).")
@click.option("--no-map", is_flag=True, help="Only the topics, not the map's layout.")
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def topics_build(ctx: click.Context, k: int | None, no_map: bool, json_output: bool) -> None:
    """Cluster the papers on the search index's vectors, label the topics, and lay out the map."""
    from paperwire.cli import emit_json, existing_home, fail, show_progress
    from paperwire.index.saved_vectors import NoVectors
    from paperwire.rank.layout import build_map
    from paperwire.rank.topics import TopicsError, build_topics
    from paperwire.store import open_store

    home = existing_home(ctx)
    progress = show_progress(json_output)
    store = open_store(home)
    try:
        with stage_progress(progress) as update:
            started = time.perf_counter()
            try:
                model = build_topics(home, store, k=k, progress=update)
            except (NoVectors, TopicsError) as exc:
                fail(str(exc))
            topics_seconds = time.perf_counter() - started
            layout = None
            if not no_map:
                started = time.perf_counter()
                layout = build_map(home, progress=update)
                map_seconds = time.perf_counter() - started
    finally:
        store.close()
    report: dict[str, Any] = {"topics": len(model.topics), "papers": len(model.ids), "embedder": model.embedder,
                              "generation": model.generation, "measure": model.measure,
                              "seconds": round(topics_seconds, 1)}
    if layout is not None:
        report["map"] = {"papers": len(layout.ids), "method": layout.method, "generation": layout.generation,
                         "seconds": round(map_seconds, 1)}
    if json_output:
        emit_json(report)
        return
    click.echo(f"{len(model.topics)} topics over {len(model.ids):,} papers ({model.embedder}) "
               f"in {topics_seconds:.1f} s")
    if layout is not None:
        click.echo(f"map: {len(layout.ids):,} papers laid out ({layout.method}) in {map_seconds:.1f} s")


@topics_group.command("list")
@click.option("--json", "json_output", is_flag=True)
@click.pass_context
def topics_list(ctx: click.Context, json_output: bool) -> None:
    """The topics, largest first: id, papers, label."""
    from paperwire.cli import emit_json, existing_home, fail
    from paperwire.rank.topics import load_topics

    model = load_topics(existing_home(ctx))
    if model is None:
        fail("no topics yet: run `paperwire topics build`")
    topics = sorted(model.topics, key=lambda t: (-t.size, t.id))  # type: ignore[union-attr]
    if json_output:
        emit_json([t.to_dict() for t in topics])
        return
    for topic in topics:
        click.echo(f"{topic.id:>5}  {topic.size:>7,}  {topic.label}")
