"""Libraries and recommendations on the sample corpus with its real search index (MiniLM embeddings)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import SEEDS, cli_json, copy_home, run_cli

from paperwire.model import make_paper
from paperwire.sources import hf_page
from paperwire.store import open_store


def page_ids(path: Path) -> list[str]:
    with open(path, "rb") as fh:
        return list(dict.fromkeys(p.id for p in hf_page.parse(fh, str(path)) if hasattr(p, "id")))


@pytest.fixture
def rec_home(seed_home: Path, tmp_path: Path) -> Path:
    home = copy_home(seed_home, tmp_path / "home")
    proc = run_cli(home, "user", "add", "alice", "--email", "alice@example.org", "--password-stdin",
                   input="long enough password\n")
    assert proc.returncode == 0, proc.stderr
    return home


def test_recommendations_learn_from_saved_papers_and_explain(rec_home: Path) -> None:
    page = page_ids(SEEDS[3])
    saved = page[:5]
    run_cli(rec_home, "library", "save", "alice", *saved, "--tag", "topic", check=True)
    recs = cli_json(rec_home, "recommend", "--user", "alice", "--limit", "10")
    assert len(recs) == 10 and {r["source"] for r in recs} == {"classifier"}
    ids = [r["id"] for r in recs]
    assert not set(ids) & set(saved)
    # Better than the page's share of the corpus (about 1 in 6) would give by chance.
    assert len(set(ids) & set(page)) >= 4
    for rec in recs:
        assert rec["why"] and {w["id"] for w in rec["why"]} <= set(saved)
        assert rec["why_text"].startswith("because you saved")
    scores = [r["score"] for r in recs]
    assert scores == sorted(scores, reverse=True)

    # Read and "not relevant" papers are never recommended again; a tag gives its own list.
    run_cli(rec_home, "library", "mark", "alice", ids[0], "--as", "read", check=True)
    run_cli(rec_home, "library", "mark", "alice", ids[1], "--as", "not-relevant", check=True)
    again = [r["id"] for r in cli_json(rec_home, "recommend", "--user", "alice", "--limit", "10")]
    assert ids[0] not in again and ids[1] not in again
    tagged = cli_json(rec_home, "recommend", "--user", "alice", "--tag", "topic", "--limit", "5")
    assert len(tagged) == 5
    empty_tag = cli_json(rec_home, "recommend", "--user", "alice", "--tag", "nothing-here", "--limit", "5")
    assert {r["source"] for r in empty_tag} == {"trending"}


def test_nothing_saved_falls_back_to_trending(rec_home: Path) -> None:
    recs = cli_json(rec_home, "recommend", "--user", "alice", "--limit", "5")
    assert len(recs) == 5 and {r["source"] for r in recs} == {"trending"} and all(not r["why"] for r in recs)
    proc = run_cli(rec_home, "recommend", "--user", "nobody", "--json")
    assert proc.returncode == 1 and proc.stderr.strip() == \
        "paperwire: no user 'nobody' (create one with `paperwire user add`)"


def test_library_import_matches_by_arxiv_id_doi_and_title(rec_home: Path, tmp_path: Path) -> None:
    store = open_store(rec_home)
    try:
        store.upsert_papers([
            make_paper(title="Attention Is All You Need", abstract="Transformers.", arxiv_id="1706.03762",
                       source="test"),
            make_paper(title="A Paper Known By Its DOI", abstract="Text.", doi="10.1234/ABC.5", source="test"),
        ])
        seed_title = store.get_paper(page_ids(SEEDS[0])[0]).raw_title
    finally:
        store.close()
    bib = tmp_path / "mine.bib"
    bib.write_text(f"""
@article{{vaswani, title={{Attention is all you need}}, eprint={{1706.03762}}, archivePrefix={{arXiv}}, year={{2017}}}}
@article{{bydoi, title={{Some other title}}, doi={{10.1234/abc.5}}, year={{2020}}}}
@inproceedings{{bytitle, title={{{seed_title.upper()}}}, year={{2025}}}}
@article{{missing, title={{A Paper Nobody Stored}}, year={{2021}}}}
""", encoding="utf-8")
    report = cli_json(rec_home, "library", "import", "alice", str(bib), "--tag", "imported")
    assert report["matched"] == 3 and report["matched_by"] == {"arxiv_id": 1, "doi": 1, "title": 1}
    assert [u["key"] for u in report["unmatched"]] == ["missing"]
    ids = tmp_path / "ids.txt"
    ids.write_text("# reading list\nhttps://arxiv.org/abs/1706.03762v5\n2101.00001\nnot-an-id\n")
    report = cli_json(rec_home, "library", "import", "alice", str(ids))
    assert (report["matched"], report["added"], len(report["unmatched"]), len(report["rejected"])) == (1, 1, 1, 1)
    listing = cli_json(rec_home, "library", "list", "alice")
    assert listing["tags"] == {"": 1, "imported": 3}
    assert json.dumps(listing).count("1706.03762") == 1


def test_personal_digest_sections_and_mailed_papers_not_recommended_again(rec_home: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A subscription linked to alice: recommendations for one tag, her keyword alert, a search of its own
    and trending, each paper once; saved and read papers left out; mailed papers never recommended again."""
    from tests.smtp_server import smtp_server

    topic = page_ids(SEEDS[3])
    run_cli(rec_home, "library", "save", "alice", *topic[:5], "--tag", "topic", check=True)
    run_cli(rec_home, "library", "mark", "alice", topic[5], "--as", "read", check=True)
    run_cli(rec_home, "library", "alert", "alice", "reinforcement learning", check=True)
    before = [r["id"] for r in cli_json(rec_home, "recommend", "--user", "alice", "--tag", "topic", "--limit", "30")]
    with smtp_server() as recorder:
        for key, value in {"PAPERWIRE_SMTP_HOST": "127.0.0.1", "PAPERWIRE_SMTP_PORT": str(recorder.port),
                           "PAPERWIRE_BASE_URL": "https://papers.example.org",
                           "PAPERWIRE_MAIL_FROM": "paperwire <digest@paperwire.test>"}.items():
            monkeypatch.setenv(key, value)
        sub = cli_json(rec_home, "subscribe", "alice@example.org", "--user", "alice", "--tag", "topic",
                       "--search", "video generation")
        assert sub["confirmation_sent"]
        store = open_store(rec_home)
        try:
            from paperwire.store.mail import MailStore

            mail = MailStore(store)
            mail.activate(mail.by_email("alice@example.org").id)
        finally:
            store.close()
        result = cli_json(rec_home, "digest", "send", "--period", "daily")
        assert (result["queued"], result["sent"], result["failed"]) == (1, 1, 0)
        digest = recorder.messages[-1]
    text = digest.text()
    sections = re.findall(r"^== (.+) ==$", text, re.M)
    assert sections[0] == "Recommended for your “topic” papers" and sections[-1] == "Trending"
    assert "New for “video generation”" in sections and "New for “reinforcement learning”" in sections
    assert text.count("(because you saved") >= 5
    store = open_store(rec_home)
    try:
        titles = {store.get_paper(pid).title: pid for pid in topic[:6]}
        from paperwire.store.mail import MailStore

        mailed = MailStore(store).sent_papers_for_user(1)
    finally:
        store.close()
    listed = re.findall(r"^\* (.+)$", text, re.M)
    assert len(listed) == len(set(listed)) == len(mailed)  # each paper once
    assert not set(listed) & set(titles)  # saved and read papers are not mailed
    # What was mailed is not recommended again; the next recommendations are new papers.
    after = [r["id"] for r in cli_json(rec_home, "recommend", "--user", "alice", "--tag", "topic", "--limit", "30")]
    assert not set(after) & mailed and set(before) & mailed
