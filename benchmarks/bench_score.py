"""Batch scoring and REST latency of the advisor bundle, each beside a plain baseline.

Run: ``.venv/bin/python benchmarks/bench_score.py [--tracking-uri URI] [--rows N] [--requests N]``.
Without ``--tracking-uri`` it first trains and promotes ``configs/train.yaml`` into a
temporary SQLite store (not timed).

Measured, in one run:
- batch: ``crm-modes score`` end to end (read, gate, advise with reasons, write, reconcile)
  as a separate process under ``/usr/bin/time``, for N rows and N/4 rows (peak memory must not
  grow with the input), each ``--repeats`` times (the median reported, every run kept);
  baseline: the three champion pipelines called through stock ``mlflow.pyfunc`` one after
  another on the same chunks, in memory, no gate, no writing;
- REST: 2,000 sequential single-record requests (200 records of the book in turn) to
  ``crm-modes serve`` and, as the baseline, to stock ``mlflow models serve`` (p50, p99), each with
  a new connection per request and on one kept-alive connection.
Targets (2-core machine): >= 250,000 rows/s end to end, peak memory <= 1 GiB whatever
the input size, REST p50 <= 3 ms and p99 <= 10 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
from _report import save

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def environment(uri: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MLFLOW_TRACKING_URI=uri,
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
    )
    return env


def run(
    args: list[str], env: dict, cwd: Path, allowed: tuple[int, ...] = (0,)
) -> subprocess.CompletedProcess:
    result = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)
    if result.returncode not in allowed:
        raise RuntimeError(f"{args[:3]} failed:\n{result.stderr[-3000:]}")
    return result


def champion_store(tracking_uri: str | None, folder: Path) -> tuple[str, dict[str, str]]:
    """The store a benchmark scores with, and the environment that points at it: ``tracking_uri``,
    or (None) a SQLite store in ``folder`` where ``configs/train.yaml`` is first trained and
    promoted (not timed)."""
    uri = tracking_uri or f"sqlite:///{folder / 'mlflow.db'}"
    env = environment(uri)
    if tracking_uri is None:
        for command in ("train", "promote"):
            run(
                [str(BIN / "crm-modes"), command, "--config", str(REPO / "configs" / "train.yaml")],
                env,
                folder,
            )
    return uri, env


def timed_score(env: dict, folder: Path, source: Path, output: str, *options: str) -> dict[str, float]:
    """``crm-modes score`` of ``source`` under ``/usr/bin/time`` (``options``: e.g. ``--engine spark``)."""
    result = run(
        [
            "/usr/bin/time",
            "-f",
            "TIME %e %M",
            str(BIN / "crm-modes"),
            "score",
            "--model",
            "models:/crm-advisor@champion",
            "--input",
            str(source),
            "--output",
            output,
            "--chunk-rows",
            "50000",
            *options,
        ],
        env,
        folder,
    )
    seconds, kib = result.stderr.strip().splitlines()[-1].split()[1:]
    return {"seconds": float(seconds), "peak_memory_mib": round(int(kib) / 1024, 1), "stdout": result.stdout}


def baseline_seconds(uri: str, source: Path) -> float:
    os.environ["MLFLOW_TRACKING_URI"] = uri
    import mlflow
    import pyarrow.parquet as pq

    from crm_modes.shared.model_loading import model_input

    models = [
        mlflow.pyfunc.load_model(f"models:/{name}@champion") for name in ("crm-mode", "crm-churn", "crm-pd")
    ]
    started = time.perf_counter()
    for batch in pq.ParquetFile(source).iter_batches(batch_size=50_000):
        frame = model_input(batch.to_pandas())
        for model in models:
            model.predict(frame)
    return time.perf_counter() - started


def request_timings(url: str, bodies: list[bytes], count: int, *, timeout: float = 30) -> list[float]:
    """Milliseconds of each of ``count`` JSON POSTs to ``url`` (``bodies`` in turn), one after another."""
    timings = []
    for index in range(count):
        data = bodies[index % len(bodies)]
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def kept_alive_timings(url: str, bodies: list[bytes], count: int) -> list[float]:
    """Milliseconds of each of ``count`` JSON POSTs on one kept-alive connection, one after another."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    timings = []
    for index in range(count):
        data = bodies[index % len(bodies)]
        started = time.perf_counter()
        connection.request("POST", parts.path, body=data, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")
        timings.append((time.perf_counter() - started) * 1000)
    connection.close()
    return timings


def single_records(source: Path, count: int = 200) -> list[dict]:
    """``count`` records drawn from the rows of ``source`` (a fixed sample), as a client sends them."""
    import pandas as pd

    rows = pd.read_parquet(source).sample(n=count, random_state=0)
    rows["snapshot_date"] = rows["snapshot_date"].dt.strftime("%Y-%m-%d")
    return json.loads(rows.to_json(orient="records"))


def latencies(url: str, bodies: list[dict], count: int) -> dict[str, float]:
    """p50 and p99 with a new connection per request, and on one kept-alive connection."""
    data = [json.dumps(body).encode() for body in bodies]
    figures = {}
    for label, timings in (
        ("", request_timings(url, data, count)),
        ("kept_alive_", kept_alive_timings(url, data, count)),
    ):
        figures[f"{label}p50_ms"] = round(float(np.percentile(timings, 50)), 2)
        figures[f"{label}p99_ms"] = round(float(np.percentile(timings, 99)), 2)
    return figures


def serve(args: list[str], env: dict, folder: Path, health: str, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [*args, "--port", str(port)],
        env=env,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{health}", timeout=2):
                return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"{args[:3]} did not come up")


def checks(batch: dict, rest: dict, sizes: dict) -> dict[str, bool]:
    """The scoring targets (2-core machine)."""
    return {
        "at_least_250000_rows_per_second": batch["full"]["rows_per_second"] >= 250_000,
        "peak_memory_at_most_1_gib": max(batch[s]["peak_memory_mib"] for s in sizes) <= 1024,
        "rest_p50_at_most_3_ms": min(rest["p50_ms"], rest["kept_alive_p50_ms"]) <= 3,
        "rest_p99_at_most_10_ms": min(rest["p99_ms"], rest["kept_alive_p99_ms"]) <= 10,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3, help="batch runs per size; the median is reported")
    args = parser.parse_args()

    from crm_modes.data.generator import generate_book

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        uri, env = champion_store(args.tracking_uri, folder)

        sizes = {"full": args.rows, "quarter": args.rows // 4}
        sources = {}
        for label, rows in sizes.items():
            book = generate_book(rows, seed=7)
            labels = ("default_12m", "churn_12m")
            book = book.drop(columns=[c for c in book.columns if c.startswith("oracle_") or c in labels])
            sources[label] = folder / f"{label}.parquet"
            book.to_parquet(sources[label])
            del book

        batch = {}
        for label, rows in sizes.items():
            # the machines are shared and noisy: the median of --repeats runs, every run kept
            runs = [
                timed_score(env, folder, sources[label], f"scores-{label}.parquet")
                for _ in range(args.repeats)
            ]
            median = sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]
            batch[label] = {
                "seconds": median["seconds"],
                "peak_memory_mib": max(run["peak_memory_mib"] for run in runs),
                "rows": rows,
                "rows_per_second": round(rows / median["seconds"]),
                "runs_seconds": [run["seconds"] for run in runs],
            }
        base = baseline_seconds(uri, sources["full"])
        batch["baseline_three_pyfunc_models"] = {
            "seconds": round(base, 2),
            "rows_per_second": round(args.rows / base),
        }

        records = single_records(sources["quarter"])
        ours = serve([str(BIN / "crm-modes"), "serve", "--host", "127.0.0.1"], env, folder, "/ready", 8911)
        try:
            bodies = [{"records": [record]} for record in records]
            ours_latency = latencies("http://127.0.0.1:8911/v1/score", bodies, args.requests)
        finally:
            ours.terminate()
            ours.wait(30)
        stock = serve(
            [
                str(BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                "models:/crm-advisor@champion",
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
            ],
            env,
            folder,
            "/ping",
            8912,
        )
        try:
            bodies = [
                {"dataframe_split": {"columns": list(record), "data": [list(record.values())]}}
                for record in records
            ]
            stock_latency = latencies("http://127.0.0.1:8912/invocations", bodies, args.requests)
        finally:
            stock.terminate()
            stock.wait(30)

    save(
        "score",
        {
            "batch": batch,
            "rest_single_record": {
                "crm_modes_serve": ours_latency,
                "baseline_mlflow_models_serve": stock_latency,
                "requests": args.requests,
            },
            "checks": checks(batch, ours_latency, sizes),
        },
    )


if __name__ == "__main__":
    main()
