"""The monitoring command: a book against its model's training reference, as HTML, JSON and MLflow."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from crm_modes.cli.app import (
    Threads,
    app,
    configure_threads,
    console,
    load_verified,
    model_stack,
    progress,
    row_count,
)
from crm_modes.cli.tables import print_monitoring_report


@app.command()
def monitor(
    current: Annotated[
        Path, typer.Option(help="The book to monitor (.csv or .parquet), as a scoring job reads it.")
    ],
    model: Annotated[str, typer.Option(help="Registered model whose reference it is compared with.")] = (
        "models:/crm-advisor@champion"
    ),
    outcomes: Annotated[
        Path | None,
        typer.Option(
            help="Known outcomes (facility_id, snapshot_date, default_12m, churn_12m; rows whose 12-month "
            "window has closed) for the backtest; may be the current file itself."
        ),
    ] = None,
    scores: Annotated[
        Path | None,
        typer.Option(
            help="What `crm-modes score` wrote for this book with this model: read in step with the "
            "current rows instead of scoring them again (same rows, order and version, or exit 2)."
        ),
    ] = None,
    html_path: Annotated[Path | None, typer.Option("--html", help="Write the HTML report here.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write every figure as JSON here.")] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="Thresholds (configs/monitoring.yaml); default: the values that file ships with."),
    ] = None,
    mlflow_log: Annotated[
        bool, typer.Option("--mlflow/--no-mlflow", help="Log the report on the version's monitoring run.")
    ] = True,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows read at a time; bounds memory.")] = 100_000,
    threads: Threads = None,
) -> None:
    """Stability, backtest and slices of a book against the model's training reference.

    Exit code 1 when any figure crosses an "act" threshold, 0 otherwise (2: bad input).
    """
    configure_threads(threads)
    with model_stack():
        from crm_modes.data.io import atomic_text
        from crm_modes.monitor.book_monitor import json_safe, monitor_file
        from crm_modes.monitor.config import load_monitoring_config
        from crm_modes.monitor.html import render
    started = time.perf_counter()
    settings = load_monitoring_config(config)
    loaded = load_verified(model)
    with progress("monitoring", total=row_count(current)) as shown:
        report = monitor_file(
            loaded,
            current,
            settings,
            outcomes=outcomes,
            scores=scores,
            chunk_rows=chunk_rows,
            on_chunk=shown.advance,
        )
    report = json_safe(report)
    page = render(report, settings.model_dump())
    for path, text in ((html_path, page), (json_path, json.dumps(report, indent=1))):
        if path is not None:
            atomic_text(path, text)
    print_monitoring_report(console, report, time.perf_counter() - started)
    for label, path in (("HTML report", html_path), ("JSON", json_path)):
        if path is not None:
            console.print(f"{label}: {path}")
    if mlflow_log:
        from crm_modes.monitor.mlflow_reports import EXPERIMENT, log_report

        run_id = log_report(report, page)
        console.print(f"logged on MLflow run {run_id} (experiment {EXPERIMENT})")
    if report["status"] == "act":
        raise typer.Exit(1)
