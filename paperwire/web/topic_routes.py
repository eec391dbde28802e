"""Topic pages (/topics, /topics/{id}), their JSON (/api/topics…), and the topics a server keeps current.

The topics themselves are built under paperwire/rank/topics.py (clustering, labels, stable ids). Here a
server loads the saved generation, lets new papers join their nearest topic as soon as the index has their
vectors, and starts a rebuild in the background (`paperwire topics build`, a separate process at low
priority so that requests keep their cores and memory) on a schedule and when the corpus has grown.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from paperwire.rank.topics import REFRESH_HOURS, LiveTopics, Rising, Topic, day_label, rebuild_reason
from paperwire.store.paper_facts import PaperFacts
from paperwire.web.background_jobs import last_line, paperwire_process, site_service
from paperwire.web.site import SearchUnavailable, Site

log = logging.getLogger("paperwire.web")

PAGE_SIZE = 30
MAX_PAGE = 200
CATCH_UP_SECONDS = 2.0  # at most this often a request looks for new papers and new generations
FIRST_CHECK_SECONDS = 120.0  # a server's first look at whether the topics need building
CHECK_SECONDS = 600.0


class TopicsService:
    """One per site: the live topics, the map layout, and the background rebuilds."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.live = LiveTopics(site.home)
        self.lock = threading.Lock()
        self.checked = 0.0
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()
        self.building = False
        self.map_state: Any = None  # paperwire.web.map_routes.MapState, made on first use

    def current(self) -> LiveTopics:
        """The live topics, caught up with new generations and new papers (cheaply, at most every few s)."""
        now = time.monotonic()
        if now - self.checked < CATCH_UP_SECONDS:
            return self.live
        with self.lock:
            if now - self.checked < CATCH_UP_SECONDS:
                return self.live
            self.checked = now
            try:
                self.live.reload()
                index = self.site.index(wait=0)
            except SearchUnavailable:
                return self.live
            except Exception:
                log.exception("loading topics failed")
                return self.live
            try:
                through = index.rev if index.vectors_complete else index.dense_rev
                self.live.catch_up(index.dense, self.site.store(), through_rev=through)
            except Exception:
                log.exception("assigning new papers to topics failed")
        return self.live

    def topic_of(self, paper_id: str) -> Topic | None:
        return self.current().topic_of(paper_id)

    # ------------------------------------------------------------ background rebuilds

    def start(self) -> None:
        if self.thread is not None or str(self.site.config.get("PAPERWIRE_TOPICS_AUTO", "1")) in ("0", "off", "no"):
            return
        self.thread = threading.Thread(target=self._loop, name="paperwire-topics", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()

    def _loop(self) -> None:
        wait = float(self.site.config.get("PAPERWIRE_TOPICS_FIRST_CHECK_SECONDS", FIRST_CHECK_SECONDS))
        while not self.stop.wait(wait):
            wait = float(self.site.config.get("PAPERWIRE_TOPICS_CHECK_SECONDS", CHECK_SECONDS))
            try:
                self.rebuild_if_due()
            except Exception:
                log.exception("topics rebuild failed")

    def rebuild_if_due(self) -> str | None:
        """Run `paperwire topics build` when the topics are missing, of other vectors, behind the corpus
        by the set fraction, or older than the schedule; returns the reason it ran for."""
        try:
            index = self.site.index(wait=0)
        except SearchUnavailable:
            return None
        if not index.vectors_complete:
            return None
        hours = float(self.site.config.get("PAPERWIRE_TOPICS_REFRESH_HOURS", REFRESH_HOURS))
        reason = rebuild_reason(self.site.home, papers_now=len(index.dense), embedder_now=index.dense.embedder_name,
                                hours=hours)
        if reason is None:
            return None
        log.info("rebuilding topics and the map: %s", reason)
        self.building = True
        try:
            proc = paperwire_process(self.site.home, "topics", "build", "--json")
            _, stderr = proc.communicate()
        finally:
            self.building = False
        if proc.returncode != 0:
            log.error("topics build failed: %s", last_line(stderr))
        self.checked = 0.0  # the next request loads the new generation
        return reason


def service(site: Site) -> TopicsService:
    """The site's topics service (made on first use)."""
    return site_service(site, TopicsService)


def rising_topics(site: Site, limit: int = 5) -> list[Rising]:
    """"Rising this week" for the front page ([] without topics)."""
    try:
        return service(site).current().rising(limit)
    except Exception:  # the front page never fails because of topics
        log.exception("rising topics failed")
        return []


def paper_topic(site: Site, paper_id: str) -> Topic | None:
    """The topic a paper page names (None without topics, or for a paper the index has no vector of yet)."""
    try:
        return service(site).topic_of(paper_id)
    except Exception:  # the paper page never fails because of topics
        log.exception("topic of %s failed", paper_id)
        return None


def no_topics_message(site: Site) -> str:
    from paperwire.rank.topics import papers_with_vectors

    if papers_with_vectors(site.home) is None:
        return ("There are no topics yet: the search index has no vectors for every paper yet. "
                "They are built once it has (or run `paperwire topics build`).")
    return "There are no topics yet: they are being built (or run `paperwire topics build`)."


def build_router(site: Site) -> APIRouter:
    router = APIRouter(tags=["topics"])

    def live_or_none() -> LiveTopics | None:
        live = service(site).current()
        return live if live.model is not None else None

    @router.get("/topics", summary="All topics, largest first")
    def topics_page(request: Request) -> Response:
        live = live_or_none()
        if live is None:
            return site.render(request, "topics.html", status_code=404, topics=[], message=no_topics_message(site),
                               rising=[])
        sizes = live.sizes()
        topics = sorted(live.model.topics, key=lambda t: -sizes.get(t.id, 0))  # type: ignore[union-attr]
        return site.render(request, "topics.html", topics=[(t, sizes.get(t.id, 0)) for t in topics], message=None,
                           rising=live.rising(10))

    @router.get("/topics/{topic_id}", summary="A topic: its papers (newest or top) and weekly volume")
    def topic_page(request: Request, topic_id: int, sort: Annotated[str, Query(pattern="^(newest|top)$")] = "newest",
                   page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1) -> Response:
        live = live_or_none()
        if live is None:
            return site.render(request, "error.html", status_code=404, status=404, message=no_topics_message(site),
                               links=[])
        topic = live.model.by_id.get(topic_id)  # type: ignore[union-attr]
        if topic is None:
            return site.render(request, "error.html", status_code=404, status=404,
                               message=f"There is no topic {topic_id}.", links=[("All topics", "/topics")])
        ids, _ = live.members(topic_id)
        total = len(ids)
        pages = max(1, -(-total // PAGE_SIZE))
        if page > pages:
            return site.render(request, "error.html", status_code=404, status=404,
                               message=f"There is no page {page} of this topic: it has {pages}.",
                               links=[("First page", f"/topics/{topic_id}?sort={sort}")])
        chosen = top_ids(site, topic_id, ids) if sort == "top" else ids
        shown = chosen[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
        papers = site.store().get_papers(shown)
        from paperwire.web.views import make_cards

        found = [papers[i] for i in shown if i in papers]
        cards = make_cards(found, site.accounts().local_votes([p.id for p in found]), set())
        weeks = live.weekly_volume(topic_id)
        return site.render(request, "topic.html", topic=topic, cards=cards, total=total, page=page, pages=pages,
                           sort=sort, weeks=weeks, peak=max((n for _, n in weeks), default=0))

    @router.get("/api/topics", summary="Topics as JSON, largest first, and the rising ones")
    def topics_json() -> Response:
        live = live_or_none()
        if live is None:
            return JSONResponse({"error": no_topics_message(site)}, status_code=404)
        model = live.model
        sizes = live.sizes()
        topics = sorted(model.topics, key=lambda t: -sizes.get(t.id, 0))  # type: ignore[union-attr]
        return JSONResponse({"embedder": model.embedder, "built_at": model.built_at,  # type: ignore[union-attr]
                             "topics": [{**t.to_dict(), "size": sizes.get(t.id, 0)} for t in topics],
                             "rising": [r.to_dict() for r in live.rising(10)]})

    @router.get("/api/topics/{topic_id}", summary="One topic: label, terms, weekly volume, newest papers")
    def topic_json(topic_id: int, limit: Annotated[int, Query(ge=1, le=100)] = 30) -> Response:
        live = live_or_none()
        if live is None:
            return JSONResponse({"error": no_topics_message(site)}, status_code=404)
        topic = live.model.by_id.get(topic_id)  # type: ignore[union-attr]
        if topic is None:
            raise HTTPException(404, f"no topic {topic_id}")
        ids, days = live.members(topic_id)
        return JSONResponse({**topic.to_dict(), "size": len(ids),
                             "weekly": [{"week_of": w, "papers": n} for w, n in live.weekly_volume(topic_id)],
                             "papers": [{"id": pid, "day": day_label(int(d))} for pid, d in
                                        zip(ids[:limit], days[:limit].tolist(), strict=True)]})

    return router


def top_ids(site: Site, topic_id: int, ids: list[str]) -> list[str]:
    """A topic's papers by votes (imported and local), newest first among equals (ids come newest first)."""
    def load() -> list[str]:
        votes = PaperFacts(site.store()).upvotes(ids)
        local = site.accounts().local_votes(ids)
        return sorted(ids, key=lambda pid: -(votes.get(pid, 0) + local.get(pid, 0)))

    return site.cached(("topic-top", topic_id, service(site).live.version), load)


__all__ = ["build_router", "paper_topic", "rising_topics", "service", "TopicsService"]
