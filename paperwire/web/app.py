"""The paperwire web application: `create_app(home)` for tests and embedding, `run()` for the CLI."""

from __future__ import annotations

import errno
import logging
import socket
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paperwire.store import DatabaseUnavailable
from paperwire.web import (
    api,
    background_embed,
    feeds,
    library_routes,
    mail_routes,
    map_routes,
    pages,
    topic_routes,
    trends,
)
from paperwire.web.errors import plain_validation_error
from paperwire.web.fast_path import CachedAnswers
from paperwire.web.site import Site, json_error

log = logging.getLogger("paperwire.web")

# Repeated anonymous requests are answered on the event loop (fast_path.py); the threads compute the rest,
# which is CPU-bound Python under one GIL: with fewer threads such requests run more nearly one after
# another instead of all slowly at once (one pair of bench/http.py runs: 3 threads 472 req/s, p99 160 ms;
# 8 threads 435 req/s, p99 177 ms).
WEB_THREADS = 3
WORKER_HEALTHCHECK_SECONDS = 60
DATABASE_AWAY = "The database is not answering; try again in a moment."

_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # Inline scripts are never used; user text cannot run as code even if escaping failed. Images may come
    # from the web: cards show the thumbnails sources link to (an image cannot run code).
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: https: http:; style-src 'self'; "
                               "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}


class SecurityHeaders:
    """Adds the headers above to every response that does not set them itself (plain ASGI: a
    call_next middleware would cost a task and a body stream per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in _SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                if extra:
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(("/api/", "/feeds/", "/openapi")) or path.endswith(".md") or \
        "application/json" in request.headers.get("accept", "")


def _first_error(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "invalid request"
    err = errors[0]
    where = ".".join(str(x) for x in err.get("loc", ())[1:]) or "request"
    return f"{where}: {err.get('msg', 'invalid value')}"


def create_app(home: Path, config: dict[str, Any] | None = None, *, start_index: bool = True) -> FastAPI:
    """The app for a home. `config` overrides PAPERWIRE_* settings (e.g. rate limits in tests)."""
    site = Site(Path(home), config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        # Request handlers are CPU-bound Python and share one GIL: a few threads keep the latency
        # spread small; more only queue up inside the interpreter.
        threads = int(site.config.get("PAPERWIRE_WEB_THREADS", WEB_THREADS))
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        if start_index:
            site.start()
            topic_routes.service(site).start()  # topics and the map rebuilt in the background when due
            background_embed.service(site).start()  # MiniLM vectors in idle time, for homes on static ones
        scheduler = start_digest_schedule(site)
        yield
        if scheduler is not None:
            scheduler.stop()
        topic_routes.service(site).close()
        background_embed.service(site).close()
        site.close()

    app = FastAPI(title="paperwire", version="0.1.0", lifespan=lifespan,
                  description="A self-hosted daily paper feed. The JSON API follows the Hugging Face Papers "
                              "endpoints; /api/query follows the arXiv API.")
    app.state.site = site

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = str(exc.detail) if exc.detail else "error"
        if _wants_json(request):
            return json_error(exc.status_code, message, getattr(exc, "headers", None))
        return _error_page(site, request, exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        if _wants_json(request):
            return json_error(422, _first_error(exc))
        message, names = plain_validation_error(exc)
        links = []
        if request.method == "GET" and names:  # the same page without the parameter that was wrong
            kept = [(k, v) for k, v in request.query_params.multi_items() if k not in names]
            links = [("Show the page without it", request.url.path + (f"?{urlencode(kept)}" if kept else ""))]
        return _error_page(site, request, 422, message, links=links)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, DatabaseUnavailable):  # the shared database is away (restart, network): say so, retry
            log.error("%s: %s", request.url.path, exc)
            if _wants_json(request):
                return json_error(503, DATABASE_AWAY, {"Retry-After": "5"})
            return HTMLResponse(f"<!doctype html><meta charset=utf-8><title>paperwire</title><p>{DATABASE_AWAY}",
                                503, {"Retry-After": "5"})
        log.exception("unhandled error on %s", request.url.path)
        if _wants_json(request):
            return json_error(500, "internal error")
        return _error_page(site, request, 500, "Something went wrong on our side.")

    app.add_middleware(CachedAnswers, site=site)
    app.add_middleware(SecurityHeaders)  # added last: outside, so cached answers get the headers too

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        """For load balancers and operators: the store answers; how far this node's index is."""
        from paperwire.index.engine import vector_coverage

        index = site.loaded_index()
        return {"ok": True, "papers": site.cached(("paper_count",), lambda: site.store().count_papers()),
                "index": None if index is None else {
                    "rev": index.rev, "embedder": index.embedder.name, "generation": index.generation,
                    "vectors_complete": index.vectors_complete},
                "vectors": vector_coverage(site.home)}

    app.mount("/static", StaticFiles(packages=[("paperwire.web", "static")]), name="static")
    app.include_router(api.build_router(site))
    app.include_router(trends.build_router(site))
    app.include_router(feeds.build_router(site))
    app.include_router(pages.build_router(site))
    app.include_router(mail_routes.build_router(site))
    app.include_router(library_routes.build_router(site))
    from paperwire.web import collection_routes

    app.include_router(collection_routes.build_router(site))
    app.include_router(topic_routes.build_router(site))
    app.include_router(map_routes.build_router(site))
    from paperwire.web import author_routes

    app.include_router(author_routes.build_router(site))
    from paperwire.web import comment_routes

    app.include_router(comment_routes.build_router(site))
    return app


def start_digest_schedule(site: Site) -> Any:
    """Digests inside the server when PAPERWIRE_DIGEST_AT is set (paperwire/digest/schedule.py)."""
    from paperwire.digest.schedule import DigestScheduler, ScheduleConfigError, parse_times

    try:
        times = parse_times(site.config)
    except ScheduleConfigError as exc:
        log.error("digests are not scheduled: %s", exc)
        return None
    if times is None:
        return None
    scheduler = DigestScheduler(site.home, site.config, times, index=lambda: site.index(wait=600))
    return scheduler if scheduler.start() else None


def _error_page(site: Site, request: Request, status: int, message: str,
                headers: dict[str, str] | None = None, links: list[tuple[str, str]] | None = None) -> Response:
    try:
        response = site.render(request, "error.html", status_code=status, status=status, message=message,
                               links=links or [])
    except Exception:  # rendering itself failed: say so plainly
        log.exception("error page failed")
        response = Response(f"{status}: {message}", status_code=status, media_type="text/plain")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


class CannotListen(Exception):
    """The server's address cannot be bound (in use, not a local address, not permitted)."""


def listen_socket(host: str, port: int) -> socket.socket:
    """The bound socket to serve on: bound before anything else starts, so a busy port is one error line
    and nothing claims to be serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart may reuse the port
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CannotListen(f"port {port} on {host} is in use") from None
        raise CannotListen(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)  # worker processes serve on it
    return sock


def run(home: Path, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve the home with uvicorn until interrupted (`workers` > 1: that many processes). Raises
    CannotListen before anything starts if the address cannot be bound."""
    import os

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    sock = listen_socket(host, port)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(f"paperwire: serving {home} on http://{host}:{port}/  (Ctrl-C to stop)", flush=True)
    if workers > 1:
        os.environ["PAPERWIRE_HOME"] = str(home)
        # The supervisor replaces a worker that misses a 5 s health ping by default; a worker busy
        # loading a new index generation on a loaded machine can miss one, and killing it drops
        # its open connections. Only a worker silent for a minute is taken as hung.
        config = uvicorn.Config("paperwire.web.app:app_from_env", factory=True, host=host, port=port,
                                workers=workers, log_level="warning", access_log=False,
                                timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS)
        with suppress(KeyboardInterrupt):  # Ctrl-C ends the server; no traceback
            Multiprocess(config, sockets=[sock]).run()
        return
    config = uvicorn.Config(create_app(home), host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    with suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    if not server.started:  # uvicorn has logged why (the application failed to start)
        raise SystemExit(3)


def app_from_env() -> FastAPI:
    """The app for $PAPERWIRE_HOME (how each of several worker processes builds its own)."""
    from paperwire.config import default_home

    return create_app(default_home())
