"""Live harvesting from arXiv, against a loopback server that answers in arXiv's formats:
OAI-PMH ListRecords (metadataPrefix=arXiv) with resumption, sets and dates; flow control and
failures; resumption after a crash; revisions and late papers; the query API for small pulls. The
harvests run on SQLite and on PostgreSQL (`store_home`)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from arxiv_server import ArxivServer, Record
from conftest import cli_json, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperwire.harvest_job import harvest_arxiv, query_arxiv
from paperwire.model import Paper, canonical_id
from paperwire.sources import Rejected, SourceError, parse_stream, read_source
from paperwire.sources.arxiv_oai import MalformedXML, OAIError, parse_list_records
from paperwire.sources.harvest import HarvestError, PoliteClient, RetryPolicy, query_pages
from paperwire.store import open_store
from paperwire.store.harvest_state import HarvestStates, state_key

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _no_index(monkeypatch: pytest.MonkeyPatch) -> None:
    # CLI runs here test harvesting; keeping the search index in step is tested with the index
    monkeypatch.setenv("PAPERWIRE_SKIP_INDEX", "1")


class Sleeps:
    """Records every wait the client asks for (and does not wait: the loopback server is ready)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client(sleeps: Sleeps | None = None, attempts: int = 4) -> PoliteClient:
    return PoliteClient(delay=0, retry=RetryPolicy(attempts=attempts, backoff=0.01), sleep=sleeps or Sleeps())


def cs_records() -> list[Record]:
    """Ten cs papers over ten days, two math papers and one hep-th paper, one withdrawn (deleted)."""
    records = [Record(f"2401.{n:05d}", created=f"2024-01-{n:02d}", datestamp=f"2024-01-{n:02d}") for n in range(1, 11)]
    records += [
        Record("2401.00101", created="2024-01-03", datestamp="2024-01-03", categories="math.GT"),
        Record("2401.00102", created="2024-01-05", datestamp="2024-01-05", categories="math.PR cs.IT"),
        Record("hep-th/9901001", created="1999-01-04", datestamp="2024-01-06", categories="hep-th"),
        Record("2401.00200", created="2024-01-02", datestamp="2024-01-07", deleted=True),
    ]
    return records


def stored_ids(home: Path) -> list[str]:
    store = open_store(home)
    try:
        ids = store.paper_ids()
        assert store.integrity_check() == "ok"
        return ids
    finally:
        store.close()


def run_harvest(home: Path, server: ArxivServer, sleeps: Sleeps | None = None, **options: object):
    store = open_store(home)
    try:
        return harvest_arxiv(store, endpoint=server.oai_url, client=client(sleeps), **options)
    finally:
        store.close()


# ---------------------------------------------------------------- the parser


def test_parser_reads_the_arxiv_metadata_format() -> None:
    with open(FIXTURES / "arxiv_oai_listrecords.xml", "rb") as fh:
        items, info = parse_list_records(fh, "page.xml")
        items = list(items)
    papers = [i for i in items if isinstance(i, Paper)]
    rejected = [i for i in items if isinstance(i, Rejected)]
    assert [p.id for p in papers] == ["2401.04088", "cs/9901001"]
    mixtral = papers[0]
    assert mixtral.title == "Mixtral of Experts"
    assert mixtral.authors == ["Albert Q. Jiang", "Alexandre Sablayrolles", "John Smith Jr", "The Mixtral Team"]
    assert mixtral.categories == ["cs.LG", "cs.CL"]
    assert (mixtral.published, mixtral.updated) == ("2024-01-08", "2024-01-09")  # created, not the datestamp
    assert mixtral.doi == "10.1162/tacl_a_00001"
    assert mixtral.links == ["https://github.com/example/mixtral-demo"]  # from the comments
    assert "ℓ₂ routing" in mixtral.abstract and "10% of the total & fewer than <50B>" in mixtral.abstract
    assert "$\\ell_2$" in mixtral.raw_abstract
    assert papers[1].published == papers[1].updated == "1999-01-04"
    assert papers[1].authors == ["S. Warner"]
    assert len(rejected) == 1 and "record 4 (oai:arXiv.org:2401.05555)" in str(rejected[0])
    assert "no abstract" in rejected[0].reason
    assert (info.resumption_token, info.complete_list_size, info.cursor) == ("6960524|1001", 2500, 0)
    assert (info.deleted, info.records, info.max_datestamp) == (1, 3, "2024-01-11")


def test_oai_errors_and_broken_xml() -> None:
    def page(body: str) -> io.BytesIO:
        return io.BytesIO(('<?xml version="1.0"?><OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
                           f"<responseDate>2024-01-01T00:00:00Z</responseDate><request>x</request>{body}"
                           "</OAI-PMH>").encode())

    items, info = parse_list_records(page('<error code="noRecordsMatch">nothing</error>'), "p")
    assert list(items) == [] and info.resumption_token is None
    items, _ = parse_list_records(page('<error code="badResumptionToken">expired</error>'), "p")
    with pytest.raises(OAIError) as caught:
        list(items)
    assert caught.value.code == "badResumptionToken" and "p: OAI-PMH error badResumptionToken: expired" in str(
        caught.value)
    items, _ = parse_list_records(io.BytesIO(b'<?xml version="1.0"?>\n<OAI-PMH><ListRecords><record>'), "p")
    with pytest.raises(MalformedXML, match="line 2: malformed XML"):
        list(items)


def test_saved_response_ingests_by_content(store_home: Path, tmp_path: Path) -> None:
    """A saved ListRecords response is an ingest source like any other file; errors name the place."""
    broken = tmp_path / "broken.xml"
    broken.write_bytes((FIXTURES / "arxiv_oai_listrecords.xml").read_bytes()[:2500])
    items = list(read_source(broken))
    assert any(isinstance(i, Rejected) and "malformed XML" in i.reason for i in items)
    result = cli_json(store_home, "ingest", str(FIXTURES / "arxiv_oai_listrecords.xml"))
    assert result["added"] == 2 and result["rejected"] == 1
    assert "no abstract" in result["errors"][0]


def test_parser_memory_stays_flat() -> None:
    """A 40 MB response streamed from a generator: peak memory is bounded by a record, not the page."""
    # the bulk sits in a field the parser reads past, so the test measures the XML streaming
    record = Record("2401.00001", created="2024-01-01", datestamp="2024-01-01",
                    journal_ref="J. Long Names " * 1500).xml()

    def chunks() -> Iterator[bytes]:
        yield b'<?xml version="1.0"?><OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><ListRecords>'
        for _ in range(2_000):
            yield record.encode()
        yield b"<resumptionToken>next</resumptionToken></ListRecords></OAI-PMH>"

    class Stream(io.RawIOBase):
        def __init__(self) -> None:
            self.parts, self.rest = chunks(), b""

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            while not self.rest:
                self.rest = next(self.parts, b"")
                if not self.rest:
                    return 0
            n = min(len(buffer), len(self.rest))
            buffer[:n], self.rest = self.rest[:n], self.rest[n:]
            return n

    tracemalloc.start()
    try:
        items, info = parse_list_records(Stream(), "big")
        count = sum(1 for item in items if isinstance(item, Paper))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 2_000 and info.resumption_token == "next"
    assert len(record) * 2_000 > 40_000_000
    assert peak < 8_000_000, f"peak {peak:,} bytes"


# ---------------------------------------------------------------- harvesting


def test_multi_page_harvest_with_set_and_dates(store_home: Path) -> None:
    with ArxivServer(cs_records(), page_size=3) as server:
        report = run_harvest(store_home, server, set_spec="cs", date_from="2024-01-02", until="2024-01-09")
    # cs between the 2nd and the 9th: 2401.00002–00009 and the cross-listed math paper; 00200 is deleted
    expected = {f"2401.{n:05d}" for n in range(2, 10)} | {"2401.00102"}
    assert set(stored_ids(store_home)) == expected
    assert (report.added, report.deleted, report.pages) == (9, 1, 4)
    assert report.resumed is False and report.high_water == "2024-01-09"
    first, *rest = [entry for entry in server.log]
    assert first == {"path": "/oai2", "verb": "ListRecords", "metadataPrefix": "arXiv", "set": "cs",
                     "from": "2024-01-02", "until": "2024-01-09"}
    assert [r["resumptionToken"] for r in rest] == server.issued  # each token once, nothing else sent
    assert report.requests == 4

    store = open_store(store_home)
    try:
        paper = store.get_paper("2401.00005")
        assert (paper.published, paper.listed_on, paper.source) == ("2024-01-05", "2024-01-05", "arxiv-oai")
        state = HarvestStates(store).load(state_key("arxiv", "cs"))
        assert state.token is None and state.high_water == "2024-01-09"
    finally:
        store.close()


def test_physics_subset_and_no_records(store_home: Path) -> None:
    with ArxivServer(cs_records()) as server:
        report = run_harvest(store_home, server, set_spec="physics:hep-th")
        assert stored_ids(store_home) == ["hep-th/9901001"] and report.high_water == "2024-01-06"
        empty = run_harvest(store_home, server, set_spec="q-bio")  # noRecordsMatch is an empty harvest
    assert (empty.added, empty.pages, empty.high_water) == (0, 1, None)


def test_503_retry_after_is_honoured(store_home: Path) -> None:
    sleeps = Sleeps()
    with ArxivServer(cs_records(), page_size=5) as server:
        server.faults = [None, ("status", 503, {"Retry-After": "7"}), ("status", 503, {"Retry-After": "2"})]
        report = run_harvest(store_home, server, sleeps, set_spec="cs")
    assert sleeps.waits == [7.0, 2.0]  # exactly what the server asked, no backoff on top
    assert report.requests == 3 + 2 and len(stored_ids(store_home)) == 11


def test_500_and_dropped_connection_back_off_then_succeed(store_home: Path) -> None:
    sleeps = Sleeps()
    with ArxivServer(cs_records(), page_size=5) as server:
        server.faults = [("status", 500, {}), ("drop",), ("status", 502, {})]
        report = run_harvest(store_home, server, sleeps, set_spec="cs")
    assert sleeps.waits == [0.01, 0.02, 0.04]  # exponential backoff
    assert report.requests == 3 + 3 and report.added == 11


def test_giving_up_is_a_clear_error_and_keeps_committed_pages(store_home: Path) -> None:
    with ArxivServer(cs_records(), page_size=4) as server:
        server.faults = [None] + [("drop",)] * 4
        with pytest.raises(HarvestError, match=r"/oai2: RemoteProtocolError.*gave up after 4 attempts"):
            run_harvest(store_home, server, set_spec="cs")
        assert len(stored_ids(store_home)) == 4  # page 1 committed, page 2 never half-stored
        # the next run picks up at page 2 with the stored token
        report = run_harvest(store_home, server, set_spec="cs")
        assert report.resumed and server.log[5] == {"path": "/oai2", "verb": "ListRecords",
                                                    "resumptionToken": server.issued[0]}
    assert sorted(stored_ids(store_home)) == sorted({r.id for r in cs_records() if r.in_set("cs") and not r.deleted})
    assert (report.added, report.unchanged) == (7, 0)
    with ArxivServer([]) as server:
        with pytest.raises(HarvestError, match="HTTP 404"):
            store = open_store(store_home)
            try:
                harvest_arxiv(store, endpoint=server.base + "/nothing-here", client=client())
            finally:
                store.close()


def test_expired_token_restarts_the_run(store_home: Path) -> None:
    with ArxivServer(cs_records(), page_size=4) as server:
        server.faults = [None] + [("drop",)] * 4
        with pytest.raises(HarvestError):
            run_harvest(store_home, server, set_spec="cs")
        server.tokens.clear()  # the server forgot it (arXiv tokens expire)
        report = run_harvest(store_home, server, set_spec="cs")
    assert report.resumed and report.unchanged == 4 and report.added == 7
    assert len(stored_ids(store_home)) == 11


def test_revision_updates_but_does_not_look_new(store_home: Path) -> None:
    records = cs_records()
    with ArxivServer(records) as server:
        run_harvest(store_home, server, set_spec="cs", until="2024-01-10")
        revised = server.records["2401.00004"]
        revised.title, revised.abstract = "A better study of topic four", "Version two, rewritten."
        revised.updated, revised.datestamp = "2024-01-20", "2024-01-20"
        report = run_harvest(store_home, server, set_spec="cs", date_from="2024-01-15")
    assert (report.added, report.updated) == (0, 1)
    store = open_store(store_home)
    try:
        paper = store.get_paper("2401.00004")
    finally:
        store.close()
    assert paper.title == "A better study of topic four" and paper.updated == "2024-01-20"
    assert paper.published == paper.listed_on == "2024-01-04"  # still listed on its first-version day


def test_next_run_starts_before_the_high_water_mark_and_catches_late_papers(store_home: Path) -> None:
    with ArxivServer(cs_records()) as server:
        first = run_harvest(store_home, server, set_spec="cs")
        assert first.high_water == "2024-01-10"
        # Appearing after that run: one held in moderation whose datestamp is already in the past,
        # one created long ago with a new datestamp, and one paper that is really new.
        server.records["2401.00300"] = Record("2401.00300", created="2024-01-05", datestamp="2024-01-08")
        server.records["2312.09999"] = Record("2312.09999", created="2023-12-20", datestamp="2024-01-12")
        server.records["2401.00301"] = Record("2401.00301", created="2024-01-13", datestamp="2024-01-13")
        mark = len(server.log)
        second = run_harvest(store_home, server, set_spec="cs")
        assert server.log[mark]["from"] == "2024-01-05"  # the high-water mark minus five days
    assert (second.added, second.updated) == (3, 0) and second.unchanged > 0  # the overlap, re-seen harmlessly
    assert second.high_water == "2024-01-13"
    store = open_store(store_home)
    try:
        late = store.get_paper("2312.09999")
        assert late.published == late.listed_on == "2023-12-20"
        assert store.get_paper("2401.00300").published == "2024-01-05"
    finally:
        store.close()


# ---------------------------------------------------------------- the CLI


def test_cli_harvest_json_contract(store_home: Path) -> None:
    with ArxivServer(cs_records(), page_size=4) as server:
        result = cli_json(store_home, "harvest", "arxiv", "--set", "cs", "--from", "2024-01-01", "--endpoint",
                          server.oai_url, "--delay", "0")
        again = cli_json(store_home, "harvest", "arxiv", "--set", "cs", "--delay", "0", "--endpoint", server.oai_url)
        bad = run_cli(store_home, "harvest", "arxiv", "--from", "2024-13-01", "--endpoint", server.oai_url)
        os.environ["PAPERWIRE_ARXIV_OAI_URL"] = server.oai_url + "-missing"
        try:
            missing = run_cli(store_home, "harvest", "arxiv", "--delay", "0")
        finally:
            del os.environ["PAPERWIRE_ARXIV_OAI_URL"]
    assert {k: result[k] for k in ("added", "updated", "unchanged", "rejected", "errors", "resumed",
                                   "high_water", "requests")} == {
        "added": 11, "updated": 0, "unchanged": 0, "rejected": 0, "errors": [], "resumed": False,
        "high_water": "2024-01-10", "requests": 3}
    assert again["from"] == "2024-01-05" and again["added"] == 0 and again["unchanged"] > 0
    assert bad.returncode == 2 and "2024-13-01" in bad.stderr
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.startswith("paperwire: harvest stopped:") and "HTTP 404" in missing.stderr
    assert cli_json(store_home, "stats")["papers"] == 11


def test_cli_killed_mid_harvest_resumes_with_no_duplicates(store_home: Path) -> None:
    """SIGKILL while the server stalls on page 3; the re-run resumes from the stored token."""
    records = cs_records() + [Record(f"2402.{n:05d}", created="2024-02-01", datestamp="2024-02-01")
                              for n in range(1, 30)]
    expected = sorted(r.id for r in records if r.in_set("cs") and not r.deleted)
    with ArxivServer(records, page_size=8) as server:
        server.faults = [None, None, ("stall",)]
        env = {**os.environ, "PAPERWIRE_HOME": str(store_home)}
        proc = subprocess.Popen([sys.executable, "-m", "paperwire.cli", "--home", str(store_home), "harvest",
                                 "arxiv", "--set", "cs", "--endpoint", server.oai_url, "--delay", "0", "--json"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert server.stalled.wait(60), "the harvest never reached page 3"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        server.release.set()
        assert proc.returncode == -signal.SIGKILL
        assert len(stored_ids(store_home)) == 15  # two whole pages of 8 (one record deleted upstream), none of page 3
        mark = len(server.log)
        result = cli_json(store_home, "harvest", "arxiv", "--set", "cs", "--endpoint", server.oai_url, "--delay", "0")
        assert server.log[mark].get("resumptionToken") == server.issued[1]
    assert result["resumed"] is True and result["added"] == len(expected) - 15 and result["unchanged"] == 0
    ids = stored_ids(store_home)
    assert sorted(ids) == expected and len(ids) == len(set(ids))
    assert cli_json(store_home, "stats")["papers"] == len(expected)


# ---------------------------------------------------------------- the query API


def test_query_api_small_pull_pages_politely(store_home: Path) -> None:
    records = [Record(f"2403.{n:05d}", created="2024-03-01", datestamp="2024-03-01",
                      title=f"Retrieval paper {n}" if n % 2 else f"Vision paper {n}") for n in range(1, 26)]
    sleeps = Sleeps()
    with ArxivServer(records) as server:
        store = open_store(store_home)
        try:
            polite = PoliteClient(delay=5, retry=RetryPolicy(backoff=0.01), sleep=sleeps)
            report = query_arxiv(store, search_query="all:retrieval", max_results=10, endpoint=server.query_url,
                                 client=polite)
            papers = [store.get_paper(f"2403.{n:05d}") for n in range(1, 20, 2)]
        finally:
            store.close()
        pages = [(e["start"], e["max_results"], e["search_query"]) for e in server.log]
        result = cli_json(store_home, "harvest", "arxiv-query", "--id", "2403.00002", "--id", "2403.00025",
                          "--endpoint", server.query_url, "--delay", "0")
    assert report.added == 10 and [p.published for p in papers] == ["2024-03-01"] * 10
    assert pages[0] == ("0", "10", "all:retrieval") and len(pages) == 1
    assert result["added"] == 2
    # paged, with a polite pause between pages
    sleeps.waits.clear()
    with ArxivServer(records) as server:
        polite = PoliteClient(delay=5, retry=RetryPolicy(backoff=0.01), sleep=sleeps)
        got = [len(page) for page in query_pages(polite, server.query_url, search_query="paper", max_results=25,
                                                 page_size=10)]
    assert got == [10, 10, 5]
    assert [(e["start"], e["max_results"]) for e in server.log] == [("0", "10"), ("10", "10"), ("20", "5")]
    assert len(sleeps.waits) == 2 and all(0 < w <= 5 for w in sleeps.waits)


# ---------------------------------------------------------------- fuzzing the parser

OAI_SAMPLE = (FIXTURES / "arxiv_oai_listrecords.xml").read_bytes()


@st.composite
def mutated_oai(draw: st.DrawFn) -> bytes:
    data = bytearray(OAI_SAMPLE)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["delete", "insert", "truncate"]))
        if kind == "delete":
            del data[at:at + draw(st.integers(1, 300))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=30) | st.sampled_from(
                [b"\xff", b"\x00", b"<", b"&", b"&lt;", b"</record>", b"<record>", b'<header status="deleted">',
                 b'<error code="badArgument">x</error>', b"<id></id>", b"<created>2024-99-01</created>",
                 b"<resumptionToken/>", b'<?xml version="1.0" encoding="klingon"?>', b"<!DOCTYPE x>"]))
        else:
            del data[at:]
    return bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_oai() | st.binary(max_size=1500))
def test_parser_never_raises_on_bad_bytes(data: bytes) -> None:
    for item in parse_stream(io.BytesIO(data), "fuzz", "arxiv-oai"):
        assert isinstance(item, (Paper, Rejected))
        if isinstance(item, Paper):
            assert item.title and item.abstract and canonical_id(item.id) == item.id
            assert item.published is None or len(item.published) == 10
    # the harvester's entry point raises only its documented errors
    items, _ = parse_list_records(io.BytesIO(data), "fuzz")
    try:
        list(items)
    except SourceError:
        pass
