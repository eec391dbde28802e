"""The schema as named migrations, applied once each in list order and recorded in
`schema_migrations`. Never edit a released migration: append a new one. Features that own
tables (accounts, libraries, mail) keep their tables in store/schema.py and append their migrations
here under their own names."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from paperwire.store.authors import AUTHORS_SCHEMA, backfill_authors
from paperwire.store.comments import COMMENTS_SCHEMA
from paperwire.store.rows import title_hash
from paperwire.store.schema import (
    ACCOUNTS_SCHEMA,
    COLLECTIONS_SCHEMA,
    LIBRARY_SCHEMA,
    MAIL_REQUESTS_SCHEMA,
    MAIL_SCHEMA,
    RATE_LIMITS_SCHEMA,
)

# A step is SQL, or a function of the connection for what SQL cannot compute.
Migration = tuple[str, list[str | Callable[[sqlite3.Connection], None]]]


def _fill_title_hashes(conn: sqlite3.Connection) -> None:
    rows = conn.execute("SELECT rowid, title_key FROM papers").fetchall()
    conn.executemany("UPDATE papers SET title_hash = ? WHERE rowid = ?", [(title_hash(k), r) for r, k in rows])

MIGRATIONS: list[Migration] = [
    ("0001_papers", [
        """CREATE TABLE papers (
            id TEXT PRIMARY KEY,
            rev INTEGER NOT NULL UNIQUE,          -- bumped on every write: indexes follow it
            title TEXT NOT NULL,
            abstract TEXT NOT NULL DEFAULT '',
            authors TEXT NOT NULL DEFAULT '[]',   -- JSON list
            categories TEXT NOT NULL DEFAULT '[]',
            published TEXT,
            updated TEXT,
            listed_on TEXT,
            links TEXT NOT NULL DEFAULT '[]',
            source TEXT NOT NULL DEFAULT '',
            upvotes INTEGER NOT NULL DEFAULT 0,
            submitted_by TEXT,
            arxiv_id TEXT,
            version INTEGER,
            doi TEXT,
            num_comments INTEGER NOT NULL DEFAULT 0,
            raw_title TEXT NOT NULL DEFAULT '',
            raw_abstract TEXT NOT NULL DEFAULT '',
            title_key TEXT NOT NULL,
            ingested_on TEXT NOT NULL
        )""",
        "CREATE INDEX papers_listed_on ON papers(listed_on)",
        "CREATE INDEX papers_title_key ON papers(title_key)",
        "CREATE INDEX papers_doi ON papers(doi) WHERE doi IS NOT NULL",
        """CREATE TABLE paper_aliases (
            alias TEXT PRIMARY KEY,
            paper_id TEXT NOT NULL
        )""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ]),
    ("0002_users", [
        """CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE COLLATE NOCASE,
            email TEXT COLLATE NOCASE,
            password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
        )""",
    ]),
    ("web_0001_accounts", ACCOUNTS_SCHEMA),
    ("digest_0001_library", LIBRARY_SCHEMA),
    ("digest_0002_mail", MAIL_SCHEMA),
    ("digest_0003_subscription_requests", MAIL_REQUESTS_SCHEMA),
    ("0003_title_hash", [
        "ALTER TABLE papers ADD COLUMN title_hash INTEGER NOT NULL DEFAULT 0",
        _fill_title_hashes,
        "DROP INDEX papers_title_key",
        "CREATE INDEX papers_title_hash ON papers(title_hash)",
    ]),
    # An arXiv paper's title is matched only against papers known by title alone: few, and in a small index.
    ("0004_title_only_index", [
        "UPDATE papers SET arxiv_id = NULL WHERE arxiv_id = ''",  # "no arXiv id" is NULL, as rows now write it
        "CREATE INDEX papers_title_only ON papers(title_hash) WHERE arxiv_id IS NULL",
    ]),
    # An image the source shows for the paper (Hugging Face's media URLs); NULL for most papers.
    ("0005_thumbnail", [
        "ALTER TABLE papers ADD COLUMN thumbnail TEXT",
    ]),
    ("web_0002_rate_limits", RATE_LIMITS_SCHEMA),
    ("web_0003_collections", COLLECTIONS_SCHEMA),
    # Author pages: who wrote what, written with the papers from now on and filled here for what is stored.
    ("0006_paper_authors", [*AUTHORS_SCHEMA, backfill_authors]),
    ("web_0004_comments", COMMENTS_SCHEMA),
]
