"""The store on SQLite and on PostgreSQL (tests taking `store_home` run on both): idempotent upserts,
versions, re-keying, one transaction per batch, migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from paperwire.model import Paper, make_paper, title_id
from paperwire.store import ADDED, UNCHANGED, UPDATED, PaperNotFound, open_store
from paperwire.store.migrations import MIGRATIONS

INTEGRITY_ERRORS = (sqlite3.IntegrityError, psycopg.IntegrityError)


def arxiv_paper(number: int, version: int = 1, **changes: object) -> Paper:
    fields: dict = {
        "title": f"Paper number {number}", "abstract": f"Abstract of paper {number}, version {version}.",
        "arxiv_id": f"2401.{number:05d}v{version}", "source": "test", "authors": ["A. Author"],
        "categories": ["cs.LG"], "published": "2024-01-02", "updated": f"2024-0{version}-05",
        "listed_on": "2024-01-03",
    }
    fields.update(changes)
    return make_paper(**fields)


def test_same_batch_twice_is_unchanged(store_home: Path) -> None:
    store = open_store(store_home)
    batch = [arxiv_paper(i) for i in range(1, 6)]
    first = store.upsert_papers(batch)
    assert first.count(ADDED) == 5
    rev = store.max_rev()
    second = store.upsert_papers(batch)
    assert second.count(UNCHANGED) == 5 and second.count(ADDED) == second.count(UPDATED) == 0
    assert store.max_rev() == rev, "an unchanged paper must not bump rev (indexes would redo work)"
    store.close()
    reopened = open_store(store_home)  # values read back from disk compare equal too
    assert reopened.upsert_papers(batch).count(UNCHANGED) == 5
    assert reopened.get_paper("2401.00003") == batch[2]
    assert reopened.count_papers() == 5


def test_duplicates_inside_one_batch_are_one_paper(store_home: Path) -> None:
    store = open_store(store_home)
    result = store.upsert_papers([arxiv_paper(1), arxiv_paper(1, 2), arxiv_paper(1)])
    assert result.status == {"2401.00001": ADDED}
    assert store.get_paper("2401.00001").version == 2


def test_newer_version_updates_text_but_keeps_earliest_days(store_home: Path) -> None:
    store = open_store(store_home)
    store.upsert_papers([arxiv_paper(7, 1, upvotes=4)])
    rev = store.max_rev()
    v2 = arxiv_paper(7, 2, title="Paper number 7, revised", published="2024-03-01", listed_on="2024-03-02")
    assert store.upsert_papers([v2]).status == {"2401.00007": UPDATED}
    stored = store.get_paper("2401.00007")
    assert (stored.title, stored.version, stored.updated) == ("Paper number 7, revised", 2, "2024-02-05")
    assert stored.abstract.endswith("version 2.")
    assert (stored.published, stored.listed_on) == ("2024-01-02", "2024-01-03")
    assert stored.upvotes == 4
    assert store.max_rev() > rev
    # the old version arriving again is not news
    assert store.upsert_papers([arxiv_paper(7, 1)]).status == {"2401.00007": UNCHANGED}
    assert store.get_paper("2401.00007").version == 2
    assert [p.id for p in store.papers_listed_between("2024-01-03", "2024-01-03")] == ["2401.00007"]


def test_title_only_paper_is_rekeyed_to_its_arxiv_id_and_old_id_still_resolves(store_home: Path) -> None:
    store = open_store(store_home)
    seen = make_paper(title="Scaling Laws for Sparse Experts", abstract="We study sparse experts at scale.",
                      source="hf-page", listed_on="2025-03-11", upvotes=12)
    old_id = title_id("Scaling Laws for Sparse Experts")
    assert store.upsert_papers([seen]).status == {old_id: ADDED}
    later = make_paper(title="Scaling laws for sparse experts", abstract="We study sparse experts at scale, fully.",
                       arxiv_id="2503.01234v1", source="arxiv-snapshot", authors=["R. Lee"],
                       published="2025-03-05", categories=["cs.LG"])
    assert store.upsert_papers([later]).status == {"2503.01234": UPDATED}
    assert store.count_papers() == 1
    stored = store.get_paper("2503.01234")
    assert stored.id == stored.arxiv_id == "2503.01234"
    assert stored.authors == ["R. Lee"] and stored.upvotes == 12
    assert (stored.published, stored.listed_on) == ("2025-03-05", "2025-03-11")
    assert store.get_paper(old_id).id == "2503.01234"
    assert store.get_papers([old_id, "2503.01234"]).keys() == {old_id, "2503.01234"}
    # the page capture arriving again is the same paper, not a new one
    assert store.upsert_papers([seen]).status == {"2503.01234": UNCHANGED}
    assert store.paper_ids() == ["2503.01234"]


def test_two_arxiv_papers_with_one_title_stay_apart(store_home: Path) -> None:
    store = open_store(store_home)
    store.upsert_papers([arxiv_paper(1, title="Attention Is All You Need")])
    store.upsert_papers([arxiv_paper(2, title="Attention is all you need")])
    assert sorted(store.paper_ids()) == ["2401.00001", "2401.00002"]


def test_title_lookups_of_arxiv_rows_use_the_index_of_title_only_papers(home: Path) -> None:
    store = open_store(home)
    store.upsert_papers([arxiv_paper(1, title="Sparse Mixtures"),
                         make_paper(title="Dense Mixtures", abstract="A title-only capture.", source="hf-page")])
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    # an arXiv-only batch: one row is the title-only capture's paper, one shares an arXiv paper's title
    result = store.upsert_papers([arxiv_paper(2, title="Dense mixtures"), arxiv_paper(3, title="Sparse mixtures")])
    store.conn.set_trace_callback(None)
    assert result.status == {"2401.00002": UPDATED, "2401.00003": ADDED}
    lookups = [s for s in statements if "title_hash IN" in s]
    assert lookups and all("INDEXED BY papers_title_only" in s for s in lookups)
    # a title-only row still finds arXiv papers: its key is looked up among all papers
    statements.clear()
    store.conn.set_trace_callback(statements.append)
    again = make_paper(title="Sparse  mixtures", abstract="Seen on a page.", source="hf-page")
    assert store.upsert_papers([again]).status == {"2401.00003": UNCHANGED}
    store.conn.set_trace_callback(None)
    assert not any("papers_title_only" in s for s in statements if "title_hash IN" in s)
    assert sorted(store.paper_ids()) == ["2401.00001", "2401.00002", "2401.00003"]


def test_rows_for_one_stored_paper_in_one_batch_each_see_what_the_other_wrote(store_home: Path) -> None:
    store = open_store(store_home)
    capture = make_paper(title="Attention Is All You Need", abstract="Seen on a page.", source="hf-page",
                         upvotes=9)
    store.upsert_papers([capture])
    # two arXiv papers with the capture's title: the first takes the capture over, the second is another paper
    result = store.upsert_papers([arxiv_paper(1, title="Attention is all you need"),
                                  arxiv_paper(2, title="Attention is all you need")])
    assert result.status == {"2401.00001": UPDATED, "2401.00002": ADDED}
    assert sorted(store.paper_ids()) == ["2401.00001", "2401.00002"]
    assert store.get_paper(capture.id).id == "2401.00001" and store.get_paper("2401.00001").upvotes == 9
    # a new version by id and the capture again (an alias of the same paper) in one batch: neither is lost
    result = store.upsert_papers([arxiv_paper(1, 2), capture.with_changes(upvotes=30)])
    assert result.status == {"2401.00001": UPDATED}
    stored = store.get_paper("2401.00001")
    assert (stored.version, stored.upvotes) == (2, 30)


def test_a_title_only_capture_joins_its_arxiv_paper_new_in_the_same_batch(store_home: Path) -> None:
    store = open_store(store_home)
    capture = make_paper(title="Scaling Laws for Sparse Experts", abstract="Seen on a page.", source="hf-page",
                         upvotes=5, listed_on="2025-03-11")
    paper = arxiv_paper(9, title="Scaling laws for sparse experts", published="2025-03-05", listed_on=None)
    other = make_paper(title="Another Page Paper", abstract="Only on a page.", source="hf-page")
    result = store.upsert_papers([capture, paper, other])
    assert result.status == {"2401.00009": ADDED, other.id: ADDED}
    assert sorted(store.paper_ids()) == sorted(["2401.00009", other.id])
    stored = store.get_paper(capture.id)
    assert stored.id == "2401.00009" and stored.upvotes == 5
    assert (stored.published, stored.listed_on) == ("2025-03-05", "2025-03-11")


def test_a_failing_batch_leaves_nothing(store_home: Path) -> None:
    store = open_store(store_home)
    store.upsert_papers([arxiv_paper(1)])
    rev, before = store.max_rev(), store.get_paper("2401.00001")
    broken = arxiv_paper(3)
    broken.title = None  # type: ignore[assignment]  # violates NOT NULL when written
    batch = [arxiv_paper(1, 2), arxiv_paper(2), broken]
    with pytest.raises(INTEGRITY_ERRORS):
        store.upsert_papers(batch)
    assert store.count_papers() == 1 and store.max_rev() == rev
    assert store.get_paper("2401.00001") == before
    with pytest.raises(PaperNotFound):
        store.get_paper("2401.00002")
    # and the connection is usable afterwards
    assert store.upsert_papers([arxiv_paper(2)]).status == {"2401.00002": ADDED}


def test_outer_transaction_groups_batches(store_home: Path) -> None:
    store = open_store(store_home)
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert_papers([arxiv_paper(1)])
        store.upsert_papers([arxiv_paper(2)])
        raise RuntimeError("abort")
    assert store.count_papers() == 0


def test_migrations_apply_once_and_reopen_is_a_no_op(home: Path) -> None:
    store = open_store(home)
    version = store.schema_version()
    assert version == len(MIGRATIONS)
    applied = store.conn.execute("SELECT name FROM schema_migrations ORDER BY rowid").fetchall()
    assert [name for (name,) in applied] == [name for name, _ in MIGRATIONS]
    store.upsert_papers([arxiv_paper(1)])
    store.close()
    for _ in range(2):
        again = open_store(home)
        assert again.schema_version() == version
        assert again.conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)
        assert again.count_papers() == 1
        assert again.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        again.close()


def test_a_database_made_before_the_title_hash_migrates_and_still_matches_by_title(home: Path) -> None:
    """Built by the migrations up to the one before title_hash, then opened by this release."""
    from paperwire.store import database_path

    before = MIGRATIONS[:[name for name, _ in MIGRATIONS].index("0003_title_hash")]
    path = database_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    for name, statements in before:
        for statement in statements:
            conn.execute(statement)
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        conn.execute("INSERT INTO schema_migrations(name) VALUES (?)", (name,))
    # written by an outside tool: an empty arXiv id rather than none
    conn.execute("INSERT INTO papers (id, rev, title, abstract, title_key, ingested_on, arxiv_id) "
                 "VALUES (?, 1, 'Sparse Attention, Revisited', 'x', 'sparse attention revisited', '2024-01-01', '')",
                 (title_id("Sparse Attention, Revisited"),))
    conn.commit()
    conn.close()
    store = open_store(home)
    indexes = {name for (name,) in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"papers_title_hash", "papers_title_only"} <= indexes and "papers_title_key" not in indexes
    assert store.ids_by_title(["sparse attention revisited", "no such title"]) == {
        "sparse attention revisited": title_id("Sparse Attention, Revisited")}
    # the arXiv version of the title-only capture joins it instead of becoming a second paper
    result = store.upsert_papers([arxiv_paper(7, title="Sparse attention -- revisited")])
    assert result.count(UPDATED) == 1 and store.count_papers() == 1
    assert store.get_paper(title_id("Sparse Attention, Revisited")).id == store.get_paper("2401.00007").id


def test_database_from_a_newer_release_is_refused(store_home: Path) -> None:
    store = open_store(store_home)
    store.conn.execute("INSERT INTO schema_migrations(name) VALUES ('9999_from_the_future')")
    store.close()
    with pytest.raises(RuntimeError, match="newer paperwire"):
        open_store(store_home)


def test_iter_papers_follows_rev(store_home: Path) -> None:
    store = open_store(store_home)
    store.upsert_papers([arxiv_paper(i) for i in range(1, 4)])
    mark = store.max_rev()
    store.upsert_papers([arxiv_paper(2, 2), arxiv_paper(4)])
    changed = [(rev, p.id) for rev, p in store.iter_papers(after_rev=mark)]
    assert [pid for _, pid in changed] == ["2401.00002", "2401.00004"]
    assert all(rev > mark for rev, _ in changed)
    assert [p.id for _, p in store.iter_papers(batch_size=2)] == ["2401.00001", "2401.00003", "2401.00002",
                                                                  "2401.00004"]
    assert store.stats()["papers"] == 4
    assert store.integrity_check() == "ok"


def test_page_capture_after_the_arxiv_record_joins_it_and_its_id_resolves(store_home: Path) -> None:
    store = open_store(store_home)
    store.upsert_papers([arxiv_paper(9, title="Grokking Beyond Algorithmic Data")])
    capture = make_paper(title="Grokking beyond algorithmic data", abstract="A capture of the abstract.",
                         source="hf-page", listed_on="2025-04-23", upvotes=3)
    assert store.upsert_papers([capture]).status == {"2401.00009": UPDATED}
    assert store.count_papers() == 1
    assert store.get_paper(capture.id).id == "2401.00009"
    assert store.get_paper("2401.00009").upvotes == 3
    assert store.upsert_papers([capture]).status == {"2401.00009": UNCHANGED}


def test_a_database_made_before_thumbnails_migrates_and_keeps_a_paper_s_thumbnail(home: Path) -> None:
    """Built by the migrations up to the one before thumbnails, with a paper in it, then opened by this release."""
    from paperwire.store import database_path

    before = MIGRATIONS[:[name for name, _ in MIGRATIONS].index("0005_thumbnail")]
    path = database_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    for name, statements in before:
        for statement in statements:
            statement(conn) if callable(statement) else conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations(name) VALUES (?)", (name,))
    conn.execute("INSERT INTO papers (id, rev, title, abstract, title_key, ingested_on, arxiv_id, listed_on) "
                 "VALUES ('2401.00001', 1, 'Paper number 1', 'x', 'paper number 1', '2024-01-01', '2401.00001', "
                 "'2024-01-03')")
    conn.commit()
    conn.close()
    store = open_store(home)
    assert store.get_paper("2401.00001").thumbnail is None
    image = "https://cdn.example.org/fig.png"
    assert store.upsert_papers([arxiv_paper(1, thumbnail=image)]).count(UPDATED) == 1
    assert store.get_paper("2401.00001").thumbnail == image
    rev = store.max_rev()
    # the same capture again changes nothing; one without a thumbnail, or with another, keeps the first
    assert store.upsert_papers([arxiv_paper(1, thumbnail=image)]).count(UNCHANGED) == 1
    assert store.upsert_papers([arxiv_paper(1), arxiv_paper(2, thumbnail=image)]).status == {
        "2401.00001": UNCHANGED, "2401.00002": ADDED}
    store.upsert_papers([arxiv_paper(1, thumbnail="https://cdn.example.org/other.png")])
    assert store.get_paper("2401.00001").thumbnail == image and store.max_rev() == rev + 1
    store.close()
    assert open_store(home).get_paper("2401.00002").thumbnail == image


def test_a_large_batch_goes_in_whole_with_its_authors_and_again_unchanged(store_home: Path) -> None:
    """Batches the size of a bulk ingest's (PostgreSQL copies their papers and author rows in)."""
    store = open_store(store_home)
    batch = [arxiv_paper(i, authors=[f"Author {i}", f"Second Author {i % 7}"]) for i in range(1, 1501)]
    assert store.upsert_papers(batch).count(ADDED) == 1500
    assert [rev for rev, _ in store.iter_papers()] == list(range(1, 1501))
    assert store.conn.execute("SELECT COUNT(*) FROM paper_authors").fetchone()[0] == 3000
    assert store.upsert_papers(batch).count(UNCHANGED) == 1500 and store.max_rev() == 1500
    assert store.get_paper("2401.01234").authors == ["Author 1234", "Second Author 2"]
    store.close()
