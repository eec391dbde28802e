"""`paperwire demo` as a new user runs it: real recent papers with authors, ids and days, and search
results from the first request (lexical while the vectors are made), in Chromium too."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("demo") / "home"
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "paperwire.cli", "--home", str(home), "demo", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, "the demo never started serving"
        try:
            if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    try:
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_demo_searches_from_its_first_request(demo: str) -> None:
    # the first search answers with results at once: no "index is being built" window
    answer = httpx.get(f"{demo}/api/papers/search", params={"q": "diffusion language models"}, timeout=60)
    assert answer.status_code == 200, answer.text[:300]
    hits = answer.json()
    assert hits and any(re.fullmatch(r"\d{4}\.\d{4,5}", hit["paper"]["id"]) for hit in hits)
    page = httpx.get(f"{demo}/search", params={"q": "black hole thermodynamics"}, timeout=60)
    assert page.status_code == 200 and 'class="card"' in page.text


def test_demo_feed_has_real_papers_with_authors_and_days(demo: str) -> None:
    day = httpx.get(f"{demo}/api/daily_papers", params={"limit": 50}, timeout=60).json()
    assert len(day) >= 10
    assert all(item["paper"]["authors"] for item in day)  # real papers carry their authors
    assert all(re.fullmatch(r"\d{4}\.\d{4,5}", item["paper"]["id"]) for item in day)
    days = {item["publishedAt"][:10] for item in httpx.get(
        f"{demo}/api/daily_papers", params={"month": "2026-08", "limit": 100}, timeout=60).json()}
    assert len(days) >= 2
    front = httpx.get(f"{demo}/", timeout=60).text
    assert "most upvoted first" not in front  # nobody has voted in a new demo


@pytest.mark.browser
def test_demo_in_chromium(demo: str, browser, tmp_path: Path) -> None:
    for width, height in ((1280, 800), (390, 844)):
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(demo + "/")
        assert page.locator("article.card").count() >= 10
        page.screenshot(path=str(tmp_path / f"demo-feed-{width}.png"))
        page.goto(demo + "/search?q=" + "reinforcement learning for reasoning")
        assert page.locator("article.card").count() >= 5
        assert "still being built" not in page.content()
        page.screenshot(path=str(tmp_path / f"demo-search-{width}.png"))
        page.close()
