"""Topics over the sample corpus's real MiniLM vectors: the number chosen by measure, class-based tf-idf
labels, ids kept across rebuilds, new papers joining their nearest topic, the rebuild rules, the map's
layout and buffer, and the CLI."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_home, run_cli, seeded_home_on

from paperwire.model import make_paper
from paperwire.rank.layout import PAYLOAD_MAGIC, build_map, encode_points, load_map
from paperwire.rank.topics import (
    LiveTopics,
    build_topics,
    ctfidf_labels,
    k_candidates,
    load_topics,
    match_ids,
    rebuild_reason,
)
from paperwire.store import open_store


@pytest.fixture(scope="module")
def topics_home(backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded home with its topics built, on each backend in turn (copies of it copy its database)."""
    home = seeded_home_on(backend, tmp_path_factory.mktemp(f"topics-{backend}") / "home", request)
    store = open_store(home)
    try:
        build_topics(home, store)
    finally:
        store.close()
    return home


def test_every_paper_gets_one_topic_of_a_measured_number(topics_home: Path) -> None:
    model = load_topics(topics_home)
    assert model is not None
    assert model.embedder.startswith("minilm")
    assert len(model.ids) == 407 and len(set(model.ids)) == 407
    scores = model.measure["cohesion"]
    assert model.measure["k"] == len(model.topics) and str(len(model.topics)) in scores
    assert sorted(int(k) for k in scores) == k_candidates(407)
    assert set(model.assignment.tolist()) == {t.id for t in model.topics}
    assert sum(t.size for t in model.topics) == 407
    assert all(t.terms for t in model.topics)


def test_labels_name_what_the_papers_share(topics_home: Path) -> None:
    """The sample has a run of Kolmogorov-Arnold network papers: one topic holds most of them and its
    label says so."""
    model = load_topics(topics_home)
    store = open_store(topics_home)
    try:
        kan = [p.id for _, p in store.iter_papers() if "kolmogorov" in (p.title + p.abstract).lower()]
    finally:
        store.close()
    assert len(kan) >= 5
    counts: dict[int, int] = {}
    for pid in kan:
        topic = model.topic_of(pid)
        counts[topic] = counts.get(topic, 0) + 1
    main_topic = max(counts, key=counts.__getitem__)
    assert counts[main_topic] >= len(kan) / 2
    terms = " ".join(model.by_id[main_topic].terms[:4])
    assert "kolmogorov" in terms or "kan" in terms.split()


def test_ctfidf_prefers_distinctive_terms_over_common_ones() -> None:
    labels = ctfidf_labels({
        0: ["Graph neural networks for molecules", "Message passing graph networks on molecules",
            "Neural networks and molecules"],
        1: ["Neural networks for speech recognition", "Speech recognition with transformers",
            "Neural speech models"],
    })
    assert labels[0][0] in ("molecules", "graph") and "speech" not in labels[0]
    # "speech" itself is left out: the phrase that holds it says more
    assert labels[1][0] == "speech recognition" and "speech" not in labels[1] and "molecules" not in labels[1]


def test_matching_keeps_ids_of_clusters_that_share_their_papers() -> None:
    old_ids = [f"p{i}" for i in range(9)]
    old = np.array([4, 4, 4, 7, 7, 7, 9, 9, 9], dtype=np.int32)
    new_ids = old_ids + ["p9", "p10", "p11"]
    # the same three groups under other cluster numbers, plus a new group
    new = np.array([2, 2, 2, 0, 0, 0, 1, 1, 1, 3, 3, 3], dtype=np.int32)
    ids, next_id = match_ids(old_ids, old, new_ids, new, 4, next_id=10)
    assert ids.tolist() == [7, 9, 4, 10] and next_id == 11


def test_a_rebuild_keeps_the_ids_of_the_same_topics(topics_home: Path, tmp_path: Path) -> None:
    home = copy_home(topics_home, tmp_path / "home")
    before = load_topics(home)

    def members(model) -> dict[int, set[str]]:  # type: ignore[no-untyped-def]
        return {t.id: set(np.asarray(model.ids)[model.assignment == t.id]) for t in model.topics}

    store = open_store(home)
    try:
        again = build_topics(home, store)  # the same clusters: every id stays
        assert members(again) == members(before) and again.generation == before.generation + 1
        moved = build_topics(home, store, seed=1)  # another k-means start: clusters move
    finally:
        store.close()
    kept = 0
    for old_id, old_members in members(before).items():
        for new_id, new_members in members(moved).items():
            if len(old_members & new_members) / len(old_members | new_members) >= 0.6:
                assert new_id == old_id, f"topic {old_id} came back as {new_id}"
                kept += 1
    assert kept >= 1
    fresh = {t.id for t in moved.topics} - set(members(before))
    assert all(i >= before.next_id for i in fresh)  # a new topic never takes a retired id


def test_a_new_paper_joins_its_nearest_topic_at_once(topics_home: Path, tmp_path: Path) -> None:
    from paperwire.index import open_index

    home = copy_home(topics_home, tmp_path / "home")
    live = LiveTopics(home)
    assert live.reload()
    kan_topic = max(live.model.topics, key=lambda t: "kolmogorov" in " ".join(t.terms) or "kan" in t.terms)
    paper = make_paper(title="Kolmogorov-Arnold networks with learnable spline activations on edges",
                       abstract="We study Kolmogorov-Arnold Networks (KANs), which place learnable univariate "
                                "spline functions on the edges instead of fixed activations on nodes, and compare "
                                "KANs with MLPs on function fitting.", listed_on="2025-04-24", source="test")
    store = open_store(home)
    try:
        store.upsert_papers([paper])
        index = open_index(home, store)  # catches up: the paper gets its vector
        assert live.catch_up(index.dense, store, through_rev=index.rev) == 1
        topic = live.topic_of(paper.id)
        assert topic is not None and topic.id == kan_topic.id
        ids, days = live.members(topic.id)
        assert ids[0] == paper.id  # newest first
        assert live.catch_up(index.dense, store, through_rev=index.rev) == 0
    finally:
        store.close()


def test_rising_compares_the_last_week_with_the_four_before(topics_home: Path) -> None:
    live = LiveTopics(topics_home)
    live.reload()
    rising = live.rising(50)
    assert rising, "the newest listing day has 54 papers: some topics grew"
    topics, days = live._all()
    end = int(days.max())
    for r in rising:
        mine = topics == r.topic.id
        assert r.recent == int((mine & (days > end - 7)).sum())
        assert r.before == int((mine & (days <= end - 7) & (days > end - 35)).sum())
        assert r.growth > 1 and r.recent >= 3
    assert [r.growth for r in rising] == sorted((r.growth for r in rising), reverse=True)
    weekly = live.weekly_volume(rising[0].topic.id, weeks=8)
    assert len(weekly) == 8 and weekly[-1][1] == rising[0].recent


def test_rebuild_is_due_on_growth_on_another_embedder_and_on_schedule(topics_home: Path) -> None:
    import datetime as dt

    model = load_topics(topics_home)
    assert rebuild_reason(topics_home, papers_now=407, embedder_now=model.embedder) is None
    assert rebuild_reason(topics_home, papers_now=430, embedder_now=model.embedder) is None  # < 10 %
    assert "grew" in rebuild_reason(topics_home, papers_now=450, embedder_now=model.embedder)
    assert "static" in rebuild_reason(topics_home, papers_now=407, embedder_now="static:other")
    later = dt.datetime.fromisoformat(model.built_at) + dt.timedelta(hours=30)
    assert rebuild_reason(topics_home, papers_now=408, embedder_now=model.embedder, now=later)
    assert rebuild_reason(topics_home, papers_now=407, embedder_now=model.embedder, now=later) is None


def test_map_layout_keeps_neighbours_near_and_encodes_eight_bytes_a_paper(topics_home: Path, tmp_path: Path) -> None:
    home = copy_home(topics_home, tmp_path / "home")
    layout = build_map(home, landmarks=300)  # 300 laid out, 107 placed by their neighbours
    assert load_map(home).generation == layout.generation
    assert layout.positions.shape == (407, 2) and np.isfinite(layout.positions).all()
    # papers of one topic sit closer together than papers in general
    model = load_topics(home)
    rows = np.asarray([model.position[pid] for pid in layout.ids])
    topics = model.assignment[rows]
    big = max(model.topics, key=lambda t: t.size).id
    same = layout.positions[topics == big]
    spread_topic = np.linalg.norm(same - same.mean(axis=0), axis=1).mean()
    spread_all = np.linalg.norm(layout.positions - layout.positions.mean(axis=0), axis=1).mean()
    assert spread_topic < spread_all
    payload, bounds = encode_points(layout.positions, topics.astype(np.uint16), np.zeros(407, np.uint16))
    assert len(payload) == 32 + 8 * 407 and payload[:8] == PAYLOAD_MAGIC
    n, _, x0, y0, x1, y1 = struct.unpack("<II4f", payload[8:32])
    assert n == 407 and [x0, y0, x1, y1] == pytest.approx(bounds)
    xs = np.frombuffer(payload, "<u2", 407, 32)
    assert xs.min() == 0 and xs.max() == 65535


def test_cli_builds_and_lists_topics(topics_home: Path, tmp_path: Path) -> None:
    home = copy_home(topics_home, tmp_path / "home")
    proc = run_cli(home, "topics", "build", "--no-map", "--json", check=True)
    report = json.loads(proc.stdout)
    assert report["papers"] == 407 and report["topics"] >= 2 and "map" not in report
    listed = json.loads(run_cli(home, "topics", "list", "--json", check=True).stdout)
    assert [t["id"] for t in listed] and sum(t["size"] for t in listed) == 407
    assert all(set(t) == {"id", "label", "terms", "size"} for t in listed)


def test_cli_says_what_is_missing(tmp_path: Path, seeds: list[Path]) -> None:
    home = tmp_path / "home"
    run_cli(home, "ingest", *map(str, seeds), "--json", check=True)  # papers, but no index yet
    proc = run_cli(home, "topics", "build", "--json")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "no search index yet" in proc.stderr
    proc = run_cli(home, "topics", "list")
    assert proc.returncode == 1 and "no topics yet" in proc.stderr
