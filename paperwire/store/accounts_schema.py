"""SQL of the accounts tables (votes, submissions, sessions); applied as migration `web_0001_accounts`."""

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
