"""Where a harvest stands, kept in the `meta` table so that a killed run can resume.

One JSON value per harvested source and set, under a key such as `harvest:arxiv:cs`. It is written
in the same transaction as the page of papers it describes, so the two never disagree.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from paperwire.store.sqlite import SQLiteStore


@dataclass
class HarvestState:
    endpoint: str | None = None
    set_spec: str | None = None
    date_from: str | None = None  # the running (or last) run's from/until
    until: str | None = None
    token: str | None = None  # resumption token of the next page; None when no run is in progress
    pages: int = 0  # pages committed in the running run
    run_high: str | None = None  # newest datestamp committed in the running run
    high_water: str | None = None  # newest datestamp of all completed runs
    completed_at: str | None = None

    @property
    def in_progress(self) -> bool:
        return self.token is not None


def state_key(source: str, set_spec: str | None) -> str:
    return f"harvest:{source}:{set_spec or '*'}"


class HarvestStates:
    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    def load(self, key: str) -> HarvestState:
        row = self.store.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if not row:
            return HarvestState()
        data: dict[str, Any] = json.loads(row[0])
        names = {f.name for f in fields(HarvestState)}
        return HarvestState(**{k: v for k, v in data.items() if k in names})

    def save(self, key: str, state: HarvestState) -> None:
        with self.store.transaction():
            self.store.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                                    (key, json.dumps(asdict(state), sort_keys=True)))
