"""REST throughput with concurrent clients: ``crm-modes serve`` as a user starts it.

Run: ``.venv/bin/python benchmarks/bench_rest_concurrency.py --tracking-uri URI [--clients 8]
[--requests 200]`` against a store whose ``crm-advisor@champion`` exists. Each client sends
``--requests`` single-record requests back to back; the result is requests per second over
all clients and the latency percentiles under that load. Target (issue 12): >= 500 requests
per second with 8 clients on two cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save
from bench_score import BIN, environment, request_timings, serve

PORT = 8913


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    from crm_modes.data.generator import generate_book

    record = generate_book(200, seed=7).head(1)
    record = record.drop(
        columns=[c for c in record.columns if c.startswith("oracle_") or c in ("default_12m", "churn_12m")]
    )
    record["snapshot_date"] = record["snapshot_date"].dt.strftime("%Y-%m-%d")
    data = json.dumps({"records": json.loads(record.to_json(orient="records"))}).encode()
    url = f"http://127.0.0.1:{PORT}/v1/score"
    with tempfile.TemporaryDirectory() as folder:
        env = environment(args.tracking_uri)
        process = serve(
            [str(BIN / "crm-modes"), "serve", "--host", "127.0.0.1"], env, Path(folder), "/ready", PORT
        )
        try:
            request_timings(url, data, 20)  # warm up
            started = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                runs = list(
                    pool.map(
                        lambda _: request_timings(url, data, args.requests, timeout=60), range(args.clients)
                    )
                )
            seconds = time.perf_counter() - started
        finally:
            process.terminate()
    timings = np.concatenate(runs)
    per_second = len(timings) / seconds
    save(
        "rest_concurrency",
        {
            "clients": args.clients,
            "requests": len(timings),
            "seconds": round(seconds, 2),
            "requests_per_second": round(per_second, 1),
            "p50_ms": round(float(np.percentile(timings, 50)), 2),
            "p99_ms": round(float(np.percentile(timings, 99)), 2),
            "checks": {"at_least_500_requests_per_second": per_second >= 500},
        },
    )


if __name__ == "__main__":
    main()
