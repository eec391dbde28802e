"""Author page latency over HTTP on a real home: `python -P bench/author_pages.py HOME [--authors N]`
(-P: bench/http.py must not shadow the standard library).

Serves HOME (the search index is not loaded: author pages do not use it) on a loopback port and asks
for /authors/{name} of the most prolific authors and of a seeded random draw of others, each once
(the first, uncached answer) and then again (the page cache). Prints JSON: milliseconds per group.
The store is migrated first (a home made before author pages gets its author index then, timed too).
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import uvicorn

from paperwire.store import open_store
from paperwire.store.authors import Authors
from paperwire.web.app import create_app


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"n": len(values), "p50": round(statistics.median(values), 1), "p95": round(pick(0.95), 1),
            "max": round(ordered[-1], 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("home", type=Path)
    parser.add_argument("--authors", type=int, default=210, help="randomly drawn authors (10 of them warm up)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    started = time.perf_counter()
    store = open_store(args.home)  # applies the author index migration if the home predates it
    migrate_s = time.perf_counter() - started
    papers = store.count_papers()
    prolific, others = Authors(store).sample_names(top=20, others=args.authors, seed=args.seed)
    store.close()

    app = create_app(args.home, start_index=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    result: dict[str, object] = {"papers": papers, "open_and_migrate_s": round(migrate_s, 1)}
    with httpx.Client(base_url=base, timeout=120) as client:
        client.get("/about")  # templates and connections warmed
        for name in others[-10:]:  # each request thread's connection and the author page's template
            client.get("/authors/" + quote(name, safe=""))
        others = others[:-10]
        for label, names in (("prolific", prolific), ("random", others)):
            for attempt in ("first", "again"):
                times = []
                for name in names:
                    t = time.perf_counter()
                    response = client.get("/authors/" + quote(name, safe=""))
                    times.append((time.perf_counter() - t) * 1000)
                    assert response.status_code == 200, (name, response.status_code)
                result[f"{label}_{attempt}_ms"] = percentiles(times)
        result["most_papers"] = prolific[0]
    server.should_exit = True
    thread.join(timeout=30)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
