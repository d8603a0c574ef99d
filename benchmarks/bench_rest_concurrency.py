"""REST throughput with concurrent clients: ``crm-modes serve`` as a user starts it.

Run: ``.venv/bin/python benchmarks/bench_rest_concurrency.py --tracking-uri URI [--clients 8]
[--seconds 60] [--workers 1 2]`` against a store whose ``crm-advisor@champion`` exists. For each
worker count, ``--clients`` clients each send single-record requests (200 records of a book in
turn) back to back for
``--seconds`` seconds over one kept-alive connection each (as an HTTP client library does); the
result is requests per second over all clients, the errors (any answer but 200) and the latency
percentiles under that load. The clients run on the same machine, so they take some of its CPU.
Target: >= 500 requests per second with 8 clients on two cores, no error.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save
from bench_score import BIN, environment, serve, single_records

PORT = 8913


def client(bodies: list[bytes], seconds: float, first: int = 0) -> tuple[list[float], int]:
    """Requests sent back to back on one connection for ``seconds``: latencies (ms) and errors."""
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    timings, errors = [], 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        body = bodies[(first + len(timings)) % len(bodies)]
        started = time.perf_counter()
        connection.request("POST", "/v1/score", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        timings.append((time.perf_counter() - started) * 1000)
        errors += response.status != 200
    connection.close()
    return timings, errors


def load(bodies: list[bytes], clients: int, seconds: float) -> dict[str, float]:
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    connection.request("POST", "/v1/score", body=bodies[0], headers={"Content-Type": "application/json"})
    answer = connection.getresponse()
    if answer.status != 200:  # a wrong request measures nothing: stop, showing why
        raise RuntimeError(f"the service answered {answer.status}: {answer.read()[:2000]!r}")
    connection.close()
    client(bodies, 2.0)  # warm up
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        runs = list(pool.map(lambda index: client(bodies, seconds, 25 * index), range(clients)))
    elapsed = time.perf_counter() - started
    timings = np.concatenate([run[0] for run in runs])
    return {
        "requests": len(timings),
        "errors": int(sum(run[1] for run in runs)),
        "seconds": round(elapsed, 2),
        "requests_per_second": round(len(timings) / elapsed, 1),
        "p50_ms": round(float(np.percentile(timings, 50)), 2),
        "p99_ms": round(float(np.percentile(timings, 99)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    from crm_modes.data.generator import generate_book
    from crm_modes.data.schema import Role, names

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        book = generate_book(20_000, seed=7)
        book = book.drop(columns=names([Role.LABEL, Role.ORACLE]))  # what a client has: no outcomes
        book.to_parquet(Path(folder) / "book.parquet")
        bodies = [
            json.dumps({"records": [record]}).encode()
            for record in single_records(Path(folder) / "book.parquet")
        ]
        env = environment(args.tracking_uri)
        for workers in args.workers:
            command = [str(BIN / "crm-modes"), "serve", "--host", "127.0.0.1", "--workers", str(workers)]
            process = serve(command, env, Path(folder), "/ready", PORT)
            try:
                time.sleep(15 if workers > 1 else 0)  # every worker loads its model
                results[f"workers_{workers}"] = load(bodies, args.clients, args.seconds)
            finally:
                process.terminate()
                process.wait(30)
    best = max(results.values(), key=lambda result: result["requests_per_second"])
    save(
        "rest_concurrency",
        {
            "clients": args.clients,
            "seconds_per_run": args.seconds,
            **results,
            "checks": {
                "at_least_500_requests_per_second": best["requests_per_second"] >= 500,
                "no_error": all(result["errors"] == 0 for result in results.values()),
            },
        },
    )


if __name__ == "__main__":
    main()
