"""Pulling papers from arXiv over HTTP: OAI-PMH ListRecords for bootstrap and daily increments,
the query API (Atom) for small pulls.

Polite by default: one request every few seconds, exponential backoff on connection errors and
5xx, and arXiv's flow control (503 with Retry-After) honoured. Pages are spooled to a temporary
file before parsing, so a dropped connection is retried as a whole request and never yields half
a page. This module knows nothing of the store: callers decide what to do with each page.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import IO, Any

import httpx

from paperwire.sources.arxiv_oai import ListRecordsInfo, parse_list_records
from paperwire.sources.base import ParseItem, SourceError

# arXiv's documented OAI-PMH base URL and API endpoint (https://info.arxiv.org/help/oa/,
# https://info.arxiv.org/help/api/).
DEFAULT_OAI_URL = "https://export.arxiv.org/oai2"
DEFAULT_QUERY_URL = "https://export.arxiv.org/api/query"
OAI_URL_ENV = "PAPERWIRE_ARXIV_OAI_URL"
QUERY_URL_ENV = "PAPERWIRE_ARXIV_QUERY_URL"
DEFAULT_DELAY = 3.0  # arXiv asks for no more than one request every three seconds
QUERY_PAGE_SIZE = 100
_SPOOL_BYTES = 8 * 1024 * 1024  # larger pages go to a temporary file
_RETRY_STATUS = {429, 500, 502, 503, 504}


def oai_endpoint(explicit: str | None = None) -> str:
    return explicit or os.environ.get(OAI_URL_ENV) or DEFAULT_OAI_URL


def query_endpoint(explicit: str | None = None) -> str:
    return explicit or os.environ.get(QUERY_URL_ENV) or DEFAULT_QUERY_URL


class HarvestError(SourceError):
    """A request failed for good (retries exhausted, a 4xx, an unusable answer)."""


@dataclass
class RetryPolicy:
    attempts: int = 6  # tries per request for connection errors and 5xx
    backoff: float = 2.0  # first wait in seconds; doubles each time
    max_backoff: float = 120.0
    flow_control_waits: int = 30  # 503 + Retry-After answers tolerated per request
    max_retry_after: float = 900.0  # a longer Retry-After is obeyed up to this cap


@dataclass
class PoliteClient:
    """GETs with a minimum delay between requests, retries with backoff, and Retry-After."""

    delay: float = DEFAULT_DELAY
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(60.0, connect=15.0))
    sleep: Callable[[float], None] = time.sleep
    client: httpx.Client | None = None
    requests: int = 0  # HTTP requests sent, retries included
    _last: float | None = None

    def __post_init__(self) -> None:
        if self.client is None:
            from importlib.metadata import PackageNotFoundError, version

            try:
                agent = f"paperwire/{version('paperwire')}"
            except PackageNotFoundError:
                agent = "paperwire"
            self.client = httpx.Client(timeout=self.timeout, follow_redirects=True,
                                       headers={"User-Agent": agent})

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait_turn(self) -> None:
        if self._last is not None and self.delay > 0:
            remaining = self.delay - (time.monotonic() - self._last)
            if remaining > 0:
                self.sleep(remaining)
        self._last = time.monotonic()

    def get(self, url: str, params: dict[str, str]) -> IO[bytes]:
        """The response body of a successful GET, spooled and rewound; raises HarvestError."""
        assert self.client is not None
        failures = flow_waits = 0
        while True:
            self._wait_turn()
            self.requests += 1
            body = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)
            try:
                with self.client.stream("GET", url, params=params) as response:
                    status = response.status_code
                    if status == 200:
                        for chunk in response.iter_bytes():
                            body.write(chunk)
                        body.seek(0)
                        return body
                    retry_after = _retry_after(response.headers.get("Retry-After"))
                    response.read()
                problem = f"HTTP {status}"
            except httpx.HTTPError as exc:  # connection refused/reset, timeouts, truncated bodies
                status, retry_after = 0, None
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            body.close()
            if status in (429, 503) and retry_after is not None:
                flow_waits += 1
                if flow_waits > self.retry.flow_control_waits:
                    raise HarvestError(f"{url}: still busy (HTTP {status}) after {flow_waits - 1} waits")
                self.sleep(min(retry_after, self.retry.max_retry_after))
                continue
            if status and status not in _RETRY_STATUS:
                raise HarvestError(f"{url}: HTTP {status}")
            failures += 1
            if failures >= self.retry.attempts:
                raise HarvestError(f"{url}: {problem} (gave up after {failures} attempts)")
            self.sleep(min(self.retry.backoff * 2 ** (failures - 1), self.retry.max_backoff))


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdecimal():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# ---------------------------------------------------------------- OAI-PMH


@dataclass
class OAIPage:
    """One ListRecords response. Exhaust `items` before reading `info.resumption_token`."""

    number: int
    request_token: str | None  # the token this page was asked for with (None: first page)
    items: Iterator[ParseItem]
    info: ListRecordsInfo


def list_records(client: PoliteClient, endpoint: str, *, set_spec: str | None = None,
                 date_from: str | None = None, until: str | None = None,
                 token: str | None = None) -> Iterator[OAIPage]:
    """ListRecords pages (metadataPrefix=arXiv), following resumption tokens; starts at `token`
    when given (a resumed run), else at the first page for set/from/until."""
    number = 0
    while True:
        number += 1
        if token:
            params = {"verb": "ListRecords", "resumptionToken": token}
        else:
            params = {"verb": "ListRecords", "metadataPrefix": "arXiv"}
            params.update({k: v for k, v in (("set", set_spec), ("from", date_from), ("until", until)) if v})
        body = client.get(endpoint, params)
        try:
            items, info = parse_list_records(body, f"{endpoint} (page {number})")
            yield OAIPage(number, token, items, info)
        finally:
            body.close()
        token = info.resumption_token
        if not token:
            return


# ---------------------------------------------------------------- query API


def query_pages(client: PoliteClient, endpoint: str, *, search_query: str | None = None,
                id_list: list[str] | None = None, max_results: int = 100,
                page_size: int = QUERY_PAGE_SIZE) -> Iterator[list[ParseItem]]:
    """Pages of parsed entries from the arXiv query API (Atom), up to `max_results` entries."""
    from paperwire.sources import FORMATS, parse_stream

    if "arxiv-atom" not in FORMATS:
        raise HarvestError("the arxiv-atom parser is not available")
    if not search_query and not id_list:
        raise HarvestError("give a search query or a list of ids")
    start = 0
    while start < max_results:
        size = min(page_size, max_results - start)
        params: dict[str, Any] = {"start": str(start), "max_results": str(size)}
        if search_query:
            params["search_query"] = search_query
        if id_list:
            params["id_list"] = ",".join(id_list)
        body = client.get(endpoint, params)
        try:
            items = list(parse_stream(body, f"{endpoint} (start {start})", "arxiv-atom"))
        finally:
            body.close()
        if items:
            yield items
        if len(items) < size:
            return
        start += size
