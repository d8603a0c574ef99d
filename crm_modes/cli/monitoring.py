"""The monitoring command: a book against its model's training reference, as HTML, JSON and MLflow."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crm_modes.cli.app import (
    Macro,
    MaxQuarantined,
    Threads,
    UnseenCategories,
    UnseenChoice,
    app,
    configure_threads,
    console,
    load_verified,
    model_stack,
    progress,
    quarantine_limit,
    row_count,
)
from crm_modes.cli.tables import print_monitoring_report
from crm_modes.data.gate import FileReport, refuse_unusable
from crm_modes.shared.errors import InputError

if TYPE_CHECKING:
    from sqlalchemy import Engine


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
    quarantine: Annotated[
        Path | None,
        typer.Option(
            help="Where the rows the gate kept out go, with their reasons (default: beside --current)."
        ),
    ] = None,
    previous: Annotated[
        Path | None,
        typer.Option(help="The previous run's JSON report, to compare the book's levels month on month."),
    ] = None,
    state: Annotated[
        str | None,
        typer.Option(
            help="State store URL: remember this run's levels there and compare with the latest run of the "
            "same model version (instead of --previous)."
        ),
    ] = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows read at a time; bounds memory.")] = 100_000,
    max_quarantined_share: MaxQuarantined = None,
    unseen_categories: UnseenCategories = UnseenChoice.score,
    macro: Macro = None,
    threads: Threads = None,
) -> None:
    """Stability, levels, backtest and slices of a book against the model's training reference.

    A bundle trained on a bank's book reads the bank's own file through its book contract, as
    `crm-modes score` does (with the macro series of ``--macro`` where it joins one).

    Exit code 1 when any figure crosses an "act" threshold (too few rows to judge is one), 2 for bad
    input or a book that could (almost) not be read (after the report is written), 0 otherwise.
    """
    configure_threads(threads)
    with model_stack():
        from crm_modes.data.io import atomic_text
        from crm_modes.models.bundle_book import bank_input
        from crm_modes.monitor.book_monitor import json_safe, monitor_file
        from crm_modes.monitor.config import load_monitoring_config
        from crm_modes.monitor.html import render
        from crm_modes.state.monitoring_runs import remember
        from crm_modes.state.store import connect
    started = time.perf_counter()
    settings = load_monitoring_config(config)
    loaded = load_verified(model)
    store = connect(state) if state is not None else None
    before = _previous_run(previous, store, loaded.version)
    rejected = quarantine or current.with_name(f"{current.stem}.quarantine.csv")
    with progress("monitoring", total=row_count(current)) as shown:
        report = monitor_file(
            loaded,
            current,
            settings,
            outcomes=outcomes,
            scores=scores,
            quarantine=rejected,
            previous=before,
            unseen_inputs=unseen_categories.value,
            chunk_rows=chunk_rows,
            on_chunk=shown.advance,
            bank=bank_input(loaded.path, macro),
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
    if store is not None:
        remember(store, report["model_version"], report["status"], report["portfolio"]["current"])
    # A book that could (almost) not be read is bad input, whatever its figures say: exit code 2.
    refuse_unusable(
        FileReport.from_dict(report["gate"]),
        quarantine_limit(max_quarantined_share),
        str(current),
        quarantine=rejected,
    )
    if report["status"] == "act":
        raise typer.Exit(1)


def _previous_run(path: Path | None, store: Engine | None, version: str) -> dict | None:
    """The previous run's report (``--previous``), or its figures in the state store, or None."""
    if path is not None:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise InputError(f"{path}: cannot read the previous report: {error}") from None
    if store is not None:
        from crm_modes.state.monitoring_runs import latest

        return latest(store, version)
    return None
