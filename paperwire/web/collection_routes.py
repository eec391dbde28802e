"""Collections on the site: lists of papers with a note per paper, made from a reader's library or
added to from paper pages, shared by URL (/collections/{token}), with an Atom feed, a BibTeX file and
JSON; anyone who can see one can copy its papers into their own library.

Who sees what: a public collection is listed on /collections and on the pages of its papers; an
unlisted one only by its URL; a private one only by its owner (anyone else gets the same 404 as for a
collection that does not exist). Only the owner changes one. Every POST takes the CSRF token; forms
redirect, and a request that asks for JSON gets the new state instead. A refused request (a paper id
that is not listed here, a note over the limit, someone else's collection) writes nothing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from paperwire.bibtex_out import BibItem, write_bibtex
from paperwire.model import InvalidPaperId, Paper, canonical_id
from paperwire.store.collections import (
    MAX_DESCRIPTION,
    MAX_ITEMS,
    MAX_NOTE,
    MAX_TITLE,
    PRIVATE,
    PUBLIC,
    UNLISTED,
    CollectionError,
    CollectionInfo,
    CollectionItem,
    Collections,
)
from paperwire.store.library import MAX_TAG_LENGTH, Library, clean_tag
from paperwire.web.api import json_response, paper_core
from paperwire.web.feeds import ATOM, _stamp, _sub, _xml, base_url
from paperwire.web.site import Site
from paperwire.web.views import make_cards

LIST_PAGE = 30
MAX_LIST_PAGE = 100
FORM_TEXT = 100_000  # what a form field may carry; the limits users meet are checked with a plain message
IDS_FIELD = 40 * MAX_ITEMS
VISIBILITY_WORDS = {PUBLIC: "Public: listed on the collections page",
                    UNLISTED: "Unlisted: only people with the link",
                    PRIVATE: "Private: only you"}


def build_router(site: Site) -> APIRouter:
    router = APIRouter(tags=["collections"])

    def collections() -> Collections:
        return Collections(site.store())

    def user_id_of(request: Request) -> int | None:
        user = site.current_user(request)
        return user["id"] if user else None

    def visible(request: Request, token: str) -> CollectionInfo:
        """The collection if the reader may see it; otherwise the 404 of one that does not exist."""
        found = collections().by_token(token)
        if found is None or not found.visible_to(user_id_of(request)):
            raise HTTPException(404, f"no collection {token[:40]!r}")
        return found

    def owned(request: Request, token: str, csrf_token: str) -> tuple[dict[str, Any], CollectionInfo]:
        site.check_csrf(request, csrf_token)
        user = site.require_user(request)
        found = visible(request, token)
        if found.user_id != user["id"]:
            raise HTTPException(403, "only its owner can change this collection")
        return user, found

    def refused(exc: CollectionError) -> HTTPException:
        return HTTPException(422, str(exc))

    def wants_json(request: Request) -> bool:
        return "application/json" in request.headers.get("accept", "")

    def paper_ids(text: str) -> list[str]:
        """The stored ids of the papers named (arXiv ids, URLs or paperwire ids, separated by spaces, commas
        or lines); every one must be a paper listed here, or nothing is done."""
        named = list(dict.fromkeys(text.replace(",", " ").split()))
        if len(named) > MAX_ITEMS:
            raise HTTPException(422, f"paper_ids: at most {MAX_ITEMS:,} papers at once")
        wanted: list[str] = []
        for name in named:
            try:
                wanted.append(canonical_id(name))
            except InvalidPaperId:
                raise HTTPException(422, f"paper_ids: not a paper id: {name[:80]!r}") from None
        found = site.store().get_papers(wanted)
        missing = [pid for pid in wanted if pid not in found]
        if missing:
            shown = ", ".join(repr(pid[:80]) for pid in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise HTTPException(422, f"paper_ids: no paper listed here with id {shown}{more}")
        return list(dict.fromkeys(found[pid].id for pid in wanted))

    def one_paper_id(text: str) -> str:
        ids = paper_ids(text)
        if len(ids) != 1:
            raise HTTPException(422, "paper_id: give one paper id")
        return ids[0]

    def library_ids(user_id: int, tag: str | None) -> list[str]:
        """Papers of the reader's own library (one tag's, or all), newest saved first."""
        library = Library(site.store())
        if tag is not None and tag not in library.tags(user_id):
            raise HTTPException(422, f"tag: your library has no tag {tag!r}")
        saved = library.saved(user_id, tag)
        found = site.store().get_papers(saved)
        return list(dict.fromkeys(found[pid].id for pid in saved if pid in found))

    def tag_or_422(tag: str) -> str:
        try:
            return clean_tag(tag)
        except ValueError as exc:
            raise HTTPException(422, f"tag: {exc}") from None

    def resolved(found: CollectionInfo) -> list[tuple[CollectionItem, Paper]]:
        items = collections().items(found.id)
        papers = site.store().get_papers([i.paper_id for i in items])
        return [(item, papers[item.paper_id]) for item in items if item.paper_id in papers]

    def collection_url(request: Request, found: CollectionInfo) -> str:
        return f"{base_url(site, request)}/collections/{found.token}"

    def describe(request: Request, found: CollectionInfo) -> dict[str, Any]:
        url = collection_url(request, found)
        return {"id": found.token, "title": found.title, "description": found.description,
                "visibility": found.visibility, "owner": found.owner, "numPapers": found.size,
                "createdAt": found.created_at, "updatedAt": found.updated_at, "url": url,
                "feed": f"{url}.atom", "bibtex": f"{url}.bib"}

    def done(request: Request, found: CollectionInfo | None, target: str, notice: str) -> Response:
        if wants_json(request):
            if found is None:
                return JSONResponse({"deleted": True})
            fresh = collections().by_token(found.token)
            return JSONResponse(describe(request, fresh or found))
        return site.notice(RedirectResponse(target, status_code=303), notice)

    # ------------------------------------------------------------ reading

    @router.get("/collections", summary="Public collections, and yours")
    def list_page(request: Request, page: Annotated[int, Query(ge=1, le=1000)] = 1) -> Response:
        def build() -> Response:
            user_id = user_id_of(request)
            store = collections()
            shown = store.public(limit=LIST_PAGE, offset=(page - 1) * LIST_PAGE)
            pages = max(1, -(-store.count_public() // LIST_PAGE))
            mine = store.of_user(user_id) if user_id is not None else []
            tags = Library(site.store()).tags(user_id) if user_id is not None else {}
            return site.render(request, "collections.html", shown=shown, mine=mine, page=page, pages=pages,
                               tags=tags, visibilities=VISIBILITY_WORDS, limits=_limits())

        return site.shared_page(request, build)

    @router.get("/collections/{token}.atom", summary="Atom feed of a collection (notes as content)",
                responses={200: {"content": {"application/atom+xml": {}}}})
    def feed(request: Request, token: str) -> Response:
        found = visible(request, token)
        return collection_atom(base_url(site, request), found, resolved(found))

    @router.get("/collections/{token}.bib", summary="A collection as BibTeX (notes in annote)")
    def bibtex(request: Request, token: str) -> Response:
        found = visible(request, token)
        url = collection_url(request, found)
        base = base_url(site, request)
        text = write_bibtex([BibItem(paper, item.note, f"{base}/papers/{paper.id}") for item, paper in resolved(found)],
                            comment=f"{found.title} — a paperwire collection by {found.owner}: {url}")
        return Response(text, media_type="application/x-bibtex; charset=utf-8", headers={
            "Content-Disposition": f"inline; filename=\"{_file_name(found)}.bib\""})

    @router.get("/collections/{token}", summary="A collection's page")
    def collection_page(request: Request, token: str) -> Response:
        def build() -> Response:
            found = visible(request, token)
            rows = resolved(found)
            papers = [paper for _, paper in rows]
            ids = [p.id for p in papers]
            user = site.current_user(request)
            if user:
                from paperwire.web.library_routes import library_cards

                cards = library_cards(site, user["id"], papers)
            else:
                cards = make_cards(papers, site.accounts().local_votes(ids), set())
            notes = [item.note for item, _ in rows]
            owner = user is not None and user["id"] == found.user_id
            tags = Library(site.store()).tags(user["id"]) if user else {}
            return site.render(request, "collection.html", collection=found, rows=list(zip(cards, notes, strict=True)),
                               owner=owner, tags=tags, visibilities=VISIBILITY_WORDS, limits=_limits(),
                               url=collection_url(request, found))

        return site.shared_page(request, build)

    @router.get("/api/collections", summary="Public collections as JSON, most recently changed first")
    def list_api(request: Request, limit: Annotated[int, Query(ge=1, le=MAX_LIST_PAGE)] = LIST_PAGE,
                 p: Annotated[int, Query(ge=0, le=10_000)] = 0) -> Response:
        return json_response([describe(request, c) for c in collections().public(limit=limit, offset=p * limit)])

    @router.get("/api/collections/mine", summary="Your collections as JSON (every visibility)")
    def mine_api(request: Request) -> Response:
        user = site.require_user(request)
        return json_response([describe(request, c) for c in collections().of_user(user["id"])])

    @router.get("/api/collections/{token}", summary="One collection as JSON, its papers in order with their notes")
    def collection_api(request: Request, token: str) -> Response:
        found = visible(request, token)
        rows = resolved(found)
        votes = site.accounts().local_votes([paper.id for _, paper in rows])
        items = [{"position": place, "note": item.note, "addedAt": item.added_at,
                  "paper": paper_core(paper, paper.upvotes + votes.get(paper.id, 0))}
                 for place, (item, paper) in enumerate(rows, 1)]
        return json_response(describe(request, found) | {"items": items})

    # ------------------------------------------------------------ making and changing

    @router.post("/collections", summary="Make a collection: from your library (or one tag), or from paper ids")
    def create(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "",
               title: Annotated[str, Form(max_length=FORM_TEXT)] = "",
               description: Annotated[str, Form(max_length=FORM_TEXT)] = "",
               visibility: Annotated[str, Form(max_length=20)] = PUBLIC,
               source: Annotated[str, Form(pattern="^(library|papers)$")] = "papers",
               tag: Annotated[str | None, Form(max_length=200)] = None,
               paper_ids_text: Annotated[str, Form(alias="paper_ids", max_length=IDS_FIELD)] = "",
               note: Annotated[str, Form(max_length=FORM_TEXT)] = "") -> Response:
        site.check_csrf(request, csrf_token)
        user = site.current_user(request)
        if user is None:
            if wants_json(request):
                raise HTTPException(401, "log in to make a collection")
            return RedirectResponse("/login?next=/collections", status_code=303)
        if source == "library":
            ids = library_ids(user["id"], tag_or_422(tag) if tag is not None else None)
            items = [(pid, "") for pid in ids]
        else:
            ids = paper_ids(paper_ids_text)
            items = [(pid, note if len(ids) == 1 else "") for pid in ids]  # a note goes with a single paper
        try:
            found = collections().create(user["id"], title, description=description, visibility=visibility,
                                         items=items)
        except CollectionError as exc:
            raise refused(exc) from None
        if wants_json(request):
            return JSONResponse(describe(request, found), status_code=201)
        count = f"{found.size} paper{'' if found.size == 1 else 's'}"
        return site.notice(RedirectResponse(f"/collections/{found.token}", status_code=303),
                           f"Collection made with {count}. Add a note to each below.")

    @router.post("/collections/{token}/settings", summary="Change a collection's title, description or visibility")
    def settings(request: Request, token: str, csrf_token: Annotated[str, Form(max_length=200)] = "",
                 title: Annotated[str | None, Form(max_length=FORM_TEXT)] = None,
                 description: Annotated[str | None, Form(max_length=FORM_TEXT)] = None,
                 visibility: Annotated[str | None, Form(max_length=20)] = None) -> Response:
        _, found = owned(request, token, csrf_token)
        try:
            collections().update(found, title=title, description=description, visibility=visibility)
        except CollectionError as exc:
            raise refused(exc) from None
        return done(request, found, f"/collections/{found.token}", "Collection saved.")

    @router.post("/collections/add", summary="Add papers (with a note) to one of your collections")
    def add(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "",
            collection: Annotated[str, Form(max_length=40)] = "",
            paper_ids_text: Annotated[str, Form(alias="paper_ids", max_length=IDS_FIELD)] = "",
            note: Annotated[str, Form(max_length=FORM_TEXT)] = "") -> Response:
        _, found = owned(request, collection, csrf_token)
        ids = paper_ids(paper_ids_text)
        try:
            result = collections().add(found, [(pid, note if len(ids) == 1 else "") for pid in ids])
        except CollectionError as exc:
            raise refused(exc) from None
        if wants_json(request):
            fresh = collections().by_token(found.token) or found
            return JSONResponse(describe(request, fresh) | {"added": result.added, "already": result.already})
        text = (f"Added to “{found.title}”." if result.added else f"Already in “{found.title}”.")
        target = f"/papers/{ids[0]}" if len(ids) == 1 else f"/collections/{found.token}"
        return site.notice(RedirectResponse(target, status_code=303), text)

    @router.post("/collections/{token}/note", summary="Change the note of a paper in your collection")
    def set_note(request: Request, token: str, csrf_token: Annotated[str, Form(max_length=200)] = "",
                 paper_id: Annotated[str, Form(max_length=200)] = "",
                 note: Annotated[str, Form(max_length=FORM_TEXT)] = "") -> Response:
        _, found = owned(request, token, csrf_token)
        pid = one_paper_id(paper_id)
        try:
            changed = collections().set_note(found, pid, note)
        except CollectionError as exc:
            raise refused(exc) from None
        if not changed:
            raise HTTPException(404, f"paper {pid!r} is not in this collection")
        return done(request, found, f"/collections/{found.token}#c-{pid}", "Note saved.")

    @router.post("/collections/{token}/move", summary="Move a paper up, down, or to a place in your collection")
    def move(request: Request, token: str, csrf_token: Annotated[str, Form(max_length=200)] = "",
             paper_id: Annotated[str, Form(max_length=200)] = "",
             direction: Annotated[str | None, Form(pattern="^(up|down)$")] = None,
             to: Annotated[int | None, Form(ge=1, le=MAX_ITEMS)] = None) -> Response:
        _, found = owned(request, token, csrf_token)
        pid = one_paper_id(paper_id)
        order = [i.paper_id for i in collections().items(found.id)]
        if pid not in order:
            raise HTTPException(404, f"paper {pid!r} is not in this collection")
        if to is None:
            if direction is None:
                raise HTTPException(422, "give a direction (up or down) or a place (to)")
            to = order.index(pid) + (0 if direction == "up" else 2)
        collections().move(found, pid, to)
        return done(request, found, f"/collections/{found.token}#c-{pid}", "Moved.")

    @router.post("/collections/{token}/order", summary="Set the whole order of your collection at once")
    def reorder(request: Request, token: str, csrf_token: Annotated[str, Form(max_length=200)] = "",
                paper_ids_text: Annotated[str, Form(alias="paper_ids", max_length=IDS_FIELD)] = "") -> Response:
        _, found = owned(request, token, csrf_token)
        try:
            collections().reorder(found, paper_ids(paper_ids_text))
        except CollectionError as exc:
            raise refused(exc) from None
        return done(request, found, f"/collections/{found.token}", "Order saved.")

    @router.post("/collections/{token}/remove", summary="Take a paper out of your collection")
    def remove(request: Request, token: str, csrf_token: Annotated[str, Form(max_length=200)] = "",
               paper_id: Annotated[str, Form(max_length=200)] = "") -> Response:
        _, found = owned(request, token, csrf_token)
        pid = one_paper_id(paper_id)
        if not collections().remove(found, pid):
            raise HTTPException(404, f"paper {pid!r} is not in this collection")
        return done(request, found, f"/collections/{found.token}", "Removed from the collection.")

    @router.post("/collections/{token}/delete", summary="Delete your collection (the papers stay listed)")
    def delete(request: Request, token: str, csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
        _, found = owned(request, token, csrf_token)
        collections().delete(found)
        return done(request, None, "/collections", f"Collection “{found.title}” deleted.")

    @router.post("/collections/{token}/copy", summary="Save a collection's papers into your library under a tag")
    def copy(request: Request, token: str, csrf_token: Annotated[str, Form(max_length=200)] = "",
             tag: Annotated[str | None, Form(max_length=200)] = None) -> Response:
        site.check_csrf(request, csrf_token)
        user = site.current_user(request)
        if user is None:
            if wants_json(request):
                raise HTTPException(401, "log in to copy a collection into your library")
            return RedirectResponse(f"/login?next=/collections/{quote(token)}", status_code=303)
        found = visible(request, token)
        chosen = tag_or_422(found.title[:MAX_TAG_LENGTH] if tag is None else tag)
        ids = [paper.id for _, paper in resolved(found)]
        added = Library(site.store()).save(user["id"], ids, chosen)
        if wants_json(request):
            return JSONResponse({"tag": chosen, "papers": len(ids), "added": added})
        where = f"under “{chosen}”" if chosen else "untagged"
        target = f"/library?tag={quote(chosen)}" if chosen else "/library"
        return site.notice(RedirectResponse(target, status_code=303),
                           f"{len(ids)} papers of “{found.title}” are in your library {where} ({added} new).")

    # Templates of other pages (the paper page, the library) show the reader's collections through these.
    site.templates.globals["collections_of"] = lambda user_id: collections().of_user(user_id)
    site.templates.globals["public_collections_with"] = lambda paper_id: collections().public_with_paper(paper_id)
    site.templates.globals["collection_visibilities"] = VISIBILITY_WORDS
    return router


def _limits() -> dict[str, int]:
    return {"title": MAX_TITLE, "description": MAX_DESCRIPTION, "note": MAX_NOTE}


def _file_name(found: CollectionInfo) -> str:
    words = "".join(c if c.isascii() and c.isalnum() else "-" for c in found.title.lower()).strip("-")
    return "-".join(w for w in words.split("-") if w)[:60] or "collection"


def collection_atom(base: str, found: CollectionInfo, rows: list[tuple[CollectionItem, Paper]]) -> Response:
    """Atom 1.0: one entry per paper in the collection's order; the abstract as summary, the note as content."""
    url = f"{base}/collections/{found.token}"
    feed = ET.Element(f"{{{ATOM}}}feed")
    _sub(feed, f"{{{ATOM}}}title", found.title)
    if found.description:
        _sub(feed, f"{{{ATOM}}}subtitle", found.description)
    _sub(feed, f"{{{ATOM}}}link", href=url, rel="alternate", type="text/html")
    _sub(feed, f"{{{ATOM}}}link", href=f"{url}.atom", rel="self", type="application/atom+xml")
    _sub(feed, f"{{{ATOM}}}id", url)
    _sub(feed, f"{{{ATOM}}}updated", found.updated_at)
    _sub(_sub(feed, f"{{{ATOM}}}author"), f"{{{ATOM}}}name", found.owner)
    for item, paper in rows:
        entry = _sub(feed, f"{{{ATOM}}}entry")
        page = f"{base}/papers/{paper.id}"
        _sub(entry, f"{{{ATOM}}}id", page)
        _sub(entry, f"{{{ATOM}}}title", paper.title)
        _sub(entry, f"{{{ATOM}}}link", href=page, rel="alternate", type="text/html")
        _sub(entry, f"{{{ATOM}}}updated", item.added_at)
        _sub(entry, f"{{{ATOM}}}published", _stamp(paper.published or paper.listed_on))
        for name in paper.authors:
            _sub(_sub(entry, f"{{{ATOM}}}author"), f"{{{ATOM}}}name", name)
        _sub(entry, f"{{{ATOM}}}summary", paper.abstract)
        if item.note:
            _sub(entry, f"{{{ATOM}}}content", item.note, type="text")
        for category in paper.categories:
            _sub(entry, f"{{{ATOM}}}category", term=category)
    return _xml(feed, "application/atom+xml")
