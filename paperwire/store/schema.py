"""The tables of accounts, libraries, mail, rate limits and collections, as the migrations in
store/migrations.py apply them. Kept apart from the code that reads and writes them so the migrations
depend on nothing above the schema."""

_NOW = "(strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"

# Votes, submissions and sessions: migration `web_0001_accounts`.
ACCOUNTS_SCHEMA: list[str] = [
    """CREATE TABLE votes (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        paper_id TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
        PRIMARY KEY (user_id, paper_id)
    )""",
    "CREATE INDEX votes_paper ON votes(paper_id)",
    """CREATE TABLE submissions (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        paper_id TEXT NOT NULL,
        status TEXT NOT NULL,                 -- added | updated | unchanged (already listed)
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
    )""",
    "CREATE INDEX submissions_user ON submissions(user_id)",
    """CREATE TABLE web_sessions (
        token_hash TEXT PRIMARY KEY,          -- sha256 of the cookie's token; the token is never stored
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    )""",
    "CREATE INDEX web_sessions_user ON web_sessions(user_id)",
]

LIBRARY_SCHEMA: list[str] = [
    f"""CREATE TABLE library_items (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        tag TEXT NOT NULL DEFAULT '',           -- '' is the untagged part of the library
        paper_id TEXT NOT NULL,
        added_at TEXT NOT NULL DEFAULT {_NOW},
        PRIMARY KEY (user_id, tag, paper_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX library_items_paper ON library_items(paper_id)",
    f"""CREATE TABLE paper_marks (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        mark TEXT NOT NULL CHECK (mark IN ('read', 'not_relevant')),
        paper_id TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT {_NOW},
        PRIMARY KEY (user_id, mark, paper_id)
    ) WITHOUT ROWID""",
    f"""CREATE TABLE saved_searches (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        query TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT {_NOW},
        UNIQUE (user_id, query)
    )""",
]

MAIL_SCHEMA: list[str] = [
    f"""CREATE TABLE subscriptions (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE COLLATE NOCASE,
        period TEXT NOT NULL CHECK (period IN ('daily', 'weekly')),
        status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'unsubscribed')),
        user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
        content TEXT NOT NULL DEFAULT '{{}}',    -- JSON: what the digest holds
        created_at TEXT NOT NULL DEFAULT {_NOW},
        confirmed_at TEXT,
        unsubscribed_at TEXT
    )""",
    "CREATE INDEX subscriptions_due ON subscriptions(period, status)",
    f"""CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        dedupe_key TEXT NOT NULL UNIQUE,        -- one mail per subscriber, kind and period day
        subscription_id INTEGER REFERENCES subscriptions(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,                     -- confirm | digest
        recipient TEXT NOT NULL,
        message_id TEXT NOT NULL,
        message BLOB NOT NULL,                  -- zlib-compressed RFC 5322 bytes, fixed at enqueue
        status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at TEXT NOT NULL DEFAULT {_NOW},
        sent_at TEXT
    )""",
    "CREATE INDEX outbox_status ON outbox(status, next_attempt_at)",
    "CREATE INDEX outbox_subscription ON outbox(subscription_id, kind)",
    """CREATE TABLE sent_items (
        subscription_id INTEGER NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
        paper_id TEXT NOT NULL,
        outbox_id INTEGER NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
        PRIMARY KEY (subscription_id, paper_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX sent_items_outbox ON sent_items(outbox_id)",
]

# A change asked for from the site to an active subscription waits here (JSON: period, content,
# user_id) until the confirm link in the mail to that address applies it.
MAIL_REQUESTS_SCHEMA: list[str] = ["ALTER TABLE subscriptions ADD COLUMN requested TEXT"]

RATE_LIMITS_SCHEMA: list[str] = [
    """CREATE TABLE rate_hits (
        id INTEGER PRIMARY KEY,
        action TEXT NOT NULL,
        key TEXT NOT NULL,
        at REAL NOT NULL,                     -- Unix time of the attempt
        expires REAL NOT NULL                 -- when it stops counting in its window
    )""",
    "CREATE INDEX rate_hits_key ON rate_hits(action, key, at)",
    "CREATE INDEX rate_hits_expires ON rate_hits(expires)",
]

COLLECTIONS_SCHEMA: list[str] = [
    f"""CREATE TABLE collections (
        id INTEGER PRIMARY KEY,
        token TEXT NOT NULL UNIQUE,             -- the URL's name: random, so unlisted means unfindable
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        title TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        visibility TEXT NOT NULL CHECK (visibility IN ('public', 'unlisted', 'private')),
        created_at TEXT NOT NULL DEFAULT {_NOW},
        updated_at TEXT NOT NULL DEFAULT {_NOW}
    )""",
    "CREATE INDEX collections_user ON collections(user_id)",
    "CREATE INDEX collections_public ON collections(updated_at) WHERE visibility = 'public'",
    f"""CREATE TABLE collection_items (
        collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,  -- the collection's owner
        paper_id TEXT NOT NULL,
        position INTEGER NOT NULL,              -- 1, 2, … in the owner's order
        note TEXT NOT NULL DEFAULT '',
        added_at TEXT NOT NULL DEFAULT {_NOW},
        PRIMARY KEY (collection_id, paper_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX collection_items_order ON collection_items(collection_id, position)",
    "CREATE INDEX collection_items_paper ON collection_items(paper_id)",
]
