"""The map of all papers: /map (the page), /api/map (what it draws, as a compact binary buffer).

GET /api/map/meta             version, point count, topics (index, id, label, position), newest day
GET /api/map/points.bin?v=    the points (paperwire.rank.layout.encode_points: 8 bytes a paper)
GET /api/map/paper/{i}?v=     id, title and topic of point i (hover and click)
GET /api/map/highlight?q=&v=  points of a search's hits
GET /api/map/library?v=       points of the signed-in reader's saved papers
Point numbers belong to one version of the map; a request with another version is a 409, and the page
reloads the map. Papers that came after the layout sit at the middle of their topic until the next build.
A home without a map (no vectors yet, or no build yet) gets a page that says so and 404 JSON.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from paperwire.rank.layout import NO_VALUE, MapLayout, encode_points, load_map, map_manifest
from paperwire.rank.topics import LiveTopics
from paperwire.store.library import Library
from paperwire.web.site import MAX_QUERY_CHARS, SearchUnavailable, Site
from paperwire.web.topic_routes import service

HIGHLIGHT_HITS = 100
# The site's policy (paperwire/web/app.py) plus 'unsafe-eval' on this page alone: the WebGL library (regl)
# compiles its draw calls with `new Function`. The page shows no user text as HTML (titles go in with
# textContent) and loads scripts from this site only.
MAP_PAGE_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self' 'unsafe-eval'; "
                   "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


@dataclass
class MapPoints:
    """The points as served: the layout's papers, then papers that joined a topic since."""

    version: str
    ids: list[str]
    positions: np.ndarray
    topic_index: np.ndarray  # index into `topics`, NO_VALUE for none
    payload: bytes
    meta: dict[str, Any]

    def __post_init__(self) -> None:
        self.position = {pid: i for i, pid in enumerate(self.ids)}


class MapState:
    def __init__(self) -> None:
        self.layout: MapLayout | None = None
        self.points: MapPoints | None = None
        self.lock = threading.Lock()

    def current(self, site: Site, live: LiveTopics) -> MapPoints | None:
        manifest = map_manifest(site.home)
        if manifest is None:
            return None
        with self.lock:
            if self.layout is None or self.layout.generation != int(manifest["generation"]):
                self.layout = load_map(site.home)
                self.points = None
            layout = self.layout
            if layout is None:
                return None
            model = live.model
            version = f"{layout.generation}.{model.generation if model else 0}.{live.version}"
            if self.points is None or self.points.version != version:
                self.points = compose(layout, live, version)
            return self.points


def compose(layout: MapLayout, live: LiveTopics, version: str) -> MapPoints:
    model = live.model
    usable = model is not None and model.embedder == layout.embedder
    topics = sorted(model.topics, key=lambda t: t.id) if usable else []  # type: ignore[union-attr]
    index_of = {t.id: i for i, t in enumerate(topics)}
    ids = list(layout.ids)
    positions = layout.positions
    topic_index = np.full(len(ids), NO_VALUE, dtype=np.uint16)
    days = np.full(len(ids), -1, dtype=np.int32)
    if usable:
        rows = np.fromiter((model.position.get(pid, -1) for pid in ids), dtype=np.int64, count=len(ids))  # type: ignore[union-attr]
        known = rows >= 0
        lookup = np.full(max(index_of, default=0) + 1, NO_VALUE, dtype=np.uint16)
        for topic_id, i in index_of.items():
            lookup[topic_id] = i
        topic_index[known] = lookup[model.assignment[rows[known]]]  # type: ignore[union-attr]
        days[known] = model.days[rows[known]]  # type: ignore[union-attr]
        # papers clustered or joined since the layout: at the middle of their topic's laid-out papers
        centres = np.zeros((len(topics), 2), dtype=np.float32)
        for i in range(len(topics)):
            members = topic_index == i
            if members.any():
                centres[i] = np.median(positions[members], axis=0)
        in_layout = set(ids)
        extra = [(pid, model.topic_of(pid), int(model.days[model.position[pid]]))  # type: ignore[union-attr]
                 for pid in model.ids if pid not in in_layout]  # type: ignore[union-attr]
        extra += [(pid, t, d) for pid, t, d in zip(live.extra_ids, live.extra_topics, live.extra_days, strict=True)
                  if pid not in in_layout]
        if extra:
            spread = float(np.ptp(positions, axis=0).max()) * 0.01 if len(positions) else 1.0
            jitter = np.random.default_rng(len(extra)).normal(0, spread, (len(extra), 2)).astype(np.float32)
            extra_index = np.asarray([index_of.get(t, NO_VALUE) if t is not None else NO_VALUE for _, t, _ in extra],
                                     dtype=np.uint16)
            extra_positions = np.asarray([centres[i] if i != NO_VALUE else (0.0, 0.0) for i in extra_index],
                                         dtype=np.float32) + jitter
            ids += [pid for pid, _, _ in extra]
            positions = np.concatenate([positions, extra_positions])
            topic_index = np.concatenate([topic_index, extra_index])
            days = np.concatenate([days, np.asarray([d for _, _, d in extra], dtype=np.int32)])
    newest = int(days.max()) if len(days) else -1
    ages = np.where(days >= 0, np.clip(newest - days, 0, NO_VALUE - 1), NO_VALUE).astype(np.uint16)
    payload, bounds = encode_points(positions, topic_index, ages)
    span = [max(bounds[2] - bounds[0], 1e-9), max(bounds[3] - bounds[1], 1e-9)]
    topic_meta = []
    for i, topic in enumerate(topics):
        members = topic_index == i
        if not members.any():
            continue
        centre = np.median(positions[members], axis=0)
        topic_meta.append({"index": i, "id": topic.id, "label": topic.label, "size": int(members.sum()),
                           # where the label goes, in the same 0..1 units as the points
                           "x": round(float((centre[0] - bounds[0]) / span[0]), 4),
                           "y": round(float((centre[1] - bounds[1]) / span[1]), 4)})
    from paperwire.rank.topics import day_label

    meta = {"version": version, "points": len(ids), "method": layout.method, "embedder": layout.embedder,
            "built_at": layout.built_at, "newest_day": day_label(newest), "max_age": int(ages[ages != NO_VALUE].max())
            if (ages != NO_VALUE).any() else 0, "topics": topic_meta}
    return MapPoints(version, ids, positions, topic_index, payload, meta)


def map_state(site: Site) -> MapState:
    topics = service(site)
    if topics.map_state is None:
        topics.map_state = MapState()
    return topics.map_state


NO_MAP = ("There is no map yet: it is laid out from every paper's vector once the search index has them "
          "(or run `paperwire topics build`).")


def build_router(site: Site) -> APIRouter:
    router = APIRouter(tags=["map"])

    def points() -> MapPoints | None:
        return map_state(site).current(site, service(site).current())

    def stale(version: str, found: MapPoints) -> Response | None:
        if version and version != found.version:
            return JSONResponse({"error": "the map has changed; reload it", "version": found.version}, status_code=409)
        return None

    @router.get("/map", summary="A map of all papers")
    def map_page(request: Request) -> Response:
        found = points()
        if found is None:
            return site.render(request, "map.html", status_code=404, message=NO_MAP, q="")
        response = site.render(request, "map.html", message=None, q="")
        response.headers["Content-Security-Policy"] = MAP_PAGE_POLICY
        return response

    @router.get("/api/map/meta", summary="The map's version, size and topic labels")
    def meta() -> Response:
        found = points()
        if found is None:
            return JSONResponse({"error": NO_MAP}, status_code=404)
        return JSONResponse(found.meta, headers={"Cache-Control": "no-cache"})

    @router.get("/api/map/points.bin", summary="The map's points as a binary buffer (see paperwire.rank.layout)")
    def points_bin(v: Annotated[str, Query(max_length=64)] = "") -> Response:
        found = points()
        if found is None:
            return JSONResponse({"error": NO_MAP}, status_code=404)
        refused = stale(v, found)
        if refused is not None:
            return refused
        # one version's buffer never changes: the browser may keep it
        cache = "public, max-age=86400, immutable" if v else "no-cache"
        return Response(found.payload, media_type="application/octet-stream",
                        headers={"Cache-Control": cache, "X-Map-Version": found.version})

    @router.get("/api/map/paper/{point}", summary="The paper at one point of the map")
    def paper_at(point: int, v: Annotated[str, Query(max_length=64)] = "") -> Response:
        found = points()
        if found is None:
            return JSONResponse({"error": NO_MAP}, status_code=404)
        refused = stale(v, found)
        if refused is not None:
            return refused
        if not 0 <= point < len(found.ids):
            return JSONResponse({"error": f"no point {point}: the map has {len(found.ids)}"}, status_code=404)
        paper_id = found.ids[point]
        papers = site.store().get_papers([paper_id])
        if paper_id not in papers:
            return JSONResponse({"error": f"paper {paper_id} is no longer listed"}, status_code=404)
        topic = service(site).topic_of(paper_id)
        return JSONResponse({"id": paper_id, "title": papers[paper_id].title, "url": f"/papers/{paper_id}",
                             "topic": topic.to_dict() if topic else None})

    @router.get("/api/map/highlight", summary="The points of a search's best hits")
    def highlight(q: Annotated[str, Query(max_length=MAX_QUERY_CHARS)] = "",
                  v: Annotated[str, Query(max_length=64)] = "") -> Response:
        found = points()
        if found is None:
            return JSONResponse({"error": NO_MAP}, status_code=404)
        refused = stale(v, found)
        if refused is not None:
            return refused
        if not q.strip():
            return JSONResponse({"error": "q: give a search"}, status_code=422)
        try:
            # the papers that contain the words: a hybrid list is never short of weaker neighbours
            hits = site.search(q, limit=HIGHLIGHT_HITS, mode="lexical", snippets=False)
        except SearchUnavailable as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        where = [found.position[h.id] for h in hits if h.id in found.position]
        return JSONResponse({"q": q, "hits": len(hits), "points": where})

    @router.get("/api/map/library", summary="The points of the signed-in reader's saved papers")
    def library(request: Request, v: Annotated[str, Query(max_length=64)] = "") -> Response:
        user = site.current_user(request)
        if user is None:
            return JSONResponse({"error": "log in to see your library on the map"}, status_code=401)
        found = points()
        if found is None:
            return JSONResponse({"error": NO_MAP}, status_code=404)
        refused = stale(v, found)
        if refused is not None:
            return refused
        saved = Library(site.store()).saved(user["id"])
        return JSONResponse({"saved": len(saved), "points": [found.position[i] for i in saved if i in found.position]})

    return router


__all__ = ["build_router", "MapState", "compose"]
