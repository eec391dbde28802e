"""A real paperwire web server on a loopback port, run by uvicorn in a background thread."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from paperwire.web.app import create_app

# Generous limits so that a test module's own traffic never trips them; the rate-limit tests
# lower one limit at a time on their own server.
TEST_LIMITS = {"PAPERWIRE_RATE_LIMIT_LOGIN": "200/300", "PAPERWIRE_RATE_LIMIT_SIGNUP": "200/3600",
               "PAPERWIRE_RATE_LIMIT_VOTE": "500/60", "PAPERWIRE_RATE_LIMIT_SUBMIT": "200/3600",
               # MiniLM vectors in the background only where a test asks for them (tests/test_background_embed.py)
               "PAPERWIRE_EMBED_IN_BACKGROUND": "0"}


@contextmanager
def serve(home: Path, config: dict[str, Any] | None = None) -> Iterator[str]:
    """Serve `home` on 127.0.0.1 (a free port) and yield the base URL; the index is loaded first."""
    with serve_app(home, config) as (url, _app):
        yield url


@contextmanager
def serve_app(home: Path, config: dict[str, Any] | None = None, *,
              wait_for_vectors: bool = True) -> Iterator[tuple[str, Any]]:
    """serve(), yielding the application too (for tests that look at the site's state). By default
    the search index is loaded with every paper's vector before the first request."""
    app = create_app(home, {**TEST_LIMITS, **(config or {})})
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="paperwire-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    if wait_for_vectors:  # searches in the tests must not race the index load
        index = app.state.site.index(wait=300)
        while not index.vectors_complete and time.monotonic() < deadline + 600:
            time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def signed_up_client(base: str, username: str, password: str = "correct horse battery") -> httpx.Client:
    """A browser-like client (cookies kept) that has signed up and is logged in."""
    client = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
    token = csrf_of(client.get("/signup").text)
    response = client.post("/signup", data={"csrf_token": token, "username": username, "password": password})
    assert response.status_code == 303, response.text[:500]
    return client
