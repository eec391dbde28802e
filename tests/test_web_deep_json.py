"""JSON nested too deeply for the decoders, and BibTeX the parser complains about, through the real server:
a pasted record, an uploaded library and the subscribe API answer with a one-line reason (never a 500),
the good entries of an upload still count, and the BibTeX parser's own warnings stay out of the log."""

from __future__ import annotations

import json
import logging

import httpx
from web_server import csrf_of, signed_up_client


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def csl_item(key: str, title: str, **fields: object) -> str:
    return json.dumps({"type": "article-journal", "id": key, "title": title, **fields})


def test_a_pasted_record_nested_too_deeply_is_a_form_error(base: str) -> None:
    client = signed_up_client(base, "deep-paster")
    for depth in (1000, 5000):
        pasted = csl_item("deep", "Deep", abstract="An abstract.")[:-1] + f', "author": {nested(depth)}}}'
        response = client.post("/submit", data={"csrf_token": csrf_of(client.get("/submit").text),
                                                 "metadata": pasted})
        assert response.status_code < 500, response.text[:500]
        if response.status_code != 303:  # read at a depth the decoder still follows: a paper, or a reason
            assert "nested too deeply" in response.text, response.text[:2000]


def test_an_uploaded_library_keeps_its_good_entries(base: str) -> None:
    client = signed_up_client(base, "deep-importer")
    token = csrf_of(client.get("/library").text)
    for depth in (1000, 100_000):
        library = "[" + ",".join([csl_item("a", "First title", DOI="10.1/aaa"), nested(depth),
                                  csl_item("b", "Second title", DOI="10.1/bbb")]) + "]"
        response = client.post("/library/import", data={"csrf_token": token, "format": "csl-json"},
                               files={"file": ("refs.json", library.encode(), "application/json")},
                               headers={"accept": "application/json"})
        assert response.status_code == 200, response.text[:500]
        report = response.json()
        assert report["entries"] == 2 and [u["key"] for u in report["unmatched"]] == ["a", "b"]
        assert len(report["rejected"]) == 1 and "record 2" in report["rejected"][0]


def test_the_subscribe_api_answers_a_deep_body_with_400(base: str) -> None:
    for depth in (1000, 100_000):
        body = '{"email": "deep@example.org", "searches": ' + nested(depth) + "}"
        response = httpx.post(f"{base}/api/subscribe", content=body, timeout=30,
                              headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text[:500]
        assert response.json() == {"error": "body: JSON nested too deeply"}


BROKEN_BIBTEX = """@article{broken, title = {Unclosed, abstract = {An abstract}
@article{nocomma title = {T}}
"""


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_bibtex_parser_warnings_stay_out_of_the_server_log(base: str) -> None:
    client = signed_up_client(base, "bib-paster")
    # what reaches the root logger is what a server's log handler (`paperwire serve`: basicConfig) writes
    root, recorder = logging.getLogger(), Recorder()
    level = root.level
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    try:
        pasted = client.post("/submit", data={"csrf_token": csrf_of(client.get("/submit").text),
                                               "metadata": BROKEN_BIBTEX})
        uploaded = client.post("/library/import",
                               data={"csrf_token": csrf_of(client.get("/library").text), "format": "bibtex"},
                               files={"file": ("refs.bib", BROKEN_BIBTEX.encode(), "application/x-bibtex")},
                               headers={"accept": "application/json"})
    finally:
        root.removeHandler(recorder)
        root.setLevel(level)
    assert pasted.status_code == 422 and "malformed BibTeX entry" in pasted.text
    assert uploaded.status_code == 200 and len(uploaded.json()["rejected"]) == 2
    noisy = [r for r in recorder.records if r.name.startswith(("bibtexparser", "pylatexenc"))]
    assert not noisy, [r.getMessage() for r in noisy]
    assert any(r.name.startswith("httpx") for r in recorder.records)  # the recorder did hear the rest


def test_typed_in_markup_nested_too_deeply_is_never_a_500(base: str) -> None:
    client = signed_up_client(base, "deep-typist")
    for abstract in ("\\frac" * 1000, "\\frac" * 20_000, "\\sqrt{" * 2000 + "x" + "}" * 2000):
        response = client.post("/submit", data={"csrf_token": csrf_of(client.get("/submit").text),
                                                 "title": "Fractions all the way down", "abstract": abstract})
        assert response.status_code in (303, 422), response.text[:500]
        if response.status_code == 303:
            page = client.get(response.headers["location"])
            assert page.status_code == 200 and "Fractions all the way down" in page.text
