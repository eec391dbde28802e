"""Render and enqueue digests for many generated subscribers (the `digest send` work before SMTP).

Builds a home with the sample corpus, inserts N active daily subscribers, then times one
DigestBuilder.enqueue_all over them: per subscriber the already-sent lookup, the sections, the
jinja2 text + HTML, the MIME message, and the outbox + sent-items transaction. A second run the
same day is timed too (it must queue nothing). Delivery over SMTP is not part of this number.

Usage: python bench/digest.py [--subscribers 100000] [--json out.json]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this directory comes first on sys.path; its modules must not shadow the stdlib.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import date  # noqa: E402

from paperwire.cli import seed_paths  # noqa: E402
from paperwire.digest.digests import DigestBuilder  # noqa: E402
from paperwire.digest.settings import MailSettings  # noqa: E402
from paperwire.ingest import ingest_paths  # noqa: E402
from paperwire.store import open_store  # noqa: E402
from paperwire.store.mail import MailStore  # noqa: E402

TARGET_SUBSCRIBERS = 100_000
TARGET_SECONDS = 600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=TARGET_SUBSCRIBERS)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="pw-bench-digest-"))
    store = open_store(home)
    ingest_paths(store, seed_paths(), fmt="hf-page")
    t0 = time.perf_counter()
    with store.transaction():
        store.conn.executemany(
            "INSERT INTO subscriptions(email, period, status, content) VALUES (?, 'daily', 'active', '{}')",
            ((f"reader{i:07d}@example.org",) for i in range(args.subscribers)))
    setup_seconds = time.perf_counter() - t0

    settings = MailSettings(base_url="https://papers.example.org", mail_from="paperwire <digest@example.org>")
    day = date.today()
    t0 = time.perf_counter()
    builder = DigestBuilder(home, store, settings, "bench-secret-" + "x" * 32, "daily", day)
    subs = MailStore(store).subscriptions(period="daily", status="active")
    prepare_seconds = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    report = builder.enqueue_all(subs)
    enqueue_seconds, enqueue_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    rerun = DigestBuilder(home, store, settings, "bench-secret-" + "x" * 32, "daily", day).enqueue_all(
        MailStore(store).subscriptions(period="daily", status="active"))
    rerun_seconds = time.perf_counter() - t0
    sizes = store.conn.execute("SELECT AVG(LENGTH(message)), COUNT(*) FROM outbox").fetchone()
    store.close()
    db_bytes = sum(f.stat().st_size for f in home.iterdir() if f.name.startswith("paperwire.sqlite3"))

    total = prepare_seconds + enqueue_seconds
    per_sub_ms = 1000 * total / max(1, args.subscribers)
    summary = {
        "subscribers": args.subscribers, "papers": 407, "queued": report.queued, "cpu_count": os.cpu_count(),
        "setup_seconds": round(setup_seconds, 2), "prepare_seconds": round(prepare_seconds, 2),
        "enqueue_seconds": round(enqueue_seconds, 1), "enqueue_cpu_seconds": round(enqueue_cpu, 1),
        "per_subscriber_ms": round(per_sub_ms, 3),
        "per_subscriber_cpu_ms": round(1000 * enqueue_cpu / max(1, args.subscribers), 3),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "subscribers_per_second": round(args.subscribers / total, 1),
        "extrapolated_100k_seconds": round(per_sub_ms * TARGET_SUBSCRIBERS / 1000, 1),
        "target_seconds": TARGET_SECONDS, "rerun_seconds": round(rerun_seconds, 1),
        "rerun_queued": rerun.queued, "avg_stored_message_bytes": round(sizes[0] or 0),
        "database_bytes": db_bytes, "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
