"""A signed-in user's library on the site: save under tags, read / not-relevant marks, keyword alerts,
imports, and the recommendations learnt from it (/recommended, one list per tag).

Every POST takes the CSRF token. Forms redirect back to the page they came from; a fetch that asks
for JSON gets the new state instead.
"""

from __future__ import annotations

import functools
import json
import tempfile
import threading
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response

from paperwire.library_import import FORMATS as IMPORT_FORMATS
from paperwire.library_import import import_library
from paperwire.model import InvalidPaperId, Paper, canonical_id
from paperwire.rank.recommend import Recommender
from paperwire.store import PaperNotFound
from paperwire.store.library import MARKS, MAX_TAG_LENGTH, NOT_RELEVANT, READ, Library, clean_tag
from paperwire.web.comment_routes import comment_counts
from paperwire.web.site import SearchUnavailable, Site
from paperwire.web.views import Card, make_cards

MAX_IMPORT_BYTES = 5 * 1024 * 1024
RECOMMENDED = 30
MAX_RECOMMENDED = 100
LIBRARY_PAGE = 200


@dataclass
class LibraryCard(Card):
    """A card with the signed-in user's library state and, on /recommended, why it is there."""

    saved_tags: list[str] = field(default_factory=list)
    read: bool = False
    not_relevant: bool = False
    why_text: str = ""
    why: list[tuple[str, str]] = field(default_factory=list)  # (id, title) of the saved papers it is near


@dataclass(frozen=True)
class VectorSnapshot:
    """The index's ids and vectors at one revision (what the recommender reads)."""

    ids: list[str]
    vectors: np.ndarray

    def all_ids(self) -> list[str]:
        return self.ids

    def all_vectors(self) -> np.ndarray:
        return self.vectors

    def paper_vectors(self, ids: list[str]) -> np.ndarray:
        if ids == self.ids:  # what a recommender asks for: every paper, in order
            return self.vectors
        return self.vectors[[self.row_of[i] for i in ids]]

    @functools.cached_property
    def row_of(self) -> dict[str, int]:
        return {pid: i for i, pid in enumerate(self.ids)}


class Snapshots:
    """Decodes the index's vectors once per index revision: a recommendation request ranks every
    paper and must not decode the whole index each time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[int, int] | None = None
        self._current: VectorSnapshot | None = None

    def of(self, index: Any) -> VectorSnapshot:
        with self._lock:
            key = (id(index), int(getattr(index, "rev", 0)))
            if key != self._key or self._current is None:
                ids = index.all_ids()
                self._current = VectorSnapshot(ids, index.paper_vectors(ids) if ids else np.zeros((0, 1), np.float32))
                self._key = key
            return self._current


def library_cards(site: Site, user_id: int, papers: list[Paper]) -> list[LibraryCard]:
    """Cards carrying the user's library state: saved (and under which tags), read, not relevant."""
    ids = [p.id for p in papers]
    plain = make_cards(papers, site.accounts().local_votes(ids), site.accounts().voted_among(user_id, ids))
    written = comment_counts(site, ids)
    for card in plain:
        card.comments += written.get(card.id, 0)
    library = Library(site.store())
    tags = library.tags_of(user_id, ids)
    read, not_relevant = set(library.marked(user_id, READ)), set(library.marked(user_id, NOT_RELEVANT))
    return [LibraryCard(**{f.name: getattr(card, f.name) for f in fields(Card)} | {"saved": card.id in tags},
                        saved_tags=tags.get(card.id, []), read=card.id in read, not_relevant=card.id in not_relevant)
            for card in plain]


def build_router(site: Site) -> APIRouter:
    router = APIRouter(tags=["library"])
    snapshots = Snapshots()

    def user_or_login(request: Request, target: str) -> dict[str, Any] | Response:
        user = site.current_user(request)
        if user is None:
            return RedirectResponse(f"/login?next={target}", status_code=303)
        return user

    def cards(user_id: int, papers: list[Paper]) -> list[LibraryCard]:
        return library_cards(site, user_id, papers)

    def paper_or_404(paper_id: str) -> Paper:
        try:
            return site.store().get_paper(canonical_id(paper_id))
        except (InvalidPaperId, PaperNotFound):
            raise HTTPException(404, f"no paper with id {paper_id[:80]!r}") from None

    def tag_or_422(tag: str) -> str:
        try:
            return clean_tag(tag)
        except ValueError as exc:
            raise HTTPException(422, f"tag: {exc}") from None

    def back(request: Request, fallback: str, notice: str | None = None) -> Response:
        from paperwire.web.pages import _local_path

        target = _local_path(request.headers.get("referer", "")) or fallback
        response = RedirectResponse(target, status_code=303)
        return site.notice(response, notice) if notice else response

    def wants_json(request: Request) -> bool:
        return "application/json" in request.headers.get("accept", "")

    def recommendations(user_id: int, tag: str | None, limit: int) -> tuple[list[Any], str | None]:
        """(recommendations, a note when the search index is not ready and trending stands in)."""
        try:
            vectors, note = snapshots.of(site.index(wait=5.0)), None
        except SearchUnavailable as exc:
            vectors, note = None, f"{exc}: showing trending papers meanwhile."
        return Recommender(site.store(), vectors).for_user(user_id, tag=tag, limit=limit), note

    # ------------------------------------------------------------ saving and marking

    @router.post("/papers/{paper_id:path}/save", summary="Save a paper to your library (under a tag), or remove it")
    def save(request: Request, paper_id: str, csrf_token: Annotated[str, Form(max_length=200)] = "",
             tag: Annotated[str, Form(max_length=200)] = "",
             remove: Annotated[bool, Form()] = False) -> Response:
        site.check_csrf(request, csrf_token)
        user = site.current_user(request)
        if user is None:
            if wants_json(request):
                raise HTTPException(401, "log in to save papers")
            return RedirectResponse(f"/login?next=/papers/{paper_id}", status_code=303)
        paper, tag = paper_or_404(paper_id), tag_or_422(tag)
        library = Library(site.store())
        if remove:
            library.unsave(user["id"], paper.id, tag if tag else None)
        else:
            library.save(user["id"], [paper.id], tag)
        tags = library.tags_of(user["id"], [paper.id]).get(paper.id, [])
        if wants_json(request):
            return JSONResponse({"id": paper.id, "saved": bool(tags), "tags": tags})
        where = f"“{tag}”" if tag else "your library"
        return back(request, f"/papers/{paper.id}", f"Removed from {where}." if remove else f"Saved to {where}.")

    @router.post("/papers/{paper_id:path}/mark", summary="Mark a paper read or not relevant (or undo)")
    def mark(request: Request, paper_id: str, csrf_token: Annotated[str, Form(max_length=200)] = "",
             mark: Annotated[str, Form(pattern="^(read|not_relevant)$")] = READ,
             undo: Annotated[bool, Form()] = False) -> Response:
        site.check_csrf(request, csrf_token)
        user = site.current_user(request)
        if user is None:
            if wants_json(request):
                raise HTTPException(401, "log in to mark papers")
            return RedirectResponse(f"/login?next=/papers/{paper_id}", status_code=303)
        paper = paper_or_404(paper_id)
        Library(site.store()).mark(user["id"], paper.id, mark, on=not undo)
        if wants_json(request):
            return JSONResponse({"id": paper.id, "mark": mark, "on": not undo})
        label = {READ: "read", NOT_RELEVANT: "not relevant"}[mark]
        text = (f"No longer marked {label}." if undo else
                "Marked not relevant: it will not be recommended again, and similar papers rank lower."
                if mark == NOT_RELEVANT else "Marked read: it will not be recommended again.")
        return back(request, f"/papers/{paper.id}", text)

    # ------------------------------------------------------------ the library page

    @router.get("/library", summary="Your library: saved papers by tag, marks, keyword alerts, import")
    def library_page(request: Request, tag: Annotated[str | None, Query(max_length=MAX_TAG_LENGTH)] = None) -> Response:
        user = user_or_login(request, "/library")
        if isinstance(user, Response):
            return user
        library = Library(site.store())
        selected = tag_or_422(tag) if tag is not None else None
        saved = library.saved(user["id"], selected)[:LIBRARY_PAGE]
        found = site.store().get_papers(saved)
        papers = list({found[pid].id: found[pid] for pid in saved if pid in found}.values())
        marked = {m: library.marked(user["id"], m) for m in MARKS}
        return site.render(request, "library.html", tags=library.tags(user["id"]), selected=selected,
                           cards=cards(user["id"], papers), searches=library.searches(user["id"]),
                           marked={m: len(ids) for m, ids in marked.items()}, report=None,
                           import_formats=[f for f in IMPORT_FORMATS if f != "auto"])

    @router.post("/library/alerts", summary="Add or remove a keyword alert (a saved search for your digest)")
    def alerts(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "",
               query: Annotated[str, Form(max_length=1000)] = "",
               remove: Annotated[bool, Form()] = False) -> Response:
        site.check_csrf(request, csrf_token)
        user = site.require_user(request)
        library = Library(site.store())
        if remove:
            library.remove_search(user["id"], query)
            return back(request, "/library", "Keyword alert removed.")
        try:
            library.add_search(user["id"], query)
        except ValueError as exc:
            raise HTTPException(422, f"query: {exc}") from None
        return back(request, "/library", "Keyword alert saved: new matches go into your digest.")

    @router.post("/library/import", summary="Import a BibTeX or CSL-JSON file or a list of arXiv ids")
    def import_file(request: Request, file: Annotated[UploadFile, File()],
                    csrf_token: Annotated[str, Form(max_length=200)] = "",
                    tag: Annotated[str, Form(max_length=200)] = "",
                    format: Annotated[str, Form(pattern="^(auto|bibtex|csl-json|ids)$")] = "auto") -> Response:
        site.check_csrf(request, csrf_token)
        user = user_or_login(request, "/library")
        if isinstance(user, Response):
            return user
        tag = tag_or_422(tag)
        data = file.file.read(MAX_IMPORT_BYTES + 1)
        if len(data) > MAX_IMPORT_BYTES:
            raise HTTPException(413, f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB")
        suffix = Path(file.filename or "").suffix.lower()[:10] if file.filename else ""
        with tempfile.TemporaryDirectory(prefix="paperwire-import-") as tmp:
            path = Path(tmp) / ("library" + suffix)
            path.write_bytes(data)
            try:
                report = import_library(site.store(), user["id"], path, tag=tag or None, fmt=format)
            except (OSError, ValueError) as exc:
                raise HTTPException(422, f"file: {exc}") from None
        if wants_json(request):
            return JSONResponse(report.to_dict())
        library = Library(site.store())
        return site.render(request, "library.html", tags=library.tags(user["id"]), selected=tag or None, cards=[],
                           searches=library.searches(user["id"]), report=report, filename=file.filename or "",
                           marked={m: len(library.marked(user["id"], m)) for m in MARKS},
                           import_formats=[f for f in IMPORT_FORMATS if f != "auto"])

    # ------------------------------------------------------------ recommendations

    @router.get("/recommended", summary="Papers recommended from your library (or one tag), each with why")
    def recommended_page(request: Request,
                         tag: Annotated[str | None, Query(max_length=MAX_TAG_LENGTH)] = None) -> Response:
        user = user_or_login(request, "/recommended")
        if isinstance(user, Response):
            return user
        selected = tag_or_422(tag) if tag else None
        recs, note = recommendations(user["id"], selected, RECOMMENDED)
        shown = cards(user["id"], [r.paper for r in recs])
        for card, rec in zip(shown, recs, strict=True):
            card.why_text, card.why = rec.why_text(), [(r.paper_id, r.title) for r in rec.why]
        library = Library(site.store())
        return site.render(request, "recommended.html", cards=shown, tags=library.tags(user["id"]),
                           selected=selected, note=note, learnt=bool(recs) and recs[0].source != "trending")

    @router.get("/api/recommended", summary="Your recommendations as JSON (the same as `paperwire recommend --json`)")
    def recommended_api(request: Request, tag: Annotated[str | None, Query(max_length=MAX_TAG_LENGTH)] = None,
                        limit: Annotated[int, Query(ge=1, le=MAX_RECOMMENDED)] = 10) -> Response:
        user = site.current_user(request)
        if user is None:
            raise HTTPException(401, "log in first")
        recs, _ = recommendations(user["id"], tag_or_422(tag) if tag else None, limit)
        return Response(json.dumps([r.to_dict() for r in recs], ensure_ascii=False), media_type="application/json")

    return router
