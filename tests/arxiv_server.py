"""A small arXiv look-alike on loopback for harvest tests.

/oai2 answers OAI-PMH 2.0 ListRecords in the `arXiv` metadata format as arXiv documents it
(https://info.arxiv.org/help/oa/, http://www.openarchives.org/OAI/openarchivesprotocol.html):
day-granularity from/until on record datestamps, hierarchical sets (cs, math, physics:hep-th),
resumption tokens that are exclusive arguments, deleted records, and the protocol's errors.
/api/query answers the arXiv API's Atom with start/max_results paging.

Faults are scripted per request: an HTTP status (503 + Retry-After, 500), a dropped connection
half-way through the body, or a stall until the test releases it.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape, quoteattr

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PHYSICS = {"hep-th", "hep-ph", "hep-ex", "hep-lat", "astro-ph", "cond-mat", "gr-qc", "quant-ph", "nucl-th",
            "physics", "math-ph", "nlin"}


@dataclass
class Record:
    id: str
    created: str
    datestamp: str
    title: str = ""
    abstract: str = ""
    categories: str = "cs.LG"
    updated: str | None = None
    authors: list[tuple[str, str, str]] = field(default_factory=lambda: [("Lovelace", "Ada", "")])
    doi: str | None = None
    comments: str | None = None
    journal_ref: str | None = None
    deleted: bool = False

    def __post_init__(self) -> None:
        self.title = self.title or f"A study of topic {self.id}"
        self.abstract = self.abstract or f"We study topic {self.id} and report results with $O(n)$ cost & more."

    def set_specs(self) -> set[str]:
        specs = set()
        for category in self.categories.split():
            archive = category.split(".")[0]
            specs.add(f"physics:{archive}" if archive in _PHYSICS else archive)
        return specs

    def in_set(self, spec: str) -> bool:
        return any(s == spec or s.startswith(spec + ":") for s in self.set_specs())

    def xml(self) -> str:
        sets = "".join(f"<setSpec>{escape(s)}</setSpec>" for s in sorted(self.set_specs()))
        status = ' status="deleted"' if self.deleted else ""
        header = (f"<header{status}>"
                  f"<identifier>oai:arXiv.org:{escape(self.id)}</identifier>"
                  f"<datestamp>{self.datestamp}</datestamp>{sets}</header>")
        if self.deleted:
            return f"<record>{header}</record>"
        authors = "".join(
            "<author><keyname>{}</keyname>{}{}</author>".format(
                escape(last), f"<forenames>{escape(first)}</forenames>" if first else "",
                f"<suffix>{escape(suffix)}</suffix>" if suffix else "")
            for last, first, suffix in self.authors)
        optional = "".join(f"<{tag}>{escape(value)}</{tag}>" for tag, value in
                           (("comments", self.comments), ("journal-ref", self.journal_ref),
                                                   ("doi", self.doi)) if value)
        updated = f"<updated>{self.updated}</updated>" if self.updated else ""
        return (f"<record>{header}<metadata>\n"
                '<arXiv xmlns="http://arxiv.org/OAI/arXiv/" '
                'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                'xsi:schemaLocation="http://arxiv.org/OAI/arXiv/ http://arxiv.org/OAI/arXiv.xsd">\n'
                f"<id>{escape(self.id)}</id><created>{self.created}</created>{updated}"
                f"<authors>{authors}</authors><title>{escape(self.title)}</title>"
                f"<categories>{escape(self.categories)}</categories>{optional}"
                "<license>http://creativecommons.org/licenses/by/4.0/</license>"
                f"<abstract>  {escape(self.abstract)}\n</abstract></arXiv>\n</metadata></record>\n")


def oai_envelope(body: str, request_attrs: dict[str, str], base_url: str) -> bytes:
    attrs = "".join(f" {k}={quoteattr(v)}" for k, v in request_attrs.items())
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xsi:schemaLocation="http://www.openarchives.org/OAI/2.0/ '
            'http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">\n'
            "<responseDate>2024-03-01T12:00:00Z</responseDate>\n"
            f"<request{attrs}>{escape(base_url)}</request>\n{body}</OAI-PMH>\n").encode()


def oai_error(code: str, message: str, base_url: str) -> bytes:
    return oai_envelope(f'<error code="{code}">{escape(message)}</error>\n', {}, base_url)


def atom_feed(entries: list[Record], total: int, start: int, per_page: int) -> bytes:
    items = []
    for r in entries:
        authors = "".join(f"<author><name>{escape(' '.join(x for x in (f, last, s) if x))}</name></author>"
                          for last, f, s in r.authors)
        cats = "".join(f'<category term="{c}" scheme="http://arxiv.org/schemas/atom"/>' for c in r.categories.split())
        items.append(
            f"<entry><id>http://arxiv.org/abs/{r.id}v1</id><updated>{r.updated or r.created}T10:00:00Z</updated>"
            f"<published>{r.created}T10:00:00Z</published><title>{escape(r.title)}</title>"
            f"<summary>{escape(r.abstract)}</summary>{authors}"
            f'<link href="http://arxiv.org/abs/{r.id}v1" rel="alternate" type="text/html"/>'
            f'<link title="pdf" href="http://arxiv.org/pdf/{r.id}v1" rel="related" type="application/pdf"/>'
            f'<arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term="{r.categories.split()[0]}" '
            f'scheme="http://arxiv.org/schemas/atom"/>{cats}</entry>')
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<feed xmlns="http://www.w3.org/2005/Atom">'
            '<link href="http://arxiv.org/api/query" rel="self" type="application/atom+xml"/>'
            "<title type=\"html\">ArXiv Query</title><id>http://arxiv.org/api/query</id>"
            "<updated>2024-03-01T00:00:00-05:00</updated>"
            f'<opensearch:totalResults xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">{total}'
            "</opensearch:totalResults>"
            f'<opensearch:startIndex xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">{start}'
            "</opensearch:startIndex>"
            f'<opensearch:itemsPerPage xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">{per_page}'
            f"</opensearch:itemsPerPage>{''.join(items)}</feed>\n").encode()


class ArxivServer:
    """Start with `with ArxivServer(records) as server:`; `server.oai_url`, `server.query_url`."""

    def __init__(self, records: list[Record], page_size: int = 3) -> None:
        self.records = {r.id: r for r in records}
        self.page_size = page_size
        self.log: list[dict[str, str]] = []  # query parameters of every request, in order
        self.faults: list[Any] = []  # per request, in order: None, ("status", code, headers), ("drop",), ("stall",)
        self.tokens: dict[str, tuple[list[str], int]] = {}  # token -> (matching ids, offset)
        self.issued: list[str] = []
        self.stalled = threading.Event()
        self.release = threading.Event()
        self._serial = count(1)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 — the http.server hook name
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.oai_url = self.base + "/oai2"
        self.query_url = self.base + "/api/query"

    def __enter__(self) -> ArxivServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    # ------------------------------------------------------------ requests

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        with self._lock:
            self.log.append({"path": url.path, **params})
            fault = self.faults.pop(0) if self.faults else None
        if fault and fault[0] == "stall":
            self.stalled.set()
            self.release.wait(60)
        if fault and fault[0] == "status":
            _, code, headers = fault
            self._send(handler, code, b"busy\n", "text/plain", headers)
            return
        if url.path == "/oai2":
            body = self.list_records(params)
            ctype = "text/xml; charset=utf-8"
        elif url.path == "/api/query":
            body, ctype = self.query(params), "application/atom+xml; charset=utf-8"
        else:
            self._send(handler, 404, b"not found\n", "text/plain")
            return
        if fault and fault[0] == "drop":
            # promise the whole body, send half of it, hang up
            handler.send_response(200)
            handler.send_header("Content-Type", ctype)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body[: len(body) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            return
        try:
            self._send(handler, 200, body, ctype)
        except OSError:
            pass  # the client went away (killed while we stalled)

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, code: int, body: bytes, ctype: str,
              headers: dict[str, str] | None = None) -> None:
        handler.send_response(code)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)

    def list_records(self, params: dict[str, str]) -> bytes:
        base = self.oai_url
        if params.get("verb") != "ListRecords":
            return oai_error("badVerb", "only ListRecords here", base)
        token = params.get("resumptionToken")
        if token is not None:
            if set(params) != {"verb", "resumptionToken"}:
                return oai_error("badArgument", "resumptionToken is an exclusive argument", base)
            if token not in self.tokens:
                return oai_error("badResumptionToken", f"unknown or expired token {token}", base)
            ids, offset = self.tokens[token]
        else:
            if set(params) - {"verb", "metadataPrefix", "set", "from", "until"}:
                return oai_error("badArgument", "illegal argument", base)
            if params.get("metadataPrefix") != "arXiv":
                return oai_error("cannotDisseminateFormat", "only metadataPrefix=arXiv here", base)
            lo, hi = params.get("from"), params.get("until")
            for value in (lo, hi):
                if value is not None and not _DAY.match(value):
                    return oai_error("badArgument", f"bad date {value!r} (granularity is YYYY-MM-DD)", base)
            if lo and hi and lo > hi:
                return oai_error("badArgument", "from is after until", base)
            spec = params.get("set")
            chosen = sorted((r for r in self.records.values()
                             if (not lo or r.datestamp >= lo) and (not hi or r.datestamp <= hi)
                             and (not spec or r.in_set(spec))), key=lambda r: (r.datestamp, r.id))
            if not chosen:
                return oai_error("noRecordsMatch", "no records match", base)
            ids, offset = [r.id for r in chosen], 0
        page = ids[offset: offset + self.page_size]
        body = "<ListRecords>\n" + "".join(self.records[i].xml() for i in page if i in self.records)
        after = offset + len(page)
        if after < len(ids):
            new_token = f"{next(self._serial)}|{after}"
            self.tokens[new_token] = (ids, after)
            self.issued.append(new_token)
            body += f'<resumptionToken cursor="{offset}" completeListSize="{len(ids)}">{new_token}</resumptionToken>\n'
        elif offset:
            body += f'<resumptionToken cursor="{offset}" completeListSize="{len(ids)}"/>\n'
        body += "</ListRecords>\n"
        request = {k: v for k, v in params.items()}
        return oai_envelope(body, request, base)

    def query(self, params: dict[str, str]) -> bytes:
        start, size = int(params.get("start", "0")), int(params.get("max_results", "10"))
        if "id_list" in params:
            wanted = params["id_list"].split(",")
            matches = [self.records[i] for i in wanted if i in self.records]
        else:
            terms = params.get("search_query", "").lower().replace("all:", "").split()
            matches = sorted((r for r in self.records.values() if not r.deleted
                              and all(t in (r.title + " " + r.abstract).lower() for t in terms)),
                             key=lambda r: r.id)
        return atom_feed(matches[start: start + size], len(matches), start, size)
