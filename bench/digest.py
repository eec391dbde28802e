"""Render and enqueue digests for many generated subscribers (the `digest send` work before SMTP).

Builds a home with the sample corpus and its search index (MiniLM), then inserts N active daily
subscribers of three kinds:
  * trending only (anonymous; the default mix gives them 80%),
  * linked to a user who saved 5 papers of one seed page: recommendations (a classifier per user)
    plus trending (10%),
  * anonymous with one keyword alert from a pool of 20 queries, plus trending (10%).
It times one DigestBuilder.enqueue_all over all of them: per subscriber the already-sent lookup,
the sections, the jinja2 text + HTML, the MIME message, and the outbox + sent-items transaction.
A second run the same day is timed too (it must queue nothing). SMTP delivery is not part of it.

Baseline in the same process: the naive way, rendering both templates and building the MIME
message for every subscriber (no shared rendering), timed on a sample and extrapolated.

Usage: python bench/digest.py [--subscribers 100000] [--personal 0.1] [--alerts 0.1] [--json out.json]
       [--markdown BENCHMARKS.md | --no-markdown]
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
import random  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import date  # noqa: E402

from bench.quality import machine, write_section  # noqa: E402
from paperwire.cli import seed_paths  # noqa: E402
from paperwire.digest.compose import build_message, render_parts  # noqa: E402
from paperwire.digest.digests import DigestBuilder  # noqa: E402
from paperwire.digest.settings import MailSettings  # noqa: E402
from paperwire.digest.subscriptions import unsubscribe_url  # noqa: E402
from paperwire.ingest import ingest_paths  # noqa: E402
from paperwire.sources import hf_page  # noqa: E402
from paperwire.store import open_store  # noqa: E402
from paperwire.store.mail import MailStore  # noqa: E402

TARGET_SUBSCRIBERS = 100_000
TARGET_SECONDS = 600
NAIVE_SAMPLE = 2000
SAVED_PER_USER = 5
ALERT_QUERIES = [
    "diffusion models", "reinforcement learning from human feedback", "speculative decoding", "mixture of experts",
    "retrieval augmented generation", "vision language model", "graph neural network", "quantization",
    "long context", "video generation", "reasoning chain of thought", "protein", "robot manipulation",
    "federated learning", "text to speech", "3D reconstruction", "code generation", "benchmark evaluation",
    "sparse attention", "contrastive learning",
]
SECRET = "bench-secret-" + "x" * 32


def page_ids(store) -> list[list[str]]:  # type: ignore[no-untyped-def]
    out = []
    for path in seed_paths():
        with open(path, "rb") as fh:
            ids = [p.id for p in hf_page.parse(fh, str(path)) if hasattr(p, "id")]
        found = store.get_papers(ids)
        out.append(list(dict.fromkeys(found[i].id for i in ids if i in found)))
    return out


def add_subscribers(store, count: int, personal: float, alerts: float, seed: int = 7) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Active daily subscribers of the three kinds, inserted directly (no confirmation mails)."""
    rng = random.Random(seed)
    pages = page_ids(store)
    n_personal, n_alert = int(count * personal), int(count * alerts)
    with store.transaction():
        conn = store.conn
        users = []
        for i in range(n_personal):
            cur = conn.execute("INSERT INTO users(username, email, password_hash) VALUES (?, ?, 'x')",
                               (f"reader{i:07d}", f"reader{i:07d}@example.org"))
            uid = int(cur.lastrowid or 0)
            users.append(uid)
            page = pages[rng.randrange(len(pages))]
            conn.executemany("INSERT INTO library_items(user_id, tag, paper_id) VALUES (?, '', ?)",
                             [(uid, pid) for pid in rng.sample(page, SAVED_PER_USER)])
        personal_content = json.dumps({"trending": True, "recommendations": True, "tag": None, "alerts": True,
                                       "searches": []})
        conn.executemany("INSERT INTO subscriptions(email, period, status, user_id, content) "
                         "VALUES (?, 'daily', 'active', ?, ?)",
                         ((f"reader{i:07d}@example.org", uid, personal_content) for i, uid in enumerate(users)))
        conn.executemany("INSERT INTO subscriptions(email, period, status, content) VALUES (?, 'daily', 'active', ?)",
                         ((f"alert{i:07d}@example.org",
                           json.dumps({"trending": True, "searches": [rng.choice(ALERT_QUERIES)]}))
                          for i in range(n_alert)))
        conn.executemany("INSERT INTO subscriptions(email, period, status, content) "
                         "VALUES (?, 'daily', 'active', '{}')",
                         ((f"plain{i:07d}@example.org",) for i in range(count - n_personal - n_alert)))
    return {"trending_only": count - n_personal - n_alert, "personal": n_personal, "keyword_alert": n_alert}


def naive_seconds_per_subscriber(builder: DigestBuilder, subs: list,  # type: ignore[type-arg]
                                  settings: MailSettings) -> tuple[float, float]:
    """(wall, CPU) seconds per subscriber: its digest, both templates rendered and the MIME message
    built, nothing shared."""
    started, cpu = time.perf_counter(), time.process_time()
    for sub in subs:
        digest = builder.build(sub)
        unsubscribe = unsubscribe_url(settings, SECRET, sub)
        context = {"heading": "Your daily paperwire digest", "intro": f"{len(digest.paper_ids)} new papers",
                   "sections": digest.sections, "period": "daily", "email": sub.email}
        parts = render_parts(settings, "digest", context, unsubscribe)
        build_message(settings, to=sub.email, subject="paperwire daily digest", unsubscribe_url=unsubscribe,
                      parts=parts)
    n = max(1, len(subs))
    return (time.perf_counter() - started) / n, (time.process_time() - cpu) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=TARGET_SUBSCRIBERS)
    parser.add_argument("--personal", type=float, default=0.1, help="share linked to a user with a library")
    parser.add_argument("--alerts", type=float, default=0.1, help="share with one keyword alert")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=_HERE.parent / "BENCHMARKS.md")
    parser.add_argument("--no-markdown", action="store_true")
    args = parser.parse_args()

    load_before = os.getloadavg()
    home = Path(tempfile.mkdtemp(prefix="pw-bench-digest-"))
    try:
        store = open_store(home)
        ingest_paths(store, seed_paths(), fmt="hf-page")
        t0 = time.perf_counter()
        from paperwire.index import open_index

        index = open_index(home, store, embedder="minilm")
        index_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        kinds = add_subscribers(store, args.subscribers, args.personal, args.alerts)
        setup_seconds = time.perf_counter() - t0

        settings = MailSettings(base_url="https://papers.example.org", mail_from="paperwire <digest@example.org>")
        day = date.today()
        t0, c0 = time.perf_counter(), time.process_time()
        builder = DigestBuilder(home, store, settings, SECRET, "daily", day, index=index)
        subs = MailStore(store).subscriptions(period="daily", status="active")
        report = builder.enqueue_all(subs)
        enqueue_seconds, enqueue_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        rerun = DigestBuilder(home, store, settings, SECRET, "daily", day, index=index).enqueue_all(
            MailStore(store).subscriptions(period="daily", status="active"))
        rerun_seconds = time.perf_counter() - t0
        per_kind = dict(store.conn.execute(
            "SELECT CASE WHEN s.user_id IS NOT NULL THEN 'personal' WHEN s.content LIKE '%searches%' "
            "THEN 'keyword_alert' ELSE 'trending_only' END, AVG(n) FROM subscriptions s JOIN "
            "(SELECT subscription_id, COUNT(*) AS n FROM sent_items GROUP BY subscription_id) c "
            "ON c.subscription_id = s.id GROUP BY 1").fetchall())
        sizes = store.conn.execute("SELECT AVG(LENGTH(message)), COUNT(*) FROM outbox").fetchone()

        # The naive baseline on a sample of each kind, in proportion, on a fresh day (nothing sent yet).
        rng = random.Random(11)
        sample = rng.sample(subs, min(NAIVE_SAMPLE, len(subs)))
        store.conn.execute("DELETE FROM sent_items")
        naive, naive_cpu = naive_seconds_per_subscriber(
            DigestBuilder(home, store, settings, SECRET, "daily", day, index=index), sample, settings)
        store.close()
        db_bytes = sum(f.stat().st_size for f in home.iterdir() if f.name.startswith("paperwire.sqlite3"))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    load_after = os.getloadavg()

    n = max(1, args.subscribers)
    summary = {
        "subscribers": args.subscribers, "kinds": kinds, "papers": 407, "queued": report.queued,
        "cpu_count": os.cpu_count(), "index_build_seconds": round(index_seconds, 1),
        "setup_seconds": round(setup_seconds, 2),
        "enqueue_seconds": round(enqueue_seconds, 1), "enqueue_cpu_seconds": round(enqueue_cpu, 1),
        "per_subscriber_ms": round(1000 * enqueue_seconds / n, 3),
        "per_subscriber_cpu_ms": round(1000 * enqueue_cpu / n, 3),
        "subscribers_per_second": round(n / enqueue_seconds, 1),
        "extrapolated_100k_seconds": round(enqueue_seconds / n * TARGET_SUBSCRIBERS, 1),
        "naive_per_subscriber_ms": round(1000 * naive, 3),
        "naive_extrapolated_100k_seconds": round(naive * TARGET_SUBSCRIBERS, 1),
        "naive_per_subscriber_cpu_ms": round(1000 * naive_cpu, 3),
        "extrapolated_100k_cpu_seconds": round(enqueue_cpu / n * TARGET_SUBSCRIBERS, 1),
        "target_seconds": TARGET_SECONDS, "rerun_seconds": round(rerun_seconds, 1), "rerun_queued": rerun.queued,
        "papers_per_digest": {k: round(v, 1) for k, v in per_kind.items()},
        "avg_stored_message_bytes": round(sizes[0] or 0), "database_bytes": db_bytes,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    if not args.no_markdown:
        command = "python bench/digest.py " + " ".join(sys.argv[1:])
        write_section(args.markdown, markdown(summary, command.strip()))


def markdown(s: dict, command: str) -> str:  # type: ignore[type-arg]
    info = machine()
    k = s["kinds"]
    ok = "meets" if s["extrapolated_100k_seconds"] <= s["target_seconds"] else "misses"
    ok_cpu = "meets" if s["extrapolated_100k_cpu_seconds"] <= s["target_seconds"] else "misses"
    return "\n".join([
        "## Digests (render and enqueue)",
        "",
        f"{s['subscribers']:,} active daily subscribers on the sample corpus (407 papers, all new on the digest "
        f"day): {k['trending_only']:,} trending only, {k['personal']:,} linked to a user with 5 saved papers "
        f"(recommendations from a per-user classifier + trending), {k['keyword_alert']:,} with one keyword alert "
        "(+ trending). Timed: one `DigestBuilder.enqueue_all` (sent-items lookup, sections, jinja2 text + HTML, "
        "MIME, outbox + sent-items transaction per subscriber). SMTP delivery is not included.",
        "",
        f"Command: `{command}`  ",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB RAM, Python {info['python']}, "
        f"{info['os']}  ",
        f"Load average (1/5/15 min) before: {' / '.join(map(str, s['load_average_before']))}, after: "
        f"{' / '.join(map(str, s['load_average_after']))} (other benchmarks share the 2 cores)",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| enqueue, wall | {s['enqueue_seconds']:.1f} s |",
        f"| enqueue, CPU | {s['enqueue_cpu_seconds']:.1f} s |",
        f"| per subscriber, wall / CPU | {s['per_subscriber_ms']:.2f} / {s['per_subscriber_cpu_ms']:.2f} ms |",
        f"| 100k subscribers, wall (target ≤ {s['target_seconds']} s) | {s['extrapolated_100k_seconds']:.0f} s: "
        f"{ok} the target on this shared machine |",
        f"| 100k subscribers, CPU (one core's worth) | {s['extrapolated_100k_cpu_seconds']:.0f} s: "
        f"{ok_cpu} the target with a core to itself |",
        f"| naive baseline (render + MIME per subscriber, {NAIVE_SAMPLE:,} sampled), per subscriber, wall / CPU | "
        f"{s['naive_per_subscriber_ms']:.2f} / {s['naive_per_subscriber_cpu_ms']:.2f} ms |",
        f"| naive baseline vs paperwire, CPU per subscriber | "
        f"×{s['naive_per_subscriber_cpu_ms'] / max(1e-9, s['per_subscriber_cpu_ms']):.2f} |",
        f"| same day again (queues {s['rerun_queued']}) | {s['rerun_seconds']:.1f} s |",
        "| papers per digest | " + ", ".join(f"{kind} {v}" for kind, v in sorted(s["papers_per_digest"].items()))
        + " |",
        f"| stored message (zlib) | {s['avg_stored_message_bytes']:,} bytes |",
        f"| database after | {s['database_bytes'] / 1e6:,.0f} MB |",
        f"| peak RSS | {s['max_rss_mb']} MB |",
        f"| search index build (MiniLM, not timed above) | {s['index_build_seconds']:.1f} s |",
        "",
    ])


if __name__ == "__main__":
    main()
