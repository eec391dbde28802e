"""The flat form of a Paper that the store writes, and the way back.

A row is a plain tuple: the Paper's fields in order, lists as JSON text, then the paper's title key and
its hash. Turning papers into rows is most of a bulk ingest's per-record work outside parsing, and a
tuple of strings and numbers is cheap to send between processes, so the ingest pipeline makes rows where
it parses (in the parser processes for a large file) and the store only compares and writes them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from typing import Any

import orjson

from paperwire.model import Paper, normalise_title

COLUMNS = (
    "id", "title", "abstract", "authors", "categories", "published", "updated", "listed_on",
    "links", "source", "upvotes", "submitted_by", "arxiv_id", "version", "doi", "num_comments", "thumbnail",
    "raw_title", "raw_abstract",
)
PAPER_COLUMNS = len(COLUMNS)  # a row's first PAPER_COLUMNS values are these columns; then title_key, title_hash
TITLE_KEY, TITLE_HASH = PAPER_COLUMNS, PAPER_COLUMNS + 1
ARXIV_ID = COLUMNS.index("arxiv_id")
AUTHORS = COLUMNS.index("authors")
assert tuple(f.name for f in fields(Paper)) == COLUMNS, "rows hold Paper's fields in order"

PaperRow = tuple  # (*COLUMNS values, title_key, title_hash)


def title_hash(title_key: str) -> int:
    """A signed 64-bit digest of a title key: the indexed form of the key (an integer index is half
    the size of one on text and twice as fast to insert into; the key itself confirms a match)."""
    return int.from_bytes(hashlib.blake2b(title_key.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "big", signed=True)


def title_key(paper: Paper) -> str:
    return normalise_title(paper.raw_title or paper.title)


_encode_json_std = json.JSONEncoder(ensure_ascii=False).encode


def _encode_json(value: list[str]) -> str:
    """JSON text of a list of strings; orjson is ten times faster on the ingest path."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # a lone surrogate: the standard encoder writes it as an escape
        return _encode_json_std(value)


def paper_values(paper: Paper) -> list[Any]:
    """The COLUMNS values of a paper."""
    return [paper.id, paper.title, paper.abstract, _encode_json(paper.authors), _encode_json(paper.categories),
            paper.published, paper.updated, paper.listed_on, _encode_json(paper.links), paper.source,
            paper.upvotes, paper.submitted_by, paper.arxiv_id or None, paper.version, paper.doi, paper.num_comments,
            paper.thumbnail,
            # the raw text is stored only where cleaning changed it (most abstracts have no LaTeX): half the bytes
            "" if paper.raw_title == paper.title else paper.raw_title,
            "" if paper.raw_abstract == paper.abstract else paper.raw_abstract]


def paper_row(paper: Paper) -> PaperRow:
    key = title_key(paper)
    return (*paper_values(paper), key, title_hash(key))


def row_paper(values: tuple | list) -> Paper:
    """The Paper of a row's (or a stored record's) first PAPER_COLUMNS values."""
    (pid, title, abstract, authors, categories, published, updated, listed_on, links, source, upvotes,
     submitted_by, arxiv_id, version, doi, num_comments, thumbnail, raw_title, raw_abstract) = values[:PAPER_COLUMNS]
    loads = orjson.loads
    return Paper(pid, title, abstract, loads(authors) if authors else [], loads(categories) if categories else [],
                 published, updated, listed_on, loads(links) if links else [], source, upvotes, submitted_by,
                 arxiv_id, version, doi, num_comments, thumbnail, raw_title or title, raw_abstract or abstract)
