"""A feed page says how it is ordered only as it is: "most upvoted first" once its papers have votes."""

from __future__ import annotations

from pathlib import Path

import httpx
from conftest import copy_home
from web_server import csrf_of, serve, signed_up_client

from paperwire.store import open_store

DAY = "2025-03-20"


def test_a_day_without_votes_does_not_claim_an_upvote_order(seed_home: Path, tmp_path: Path) -> None:
    home = copy_home(seed_home, tmp_path / "home")
    store = open_store(home, readonly=True)
    paper_id = store.papers_listed_between(DAY, DAY)[-1].id
    store.close()
    with serve(home) as base:
        before = httpx.get(f"{base}/papers/date/{DAY}", timeout=60).text
        assert "no votes yet" in before and "most upvoted first" not in before
        week = httpx.get(f"{base}/papers/week/2025-W12", timeout=60).text
        assert "newest first (no votes yet)" in week

        client = signed_up_client(base, "feedvoter")
        token = csrf_of(client.get(f"/papers/{paper_id}").text)
        voted = client.post(f"/papers/{paper_id}/vote", data={"csrf_token": token, "action": "up"},
                            headers={"accept": "application/json"})
        assert voted.status_code == 200, voted.text
        after = httpx.get(f"{base}/papers/date/{DAY}", timeout=60).text
        assert "most upvoted first" in after and "no votes yet" not in after
