"""The fixed costs under the scoring targets, each measured alone: what the targets leave room for.

Run: ``.venv/bin/python benchmarks/bench_floors.py --tracking-uri URI [--rows N] [--requests N]``
against a store whose ``crm-advisor@champion`` exists.

Batch (target: N rows at >= 250,000 rows/s end to end, i.e. N / 250,000 seconds):
- ``import mlflow.pyfunc`` in a fresh interpreter (every scoring job loads the registered pyfunc);
- ``crm-modes score`` of a one-row table end to end: interpreter, imports, resolving the alias,
  verifying and loading the bundle, writing the outputs;
- the committee model's LightGBM booster alone, predicting N rows' feature matrix at this
  process's threads (the feature matrix built beforehand, not timed).

REST (targets: one record p50 <= 3 ms, p99 <= 10 ms; >= 500 requests/s with 8 clients):
- the service's HTTP stack with no model behind it: uvicorn (httptools, uvloop) and a FastAPI
  route taking the service's own request model and middlewares (strict JSON, body limit, catch-all),
  answering a fixed advice row; p50/p99 as ``bench_score.py`` sends requests, and requests/s with
  8 clients on one and two workers as ``bench_rest_concurrency.py`` does;
- in process, one record through the champion pyfunc's ``predict`` (MLflow's input check included)
  and through the advisor itself, p50 and p99: the difference is MLflow's share.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save
from bench_rest_concurrency import PORT, load
from bench_score import BIN, environment, latencies, run, serve, single_records, timed_score

# module level: FastAPI resolves the route's annotation here
from crm_modes.serve.rest.records import ScoreRequest

HERE = Path(__file__).resolve().parent
FLOOR_PORT = 8914
LABELS = ("default_12m", "churn_12m")


def floor_app():  # a FastAPI application, built in the worker that serves it
    """The service's HTTP stack with a fixed answer in place of the model (see the module)."""
    from fastapi import FastAPI

    from crm_modes.models.advisor import OUTPUT_TYPES
    from crm_modes.serve.rest.limits import Limits
    from crm_modes.serve.rest.middleware import BodyLimit, CatchAll
    from crm_modes.serve.rest.strict_json import StrictJSONRoute

    row = {"client_id": "C000001", "facility_id": "F000001", "snapshot_date": "2024-01-31"}
    row |= {name: 0.5 if kind == "double" else "basic" for name, kind in OUTPUT_TYPES.items()}
    answer = {"model_version": "floor", "scores": [row]}
    app = FastAPI()
    app.router.route_class = StrictJSONRoute
    app.add_middleware(BodyLimit, limit=Limits().body_bytes)
    app.add_middleware(CatchAll)

    @app.post("/v1/score")
    def score(request: ScoreRequest) -> dict:
        return answer

    @app.get("/ready")
    def ready() -> dict:
        return {"ready": True}

    return app


def seconds_of(command: list[str], env: dict, repeats: int) -> dict[str, object]:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(command, env, HERE)
        runs.append(round(time.perf_counter() - started, 2))
    return {"median_seconds": statistics.median(runs), "runs_seconds": runs}


def committee_seconds(uri: str, source: Path, rows: int) -> dict[str, object]:
    """The committee booster alone on ``rows`` rows' feature matrix: at one thread (the
    default) and at every CPU this process may use (``--threads 0``)."""
    import os

    os.environ["MLFLOW_TRACKING_URI"] = uri
    import pyarrow.parquet as pq

    from crm_modes.features import fast
    from crm_modes.features.columns import Columns
    from crm_modes.shared.model_loading import load_model, model_input
    from crm_modes.shared.threads import available_cpus, configure_threads

    configure_threads(None)
    loaded = load_model("models:/crm-advisor@champion")
    advisor = loaded.pyfunc.unwrap_python_model().advisor  # measured alone, as a floor
    frame = model_input(pq.read_table(source).slice(0, rows).to_pandas())
    matrix = fast.matrix(advisor.mode["features"], Columns(frame))
    booster = advisor.mode["model"]._booster_object()
    figures: dict[str, object] = {"rows": len(matrix), "trees": booster.num_trees()}
    for threads in sorted({1, available_cpus()}):
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            booster.predict(matrix, num_threads=threads)
            runs.append(round(time.perf_counter() - started, 2))
        figures[f"threads_{threads}"] = {"median_seconds": statistics.median(runs), "runs_seconds": runs}
    return figures


def in_process_record(uri: str, source: Path, count: int) -> dict[str, float]:
    """One record at a time through the champion pyfunc, and through its advisor (p50, p99 ms)."""
    from crm_modes.serve.rest.records import ScoringRecord, records_frame
    from crm_modes.shared.model_loading import load_model, model_input

    loaded = load_model("models:/crm-advisor@champion")
    advisor = loaded.pyfunc.unwrap_python_model().advisor
    frames = [model_input(records_frame([ScoringRecord(**record)])) for record in single_records(source)]
    figures = {}
    for label, call in (("pyfunc_predict", loaded.pyfunc.predict), ("advisor_alone", advisor.advise)):
        timings = []
        for index in range(count):
            started = time.perf_counter()
            call(frames[index % len(frames)])
            timings.append((time.perf_counter() - started) * 1000)
        timings = timings[100:]  # the first calls warm caches up
        figures[f"{label}_p50_ms"] = round(float(np.percentile(timings, 50)), 2)
        figures[f"{label}_p99_ms"] = round(float(np.percentile(timings, 99)), 2)
    return figures


def http_floor(env: dict, folder: Path, records: list[dict], requests: int, seconds: float) -> dict:
    bodies = [{"records": [record]} for record in records]
    figures: dict[str, object] = {}
    for workers in (1, 2):
        port = FLOOR_PORT if workers == 1 else PORT
        command = [sys.executable, str(Path(__file__)), "--serve-floor", "--workers", str(workers)]
        process = serve(command, env, folder, "/ready", port)
        try:
            if workers == 1:
                figures["sequential"] = latencies(f"http://127.0.0.1:{port}/v1/score", bodies, requests)
            else:
                data = [json.dumps(body).encode() for body in bodies]
                figures["clients_8_workers_2"] = load(data, 8, seconds)
        finally:
            process.terminate()
            process.wait(30)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracking-uri")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--seconds", type=float, default=30.0, help="of the 8-client run")
    parser.add_argument("--serve-floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=FLOOR_PORT, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        import uvicorn

        uvicorn.run(
            "bench_floors:floor_app",
            factory=True,
            app_dir=str(HERE),
            host="127.0.0.1",
            port=args.port,
            workers=args.workers,
            log_level="warning",
        )
        return
    if not args.tracking_uri:
        parser.error("--tracking-uri is required")

    from crm_modes.data.generator import generate_book

    env = environment(args.tracking_uri)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        book = generate_book(args.rows, seed=7)
        book = book.drop(columns=[c for c in book.columns if c.startswith("oracle_") or c in LABELS])
        source = folder / "book.parquet"
        book.to_parquet(source)
        book.head(1).to_parquet(folder / "one.parquet")
        del book

        budget = args.rows / 250_000
        imports = seconds_of([str(BIN / "python"), "-c", "import mlflow.pyfunc"], env, 5)
        one_row = [timed_score(env, folder, folder / "one.parquet", f"one-{i}.parquet") for i in range(3)]
        committee = committee_seconds(args.tracking_uri, source, args.rows)
        batch = {
            "budget_seconds_at_250000_rows_per_second": budget,
            "import_mlflow_pyfunc": imports,
            "score_one_row_end_to_end": {
                "median_seconds": statistics.median(run["seconds"] for run in one_row),
                "runs_seconds": [run["seconds"] for run in one_row],
            },
            "committee_booster_alone": committee,
        }
        fixed = batch["score_one_row_end_to_end"]["median_seconds"] + committee["threads_1"]["median_seconds"]
        batch["one_row_plus_committee_at_one_thread_seconds"] = round(fixed, 2)
        rest = {
            "in_process_one_record": in_process_record(args.tracking_uri, source, args.requests),
            "http_stack_without_model": http_floor(
                env, folder, single_records(source), args.requests, args.seconds
            ),
        }
    save(
        "floors",
        {
            "rows": args.rows,
            "batch": batch,
            "rest": rest,
            "checks": {
                "batch_fixed_costs_fit_the_budget": fixed <= budget,
            },
        },
    )


if __name__ == "__main__":
    main()
