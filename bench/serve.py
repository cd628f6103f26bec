"""Load on `skyscript-db serve`: N text searches (k results each) from C concurrent clients
against one server process on a database (default: the one `make build-db` builds), as the page
sends them. Writes bench/results/serve.md.

Latency is per request, measured by the client from sending to the last byte of the JSON
(encoding the text, the FAISS search and the metadata lookup included; fetching the images not).
The server's start (model and index load, pairs snapshot) is timed apart and not in the
latencies. Also a filtered search and a pair page, the page's two other frequent requests.
Usage: python bench/serve.py [--db data/skyscript.duckdb] [--searches 200] [--clients 8] [--k 20]
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import httpx

from common import ROOT, parser, report_path  # bench/common.py

QUERIES = ("a park with trees", "football pitch", "railway tracks", "a parking lot",
           "residential buildings", "a church", "harbour with boats", "a tennis court",
           "road of service", "building of yes", "natural tree", "a playground", "water",
           "footway with surface paved", "a bus stop", "cemetery", "a bridge over water",
           "shops along a street", "a school yard", "grass")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path, port: int, workers: int) -> tuple[subprocess.Popen, float]:
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "skyscript_db", "serve", "--db", str(db),
                               "--port", str(port), "--workers", str(workers)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        if server.poll() is not None:
            raise SystemExit(f"serve exited with status {server.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/overview", timeout=5).raise_for_status()
            return server, time.perf_counter() - started
        except httpx.TransportError:
            time.sleep(0.2)


def load(port: int, requests: list[tuple[str, dict]], clients: int) -> tuple[list[float], float]:
    """Latencies of `requests` (url, params) sent by `clients` threads, each on a kept-alive
    connection of its own as a browser tab has, and the wall time. http.client, not httpx: the
    clients share this machine's cores with the server, and it costs them a quarter as much."""
    local = threading.local()

    def timed(url: str, params: dict) -> float:
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        started = time.perf_counter()
        local.connection.request("GET", f"{url}?{urlencode(params)}")
        answer = local.connection.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise SystemExit(f"{url} {params}: {answer.status} {body[:200]!r}")
        json.loads(body)
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(lambda r: timed(*r), requests))
    return latencies, time.perf_counter() - started


def row(name: str, workers: int, latencies: list[float], wall_s: float) -> str:
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return (f"| {name} | {workers} | {len(latencies)} | {q[49]:.1f} | {q[89]:.1f} | {q[98]:.1f} "
            f"| {max(latencies):.1f} | {len(latencies) / wall_s:.0f} |")


def measure(db: Path, workers: int, searches: int, clients: int,
            k: int) -> tuple[list[str], float, int]:
    """Table rows for one server with `workers` processes, its start time, its pair count."""
    port = free_port()
    server, start_s = start_server(db, port, workers)
    base = f"http://127.0.0.1:{port}"
    try:
        # the first requests pay lazy initialisation (torch, DuckDB caches), in every worker
        load(port, [("/api/search", {"q": q, "k": k}) for q in QUERIES * workers], clients)
        texts = [("/api/search", {"q": QUERIES[i % len(QUERIES)], "k": k})
                 for i in range(searches)]
        pair_ids = [r["pair_id"] for r in httpx.get(
            f"{base}/api/search", params={"q": "building", "k": 50}).json()["results"]]
        rows = [row(name, workers, *load(port, requests, clients)) for name, requests in (
            (f"text search, k = {k}", texts),
            (f"text search, k = {k}, filter `gsd_m < 1`",
             [(url, {**params, "where": "gsd_m < 1"}) for url, params in texts]),
            ("pair page", [(f"/api/pairs/{pair_ids[i % len(pair_ids)]}", {})
                           for i in range(searches)]),
        )]
        pairs = httpx.get(f"{base}/api/overview").json()["summary"]["pairs"]
    finally:
        server.terminate()
        server.wait(30)
    return rows, start_s, pairs


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--db", type=Path, default=ROOT / "data" / "skyscript.duckdb")
    options.add_argument("--searches", type=int, default=200)
    options.add_argument("--clients", type=int, default=8)
    options.add_argument("--k", type=int, default=20)
    options.add_argument("--workers", default="1,2", help="server processes, comma-separated")
    args = options.parse_args()
    if not args.db.exists():
        raise SystemExit(f"{args.db}: no such database; run `make build-db` first")
    if args.quick:
        args.searches, args.clients, args.workers = 10, 2, "1"

    rows, starts = [], []
    for workers in (int(w) for w in args.workers.split(",")):
        found, start_s, pairs = measure(args.db, workers, args.searches, args.clients, args.k)
        rows += found
        starts.append(f"{start_s:.1f} s with {workers} worker{'s' * (workers > 1)}")
    lines = [
        "# `skyscript-db serve` under load",
        "",
        f"Measured {datetime.date.today()} on this machine ({os.cpu_count()} cores, no GPU) by "
        f"`python bench/serve.py`: a server (`skyscript-db serve --workers W`) on "
        f"`{args.db.name}` ({pairs} pairs, the tiny untrained model), "
        f"{args.clients} concurrent clients on the same machine (127.0.0.1), {args.searches} "
        f"requests per row, the {len(QUERIES)} queries of the script in turn. Latency: "
        "client-side, request sent to JSON received, in ms; the server's start is not in it.",
        "",
        f"Server start (process start, model and index load, pairs snapshot, first answer): "
        f"{'; '.join(starts)}.",
        "",
        "| request | workers | n | p50 ms | p90 ms | p99 ms | max ms | requests/s |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Target: p50 ≤ 50 ms for k = {args.k} on the default database.",
        "",
    ]
    report_path(args, "serve").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
