"""Per-application state: the home, per-thread store connections, the search index, templates,
signing keys and rate limits; and the helpers every route uses (current user, CSRF, rendering)."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from paperwire.config import load_config
from paperwire.signing import signing_secret
from paperwire.store import SQLiteStore, open_store
from paperwire.store.accounts import Accounts, Listings
from paperwire.web.card_parts import CARD_PARTS_ENTRIES, CardPartsCache, day_label
from paperwire.web.security import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    RateLimited,
    RateLimiter,
    Signer,
    Ticket,
    new_nonce,
    parse_limits,
)
from paperwire.web.views import math_html

log = logging.getLogger("paperwire.web")

MAX_QUERY_CHARS = 300
MAX_PAGE_SIZE = 100
CACHE_ENTRIES = 4096
SEARCH_CACHE_ENTRIES = 4096  # ids, scores and snippets only: a few kB each
T = TypeVar("T")
NOTICE_COOKIE = "pw_notice"
_CSRF_SLOT = "csrf-slot-3f9c2a"  # where a shared page's CSRF token goes (a token is 64 hex digits)
INDEX_REFRESH_SECONDS = 5.0
INDEX_WAIT_SECONDS = 3.0  # a search during the first build answers soon, with a 503 that says so
# At start, up to this many papers new since the last save are embedded before search opens (a few
# seconds with MiniLM); more are indexed by their words first and embedded while the site serves.
EMBED_AT_ONCE = 64
BULK_BACKLOG = 2000  # more new papers than this: left to the ingesting process (see refresh_index)
BULK_GRACE_SECONDS = 900.0  # an ingest indexes its papers after its last commit: allow for that


@dataclass(frozen=True)
class _Answer:
    """Where the finished answer to an anonymous GET lives in the cache, and what it was valid for."""

    key: Hashable
    today: str | None  # None: the same on every day
    by_index: bool  # depends on the index: valid at `index_rev` only (None: while it loads)
    index_rev: tuple[int, int] | None
    page: bool  # a shared page ((status, body) with a CSRF slot), else the body itself
    media_type: str


class SearchUnavailable(Exception):
    """The search index is still being built."""


class Site:
    def __init__(self, home: Path, config: dict[str, Any] | None = None) -> None:
        self.home = Path(home)
        self.config = {**load_config(self.home), **(config or {})}
        # One key for cookies and for the links in the mails this site sends (its config, overrides included).
        self.secret = signing_secret(self.home, self.config)
        self.signer = Signer(self.secret)
        self.limits = RateLimiter(parse_limits(self.config))
        self.secure_cookies = str(self.config.get("PAPERWIRE_BASE_URL", "")).startswith("https://")
        self.templates = Environment(loader=PackageLoader("paperwire.web", "templates"),
                                     autoescape=select_autoescape(["html", "xml"]), trim_blocks=True,
                                     lstrip_blocks=True, auto_reload=False)  # templates ship with the package
        self.templates.filters["math"] = math_html
        self.templates.filters["day_label"] = day_label
        self.templates.globals["card_parts"] = CardPartsCache(
            self.templates, int(self.config.get("PAPERWIRE_CARD_CACHE", CARD_PARTS_ENTRIES)))
        self._local = threading.local()
        self._stores: list[SQLiteStore] = []
        self._stores_lock = threading.Lock()
        open_store(self.home).close()  # create and migrate the database before any request
        self._index: Any = None
        self._index_error: str | None = None
        self._index_ready = threading.Event()
        self._stop = threading.Event()
        self._index_thread: threading.Thread | None = None
        self._refresh_lock = threading.Lock()
        self._backlog: tuple[int, float] | None = None  # (store rev, since when) of a bulk backlog
        self._cache: OrderedDict[Hashable, tuple[int, Any]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._generation = 0
        self._answers: OrderedDict[tuple[str, str], _Answer] = OrderedDict()
        self._search_cache: OrderedDict[Hashable, list[tuple[str, float, str]]] = OrderedDict()
        self._search_cache_size = int(self.config.get("PAPERWIRE_SEARCH_CACHE", SEARCH_CACHE_ENTRIES))

    # ------------------------------------------------------------ store and index

    def store(self) -> SQLiteStore:
        """This thread's connection (SQLite connections must not be shared by concurrent requests)."""
        store = getattr(self._local, "store", None)
        if store is None:
            store = open_store(self.home)
            self._local.store = store
            with self._stores_lock:
                self._stores.append(store)
        return store

    # ------------------------------------------------------------ cached reads

    def generation(self) -> int:
        """A number that changes whenever the database may have changed since it was last read.

        Each thread's store answers a change token that moves with commits by every other connection
        (other processes too, such as an ingest) and with its own changes; a change seen by any
        thread moves the site-wide number on."""
        seen = self.store().change_token()
        if getattr(self._local, "seen", None) != seen:
            self._local.seen = seen  # also on a thread's first look: what it missed is unknown
            with self._cache_lock:
                self._generation += 1
        return self._generation

    def cached(self, key: Hashable, compute: Callable[[], T], keep: Callable[[T], bool] | None = None) -> T:
        """`compute()` once per database generation (feed pages, day strips, vote counts); a value
        that `keep` refuses is returned but not remembered."""
        generation = self.generation()
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == generation:
                self._cache.move_to_end(key)
                return hit[1]
        value = compute()
        if keep is not None and not keep(value):
            return value
        with self._cache_lock:
            if self._generation == generation:  # not computed across a change
                self._cache[key] = (generation, value)
                self._cache.move_to_end(key)
                while len(self._cache) > CACHE_ENTRIES:
                    self._cache.popitem(last=False)
        return value

    def accounts(self) -> Accounts:
        return Accounts(self.store())

    def listings(self) -> Listings:
        return Listings(self.store())

    def start(self) -> None:
        """Load (or build) the search index in the background, then keep it caught up with the store."""
        if self._index_thread is None:
            self._index_thread = threading.Thread(target=self._index_loop, name="paperwire-index", daemon=True)
            self._index_thread.start()

    def _index_loop(self) -> None:
        """Words first, so search answers within seconds on any home (lexically while vectors are
        missing); then the missing vectors a checkpoint at a time, new papers' words in between; then
        keep caught up."""
        try:
            from paperwire.index import open_index

            # Searches run on many request threads: each reads papers through its own connection.
            index = open_index(self.home, _ThreadStore(self), catch_up=False)  # type: ignore[arg-type]
            if index.vectors_complete and index.pending() <= EMBED_AT_ONCE:
                index.update()  # a few papers since the last save: words and vectors at once
            elif index.pending():
                index.update_words()
                index.save()
            self._index = index
        except Exception as exc:  # the site still serves feeds and papers without search
            log.exception("search index unavailable")
            self._index_error = f"search index unavailable: {exc}"
        finally:
            self._index_ready.set()
        if self._index is None:
            return
        try:
            self._make_vectors(self._index)
            self._index.embedder.load()  # here, not in the first search request (a model takes a while to load)
            settle_heap()
        except Exception as exc:  # searches stay lexical; the next start tries again
            log.exception("making the search index's vectors failed")
            self._index_error = f"vectors unavailable: {exc}"
        seconds = float(self.config.get("PAPERWIRE_INDEX_REFRESH_SECONDS", INDEX_REFRESH_SECONDS))
        while not self._stop.wait(seconds):
            self.refresh_index()

    def _make_vectors(self, index: Any) -> None:
        """Embed the papers that lack vectors, saving a generation at each checkpoint. One process of a
        home does this (a lock); the others load its generations as they are saved."""
        from paperwire.index.engine import EMBED_CHECKPOINT, vector_job

        seconds = float(self.config.get("PAPERWIRE_INDEX_REFRESH_SECONDS", INDEX_REFRESH_SECONDS))
        while not index.vectors_complete and not self._stop.is_set():
            with vector_job(index.directory) as mine:
                while mine and not index.vectors_complete and not self._stop.is_set():
                    index.embed_pending(limit=EMBED_CHECKPOINT)
                    index.save()
                    self.refresh_index()  # new papers' words, between checkpoints
            if not index.vectors_complete:
                self._stop.wait(seconds)
                self.refresh_index()

    def refresh_index(self) -> None:
        """Bring the index up to the store. A few new papers (a submission, a small ingest) are indexed
        here at once. A bulk backlog is what an ingest in another process is writing: that process
        indexes it and saves a generation, which is loaded when it appears, so searches here never
        wait behind thousands of insertions. A backlog nobody picks up within a grace period (an
        ingest that skipped indexing) is indexed here after all."""
        index = self._index
        if index is None:
            return
        generation = index.generation
        try:
            with self._refresh_lock:
                self._catch_up(index)
        except Exception:
            log.exception("index refresh failed")
        if index.generation != generation:  # a saved generation replaced the loaded one
            settle_heap()

    def _catch_up(self, index: Any) -> None:
        # Another process's generation: an ingest's, a vector checkpoint, or a switch to another embedder.
        loaded = index.reload()
        pending = index.pending()
        if pending <= BULK_BACKLOG:
            if pending:
                index.refresh()
            self._backlog = None
            return
        if loaded:
            self._backlog = None
            return
        rev, now = index.rev + pending, time.monotonic()
        if self._backlog is None or self._backlog[0] != rev:
            self._backlog = (rev, now)  # still growing: an ingest is running
        elif now - self._backlog[1] > float(self.config.get("PAPERWIRE_INDEX_GRACE_SECONDS", BULK_GRACE_SECONDS)):
            index.refresh()
            self._backlog = None

    def search(self, query: str, **options: Any) -> list[Any]:
        """The index's hits for a query. Rankings and snippets of recent queries are kept until the
        index changes (searches repeat: the header box, polled search feeds); the papers themselves are
        read afresh each time."""
        index = self.index()
        if self._search_cache_size <= 0:
            return index.search(query, **options)
        from paperwire.index.engine import Hit

        key = (query, index.revision, tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                                             for k, v in options.items())))
        with self._cache_lock:
            ranked = self._search_cache.get(key)
            if ranked is not None:
                self._search_cache.move_to_end(key)
        if ranked is None:
            hits = index.search(query, **options)
            with self._cache_lock:
                self._search_cache[key] = [(h.id, h.score, h.snippet) for h in hits]
                while len(self._search_cache) > self._search_cache_size:
                    self._search_cache.popitem(last=False)
            return hits
        papers = self.store().get_papers([pid for pid, _, _ in ranked])
        return [Hit(pid, papers[pid].title, score, text, papers[pid]) for pid, score, text in ranked if pid in papers]

    def loaded_index(self) -> Any:
        """The search index if it is loaded, else None (never waits)."""
        return self._index

    def index_rev(self) -> tuple[int, int, str] | None:
        """The loaded index's revision (None before it is loaded): part of the key of cached search pages."""
        index = self._index
        return index.revision if index is not None else None

    def index(self, wait: float = INDEX_WAIT_SECONDS) -> Any:
        """The search index; SearchUnavailable while a first build (minutes on a new home) goes on."""
        self.start()
        if not self._index_ready.wait(wait) or self._index is None:
            raise SearchUnavailable(self._index_error or "the search index is still being built; try again shortly")
        return self._index

    def close(self) -> None:
        self._stop.set()
        with self._stores_lock:
            for store in self._stores:
                try:
                    store.close()
                except Exception:
                    pass
            self._stores.clear()

    # ------------------------------------------------------------ days

    def today(self) -> str:
        return datetime.now(UTC).date().isoformat()

    def anchor_day(self) -> str:
        """The newest listing day not in the future (the feed's front page), else today."""
        listings = self.listings()
        return listings.newest_day(self.today()) or listings.newest_day() or self.today()

    # ------------------------------------------------------------ users, CSRF, rendering

    def current_user(self, request: Request) -> dict[str, Any] | None:
        if "user" in request.state._state:
            return request.state.user
        token = self.signer.unsign_session(request.cookies.get(SESSION_COOKIE))
        user = self.accounts().session_user(token) if token else None
        request.state.user = user
        request.state.session_token = token if user else None
        return user

    def require_user(self, request: Request) -> dict[str, Any]:
        user = self.current_user(request)
        if user is None:
            raise HTTPException(401, "log in first")
        return user

    def csrf_nonce(self, request: Request) -> str:
        nonce = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
        if not nonce:
            nonce = new_nonce()
            request.state.new_csrf = nonce
        return nonce

    def check_csrf(self, request: Request, token: str | None) -> None:
        token = token or request.headers.get("x-csrf-token")
        if not self.signer.csrf_ok(request.cookies.get(CSRF_COOKIE), token):
            raise HTTPException(403, "the form's security token is missing or stale; reload the page and try again")

    def allow(self, action: str, *keys: str) -> None:
        """Count one attempt of `action` for each key (all or none); a 429 that says when to try again."""
        try:
            self.limits.take(self.store(), *[(action, key) for key in keys])
        except RateLimited as exc:
            raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None

    def take(self, *attempts: tuple[str, str]) -> Ticket:
        """Count attempts of several (action, key) at once; raises RateLimited (the caller shows it
        on its form), and the ticket gives back those that turn out not to count."""
        return self.limits.take(self.store(), *attempts)

    def finish(self, request: Request, response: Response) -> Response:
        """Set the CSRF cookie if this response introduced one."""
        nonce = getattr(request.state, "new_csrf", None)
        if nonce and not request.cookies.get(CSRF_COOKIE):
            response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="lax", secure=self.secure_cookies,
                                path="/")
        return response

    def shared_page(self, request: Request, build: Callable[[], Response], vary: tuple[Any, ...] = (), *,
                    by_index: bool = False) -> Response:
        """A page as anonymous visitors see it, built once per URL and day until the database (or
        `vary`, or with `by_index` the index revision) changes; each visitor's CSRF token is put in
        afterwards. Logged-in visitors, and pages carrying a one-time notice, are built for the request."""
        if request.cookies.get(NOTICE_COOKIE) or self.current_user(request) is not None:
            return build()

        def render_shared() -> tuple[int, bytes]:
            request.state.csrf_slot = True
            try:
                response = build()
            finally:
                request.state.csrf_slot = False
            return response.status_code, bytes(response.body)

        today, index_rev = self.today(), self.index_rev() if by_index else None
        key = ("page", request.url.path, request.url.query, today, *vary, index_rev)
        status, body = self.cached(key, render_shared, keep=lambda page: page[0] == 200)
        if status != 200:  # redirects and errors are built for the request, with its own token
            return build()
        if not vary:  # the same key again from the URL alone: the event loop may answer it (fast_path.py)
            self.remember_answer(request, key, today=today, by_index=by_index, index_rev=index_rev, page=True)
        return self.shared_answer(request, body)

    def shared_answer(self, request: Request, body: bytes) -> Response:
        """A shared page's body with this visitor's CSRF token in its slot."""
        token = self.signer.csrf_token(self.csrf_nonce(request)).encode()
        return self.finish(request, HTMLResponse(body.replace(_CSRF_SLOT.encode(), token)))

    def remember_answer(self, request: Request, key: Hashable, *, today: str | None = None, by_index: bool = False,
                        index_rev: tuple[int, int] | None = None, page: bool = False,
                        media_type: str = "text/html") -> None:
        """Note that an anonymous GET of this URL is answered by the cache entry `key` (while that entry is
        of the current database generation) as long as the day, when given, and with `by_index` the index
        revision stay as they were when the answer was made (both are part of `key`)."""
        where = (request.url.path, request.url.query)
        answer = _Answer(key, today, by_index, index_rev, page, media_type)
        with self._cache_lock:
            self._answers[where] = answer
            self._answers.move_to_end(where)
            while len(self._answers) > CACHE_ENTRIES:
                self._answers.popitem(last=False)

    def cached_answer(self, path: str, query: str) -> tuple[bytes, _Answer] | None:
        """The body remembered for an anonymous GET of this URL, if it is still what the route would answer."""
        answer = self._answers.get((path, query))
        if answer is None or (answer.today is not None and answer.today != self.today()) or \
                (answer.by_index and answer.index_rev != self.index_rev()):
            return None
        generation = self.generation()
        with self._cache_lock:
            hit = self._cache.get(answer.key)
            if hit is None or hit[0] != generation:
                return None
            self._cache.move_to_end(answer.key)
        return (hit[1][1] if answer.page else hit[1]), answer

    def render(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        user = self.current_user(request)
        notice = request.cookies.get(NOTICE_COOKIE)
        notice_text = self.signer.unsign_session(notice) if notice else None
        shared = getattr(request.state, "csrf_slot", False)
        csrf_token = _CSRF_SLOT if shared else self.signer.csrf_token(self.csrf_nonce(request))
        html = self.templates.get_template(template).render(
            request=request, user=user, csrf_token=csrf_token,
            notice=notice_text, today=self.today(), path=request.url.path, **context)
        response = HTMLResponse(html, status_code=status_code)
        if notice:
            response.delete_cookie(NOTICE_COOKIE, path="/")
        return self.finish(request, response)

    def notice(self, response: Response, text: str) -> Response:
        """A one-line message shown on the next page (after a POST redirects)."""
        response.set_cookie(NOTICE_COOKIE, self.signer.sign_session(text), max_age=60, httponly=True,
                            samesite="lax", secure=self.secure_cookies, path="/")
        return response


FULL_COLLECTION_EVERY = 100  # collections of the middle generation per full one (Python's default: 10)


def settle_heap() -> None:
    """Collect, then exempt everything alive (modules, templates, the loaded index) from later garbage
    collections. A full collection walks every tracked object while holding the interpreter lock: in a
    server at 100k papers that stalled every request for 70-100 ms each time the caches' growth set one
    off. What is frozen is still freed by reference counting; cycles among it wait for the next call,
    which comes when a new index generation is loaded."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    # What outlives the young generations now is mostly cache entries (freed by reference counting when
    # evicted), yet each full collection still walked them for 30-90 ms; a tenth as many of those
    # (measured in one process on the bench's mix: 3 in 3,000 requests with the default, none in 6,000 with this).
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


class _ThreadStore:
    """The store as seen from the calling thread: the site's per-thread connection."""

    def __init__(self, site: Site) -> None:
        self._site = site

    def __getattr__(self, name: str) -> Any:
        return getattr(self._site.store(), name)


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def parse_day(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise HTTPException(422, f"not a date (YYYY-MM-DD): {text[:20]!r}") from None
