"""MiniLM vectors made in a server's idle time.

A home above STATIC_EMBEDDER_ABOVE papers is indexed with the distilled static model first (thousands of
papers per second), so it serves at once. A server of such a home then runs `paperwire index embed` as a
separate process at the lowest CPU priority: it takes only the time requests leave idle, saves a checkpoint
of vectors every couple of minutes, and when every paper has its MiniLM vector it switches the index in one
new generation, which this server (and every other process of the home) loads at its next refresh. A
server stopped meanwhile stops the job; the next start goes on from the last checkpoint.

Set PAPERWIRE_EMBED_IN_BACKGROUND = "0" to leave it to `paperwire index embed` run by hand.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
from typing import Any

from paperwire.web.background_jobs import last_line, paperwire_process, site_service
from paperwire.web.site import SearchUnavailable, Site

log = logging.getLogger("paperwire.web")

FIRST_CHECK_SECONDS = 60.0  # after start-up: loading the index and the first requests go first
CHECK_SECONDS = 900.0  # between two looks at whether a job is due (another process may hold the job's lock)
NICENESS = 19
EXIT_BUSY = 2  # `index embed` exit status when another process is making this home's vectors


class BackgroundEmbedder:
    """One per site: starts the MiniLM job when the index has static vectors, stops it with the server."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.process: subprocess.Popen[str] | None = None
        self.last_result: dict[str, Any] | None = None  # what the last finished job reported
        self._lock = threading.Lock()

    def enabled(self) -> bool:
        return str(self.site.config.get("PAPERWIRE_EMBED_IN_BACKGROUND", "1")).lower() not in ("0", "off", "no")

    def start(self) -> None:
        if self.thread is not None or not self.enabled():
            return
        self.thread = threading.Thread(target=self._loop, name="paperwire-embed", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()  # the job loses at most its checkpoint in progress

    def _loop(self) -> None:
        wait = float(self.site.config.get("PAPERWIRE_EMBED_FIRST_CHECK_SECONDS", FIRST_CHECK_SECONDS))
        while not self.stop.wait(wait):
            wait = float(self.site.config.get("PAPERWIRE_EMBED_CHECK_SECONDS", CHECK_SECONDS))
            try:
                if self.run_if_due() == "switched":
                    return  # nothing left to do for this server
            except Exception:
                log.exception("background embedding failed")

    def due(self) -> bool:
        """Whether the index's vectors are of another embedder than MiniLM, complete (the server's own
        static vectors come first) and the MiniLM model is installed."""
        try:
            index = self.site.index(wait=0)
        except SearchUnavailable:
            return False
        if index.embedder_kind == "minilm" or not index.vectors_complete or not len(index.lexical):
            return False
        from paperwire.index.embed import EmbedderError, minilm_directory

        try:
            minilm_directory()
        except EmbedderError as exc:
            log.info("no MiniLM vectors in the background: %s", exc)
            return False
        return True

    def run_if_due(self) -> str | None:
        """Run the job to its end (or the server's) when due; "switched", "busy", "stopped", "failed",
        "partial" or None (not due)."""
        if not self.due():
            return None
        log.info("making MiniLM vectors in the background (niced)")
        with self._lock:
            if self.stop.is_set():
                return "stopped"
            self.process = paperwire_process(self.site.home, "index", "embed", "--json", niceness=NICENESS)
        stdout, stderr = self.process.communicate()
        code = self.process.returncode
        if self.stop.is_set():
            return "stopped"
        if code == EXIT_BUSY:
            log.info("background embedding: %s", last_line(stderr))
            return "busy"
        if code != 0:
            log.error("background embedding failed: %s", last_line(stderr))
            return "failed"
        self.last_result = json.loads(stdout)
        self.site.refresh_index()  # loads the switched generation now, not at the next refresh
        return "switched" if self.last_result.get("switched") else "partial"


def service(site: Site) -> BackgroundEmbedder:
    """The site's background embedder (made on first use)."""
    return site_service(site, BackgroundEmbedder)
