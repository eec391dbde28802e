"""Harvest runs into the store: one transaction per page, resumable after a crash, incremental.

A run asks the OAI-PMH server for a set between two days and follows resumption tokens. Each
page's papers and the token of the next page are committed together, so a killed run resumes at
the first page it had not committed. A completed run records its high-water mark (the newest
datestamp it saw); the next run without --from starts OVERLAP_DAYS before it, which catches
papers that appear late with a datestamp a little in the past (held in moderation, replaced
metadata). Upserts are idempotent, so the overlap only costs a few requests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from paperwire.ingest import MAX_REPORTED_ERRORS, IngestSummary, ingest_items
from paperwire.sources.arxiv_oai import OAIError
from paperwire.sources.harvest import (
    OAIPage,
    PoliteClient,
    list_records,
    oai_endpoint,
    query_endpoint,
    query_pages,
)
from paperwire.store.harvest_state import HarvestState, HarvestStates, state_key
from paperwire.store.sqlite import SQLiteStore

OVERLAP_DAYS = 5


@dataclass
class HarvestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    deleted: int = 0
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    pages: int = 0
    resumed: bool = False
    date_from: str | None = None
    until: str | None = None
    high_water: str | None = None
    complete_list_size: int | None = None

    def add(self, page: IngestSummary) -> None:
        self.added += page.added
        self.updated += page.updated
        self.unchanged += page.unchanged
        self.rejected += page.rejected
        room = MAX_REPORTED_ERRORS - len(self.errors)
        if room > 0:
            self.errors.extend(page.errors[:room])

    def to_dict(self) -> dict[str, Any]:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged,
                "rejected": self.rejected, "errors": self.errors, "requests": self.requests,
                "resumed": self.resumed, "high_water": self.high_water, "deleted": self.deleted,
                "pages": self.pages, "from": self.date_from, "until": self.until}


def _later(a: str | None, b: str | None) -> str | None:
    return max(x for x in (a, b) if x) if (a or b) else None


def harvest_arxiv(store: SQLiteStore, *, set_spec: str | None = None, date_from: str | None = None,
                  until: str | None = None, endpoint: str | None = None, client: PoliteClient | None = None,
                  overlap_days: int = OVERLAP_DAYS,
                  on_page: Callable[[HarvestReport, OAIPage], None] | None = None) -> HarvestReport:
    """Harvest arXiv OAI-PMH (metadataPrefix=arXiv) into the store; raises HarvestError or
    OAIError when the server cannot be used, with everything committed so far kept."""
    with store.exclusive(f"harvest-{state_key('arxiv', set_spec)}"):  # one harvest of a set at a time, any node
        return _harvest_arxiv(store, set_spec=set_spec, date_from=date_from, until=until, endpoint=endpoint,
                              client=client, overlap_days=overlap_days, on_page=on_page)


def _harvest_arxiv(store: SQLiteStore, *, set_spec: str | None, date_from: str | None, until: str | None,
                   endpoint: str | None, client: PoliteClient | None, overlap_days: int,
                   on_page: Callable[[HarvestReport, OAIPage], None] | None) -> HarvestReport:
    endpoint = oai_endpoint(endpoint)
    states = HarvestStates(store)
    key = state_key("arxiv", set_spec)
    state = states.load(key)
    report = HarvestReport()
    own_client = client is None
    client = client or PoliteClient()
    try:
        same_run = (state.endpoint == endpoint and (date_from is None and until is None
                                                    or (date_from, until) == (state.date_from, state.until)))
        if state.in_progress and same_run:
            report.resumed = True
            token = state.token
            date_from, until = state.date_from, state.until
        else:
            token = None
            if date_from is None and state.high_water:
                date_from = (date.fromisoformat(state.high_water) - timedelta(days=overlap_days)).isoformat()
            state = HarvestState(endpoint=endpoint, set_spec=set_spec, date_from=date_from, until=until,
                                 high_water=state.high_water, completed_at=state.completed_at)
        report.date_from, report.until = date_from, until
        try:
            _run(store, states, key, state, report, client, endpoint, token, on_page)
        except OAIError as exc:
            if exc.code != "badResumptionToken" or not report.resumed or report.pages:
                raise
            # The stored token expired while we were away: start this run over; pages already
            # stored come back as unchanged.
            state.token, state.pages, state.run_high = None, 0, None
            _run(store, states, key, state, report, client, endpoint, None, on_page)
        report.high_water = state.high_water
        return report
    finally:
        report.requests = client.requests
        if own_client:
            client.close()


def _run(store: SQLiteStore, states: HarvestStates, key: str, state: HarvestState, report: HarvestReport,
         client: PoliteClient, endpoint: str, token: str | None,
         on_page: Callable[[HarvestReport, OAIPage], None] | None) -> None:
    pages = list_records(client, endpoint, set_spec=state.set_spec, date_from=state.date_from,
                         until=state.until, token=token)
    for page in pages:
        with store.transaction():  # the page's papers and the next token commit together
            report.add(ingest_items(store, page.items))
            info = page.info
            state.pages += 1
            state.run_high = _later(state.run_high, info.max_datestamp)
            state.token = info.resumption_token
            if state.token is None:  # the last page: the run is complete
                state.high_water = _later(state.high_water, state.run_high)
                state.completed_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                state.pages, state.run_high = 0, None
            states.save(key, state)
        report.pages += 1
        report.deleted += info.deleted
        if info.complete_list_size is not None:
            report.complete_list_size = info.complete_list_size
        if on_page:
            on_page(report, page)


def query_arxiv(store: SQLiteStore, *, search_query: str | None = None, id_list: list[str] | None = None,
                max_results: int = 100, endpoint: str | None = None,
                client: PoliteClient | None = None) -> HarvestReport:
    """A small pull through the arXiv query API; each page is one transaction."""
    report = HarvestReport()
    own_client = client is None
    client = client or PoliteClient()
    try:
        for items in query_pages(client, query_endpoint(endpoint), search_query=search_query, id_list=id_list,
                                 max_results=max_results):
            report.add(ingest_items(store, items))
            report.pages += 1
        return report
    finally:
        report.requests = client.requests
        if own_client:
            client.close()
