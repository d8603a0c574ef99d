"""The ``crm-modes`` command line: thin wrappers over the library, with progress and summaries."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from crm_modes import __version__
from crm_modes.reports import (
    cross_validation_table,
    policy_table,
    print_score_report,
    training_table,
    validation_table,
)

app = typer.Typer(
    name="crm-modes",
    help="Relationship modes, churn and default risk for project finance and corporate lending.",
    no_args_is_help=True,
    add_completion=False,
)
# soft_wrap: messages stay on one line whatever the terminal width, so they can be searched.
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

EXIT_BAD_INPUT = 2

#: The same option on every command; applied before numpy and scikit-learn load (models/threads.py).
Threads = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="Threads for the OpenMP and BLAS pools; idle threads sleep. 0: every CPU this process "
        "may use (affinity and cgroup quota). Default: $OMP_NUM_THREADS, else 1 (fastest and "
        "collapse-free on shared machines, as measured; see the README).",
    ),
]


def _threads(threads: int | None) -> int:
    from crm_modes.models.threads import configure_threads

    return configure_threads(threads)


def _version(value: bool) -> None:
    if value:
        console.print(f"crm-modes {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Relationship modes, churn and default risk for project finance and corporate lending."""


def _progress(label: str) -> Progress:
    """A transient rows-done progress bar for long jobs."""
    return Progress(
        SpinnerColumn(),
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _fail(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(EXIT_BAD_INPUT)


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Where to write the book: .csv or .parquet.")],
    rows: Annotated[int, typer.Option(min=1, help="Number of client-facility snapshots.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same book.")] = 42,
    threads: Threads = None,
) -> None:
    """Simulate a synthetic loan book and write it atomically."""
    _threads(threads)
    from crm_modes.data.generator import generate_book
    from crm_modes.data.io import table_format, write_table

    try:
        table_format(out)
    except ValueError as error:
        raise _fail(str(error)) from None
    started = time.perf_counter()
    with console.status(f"simulating {rows:,} snapshots"):
        book = generate_book(rows, seed)
        write_table(book, out)
    console.print(
        f"wrote {len(book):,} rows, {book['facility_id'].nunique():,} facilities, "
        f"{book['client_id'].nunique():,} clients to {out} in {time.perf_counter() - started:.1f} s"
    )


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="Table to check: .csv or .parquet.")],
    quarantine: Annotated[
        Path | None, typer.Option(help="Write rejected rows with their reasons here (.csv or .parquet).")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Write the valid, typed rows here.")] = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows read at a time; bounds memory.")] = 100_000,
    threads: Threads = None,
) -> None:
    """Check a table against the schema; quarantine bad rows; print a reconciled summary."""
    _threads(threads)
    from crm_modes.data.check import check_file
    from crm_modes.data.io import TableReadError
    from crm_modes.data.validation import TableSchemaError

    progress = _progress("validating")
    try:
        with progress:
            task = progress.add_task("rows", total=None)
            report, summary = check_file(
                path,
                quarantine=quarantine,
                output=output,
                chunk_rows=chunk_rows,
                on_chunk=lambda n: progress.advance(task, n),
            )
    except (TableReadError, TableSchemaError, ValueError) as error:
        raise _fail(str(error)) from None

    console.print(validation_table(path, report, summary, quarantine))
    console.print(
        "rows in = valid + quarantined: "
        f"{report.rows_in:,} = {report.rows_valid:,} + {report.rows_quarantined:,}"
    )


def _load_training_config(path: Path):
    from crm_modes.training.config import load_training_config

    try:
        return load_training_config(path)
    except ValueError as error:
        raise _fail(str(error)) from None


@app.command()
def train(
    config: Annotated[Path, typer.Option(help="Training configuration (YAML), e.g. configs/train.yaml.")],
    threads: Threads = None,
) -> None:
    """Train, calibrate, evaluate, log to MLflow and register every configured model as challenger."""
    _threads(threads)
    from crm_modes.training.run import train as run_training
    from crm_modes.training.tracking import quiet_environment

    quiet_environment()
    settings = _load_training_config(config)
    started = time.perf_counter()
    with console.status("training") as status:
        try:
            report = run_training(settings, progress=lambda message: status.update(message))
        except ValueError as error:
            raise _fail(str(error)) from None
    console.print(f"training run {report.run_id} finished in {time.perf_counter() - started:.0f} s")
    console.print(training_table(report))
    console.print(
        "benchmark: logistic regression on the same features; oracle: the simulation's true probabilities "
        "(churn, PD) or, for the mode model, the model scored against the noiseless policy mode."
    )
    if report.advisor_version is not None:
        console.print(
            f"advisor bundle registered as {settings.advisor.registered_name} v{report.advisor_version}"
        )
    console.print(f"registered as @challenger. Next: crm-modes promote --config {config}; browse: mlflow ui")


@app.command()
def promote(
    config: Annotated[Path, typer.Option(help="Training configuration the challengers were trained with.")],
    model: Annotated[
        list[str] | None, typer.Option(help="Model(s) from the configuration; default: all of them.")
    ] = None,
    rollback: Annotated[bool, typer.Option(help="Put the previous champion back instead.")] = False,
    threads: Threads = None,
) -> None:
    """Move @champion to the challenger if it passes every gate; or roll back to the previous champion."""
    _threads(threads)
    from crm_modes.training.promote import PromotionConflictError, PromotionRefusedError
    from crm_modes.training.promote import promote as run_promotion
    from crm_modes.training.promote import rollback as run_rollback
    from crm_modes.training.tracking import quiet_environment

    quiet_environment()
    settings = _load_training_config(config)
    if rollback:
        try:
            moves = run_rollback(settings, model)
        except ValueError as error:
            raise _fail(str(error)) from None
        for name, was, now in moves:
            console.print(f"{name}: champion rolled back from v{was} to v{now}")
        return
    try:
        with console.status("scoring challengers and champions on the evaluation rows"):
            decisions = run_promotion(settings, model)
    except PromotionRefusedError as refused:
        for decision in refused.decisions:
            status = "[red]refused[/]" if decision.failures else "passed (not promoted: another model failed)"
            errors.print(f"{decision.registered_name} v{decision.challenger}: {status}", highlight=False)
            for failure in decision.failures:
                errors.print(f"  - {failure}", highlight=False)
        raise typer.Exit(1) from None
    except PromotionConflictError as conflict:
        errors.print(f"promotion stopped: {conflict}", highlight=False)
        raise typer.Exit(1) from None
    except ValueError as error:
        raise _fail(str(error)) from None
    for decision in decisions:
        if decision.note:
            console.print(f"{decision.registered_name} v{decision.challenger}: {decision.note}")
            continue
        before = f" (replaces v{decision.champion_before})" if decision.champion_before else ""
        figures = ", ".join(f"{key} {value:.4f}" for key, value in decision.challenger_metrics.items())
        if decision.components:
            figures = "bundles " + ", ".join(
                f"{name} v{version}" for name, version in decision.components.items()
            )
            if decision.challenger_metrics:
                figures += "; value policy " + ", ".join(
                    f"{key} {value:,.1f}m" for key, value in decision.challenger_metrics.items()
                )
        console.print(
            f"{decision.registered_name} v{decision.challenger} is now @champion{before}: {figures}"
        )


@app.command()
def evaluate(
    config: Annotated[Path, typer.Option(help="Training configuration (YAML).")],
    cv: Annotated[int, typer.Option("--cv", min=2, help="Number of folds K.")] = 5,
    repeats: Annotated[
        int, typer.Option(min=1, help="How many times to repeat K-fold with new shuffles.")
    ] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the fold assignment.")] = 0,
    threads: Threads = None,
) -> None:
    """Repeated stratified K-fold cross-validation of the configured models and their benchmark."""
    _threads(threads)
    import mlflow

    from crm_modes.training.cross_validation import cross_validate
    from crm_modes.training.data_source import load_training_table
    from crm_modes.training.tracking import log_cross_validation, quiet_environment

    quiet_environment()
    settings = _load_training_config(config)
    started = time.perf_counter()
    try:
        with console.status("cross-validating") as status:
            table = load_training_table(settings.data).table
            results = cross_validate(
                settings, table, folds=cv, repeats=repeats, seed=seed, progress=lambda m: status.update(m)
            )
            mlflow.set_experiment(settings.mlflow.experiment)
            run_id = log_cross_validation(
                settings.source_path.name if settings.source_path else "config.yaml",
                settings.source_text,
                results,
                folds=cv,
                repeats=repeats,
            )
    except ValueError as error:
        raise _fail(str(error)) from None
    console.print(
        cross_validation_table(results, folds=cv, repeats=repeats, seconds=time.perf_counter() - started)
    )
    console.print(f"logged to MLflow run {run_id}")


@app.command("policy-report")
def policy_report(
    config: Annotated[Path, typer.Option(help="Training configuration the bundle was trained with.")],
    model: Annotated[
        str | None,
        typer.Option(help="Bundle to judge; default: models:/<advisor registered name>@challenger."),
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write every figure here.")] = None,
    threads: Threads = None,
) -> None:
    """Value of the mode policies on the evaluation rows: true (synthetic book) and doubly robust."""
    _threads(threads)
    import json

    from crm_modes.training.data_source import load_training_table
    from crm_modes.training.policy_report import judge_bundle, log_report
    from crm_modes.training.tracking import quiet_environment

    quiet_environment()
    settings = _load_training_config(config)
    if settings.advisor is None:
        raise _fail(f"{config}: has no advisor section; the policy report judges the advisor bundle")
    uri = model or f"models:/{settings.advisor.registered_name}@challenger"
    try:
        with console.status("scoring the evaluation rows with the bundle"):
            report = judge_bundle(settings, uri, load_training_table(settings.data).table)
            run_id = log_report(report, settings.mlflow.experiment, uri)
    except ValueError as error:
        raise _fail(str(error)) from None
    console.print(policy_table(report, uri))
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2))
        console.print(f"wrote {json_path}")
    console.print(f"logged to MLflow run {run_id}")


@app.command("latest-month")
def latest_month(
    source: Annotated[Path, typer.Option("--input", help="Book to read (.csv or .parquet).")],
    out: Annotated[Path, typer.Option(help="Where to write the rows of the latest snapshot date.")],
    threads: Threads = None,
) -> None:
    """Copy the rows of the latest snapshot date: what a monthly scoring job scores."""
    _threads(threads)
    from crm_modes.data.io import TableReadError, latest_snapshot

    try:
        date, rows = latest_snapshot(source, out)
    except (TableReadError, ValueError) as error:
        raise _fail(str(error)) from None
    console.print(f"wrote {rows:,} rows of snapshot {date} to {out}")


@app.command()
def score(
    model: Annotated[str, typer.Option(help="Model URI, e.g. models:/crm-advisor@champion.")],
    source: Annotated[Path, typer.Option("--input", help="Table to score (.csv or .parquet).")],
    output: Annotated[Path, typer.Option(help="Where to write the scores (.csv or .parquet).")],
    quarantine: Annotated[
        Path | None, typer.Option(help="Rejected rows with reasons (default: <output>.quarantine.<ext>).")
    ] = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows scored at a time; bounds memory.")] = 50_000,
    engine: Annotated[str, typer.Option(help="inprocess (pandas, chunked) or spark.")] = "inprocess",
    spark_master: Annotated[str, typer.Option(help="Spark master URL for --engine spark.")] = "local[*]",
    spark_task_threads: Annotated[
        int, typer.Option(min=1, help="Threads each Spark task's pools may use (one task runs per core).")
    ] = 1,
    threads: Threads = None,
) -> None:
    """Score a table with the advisor: scores, alerts and reasons, every row reconciled."""
    _threads(threads)
    from crm_modes.data.io import TableReadError
    from crm_modes.data.validation import TableSchemaError
    from crm_modes.training.tracking import quiet_environment

    quiet_environment()
    if engine not in ("inprocess", "spark"):
        raise _fail(f"--engine must be inprocess or spark, got {engine!r}")
    started = time.perf_counter()
    try:
        if engine == "spark":
            from crm_modes.serve.spark import score_with_spark

            with console.status(f"scoring on Spark ({spark_master})"):
                spark_report = score_with_spark(
                    model, source, output, master=spark_master, task_threads=spark_task_threads
                )
            console.print(
                f"scored {spark_report.rows_scored:,} rows with {spark_report.model_version} on Spark "
                f"in {time.perf_counter() - started:.1f} s -> {output}"
            )
            return
        report = _score_in_process(model, source, output, quarantine, chunk_rows)
    except (TableReadError, TableSchemaError, ValueError) as error:
        raise _fail(str(error)) from None
    print_score_report(console, report, time.perf_counter() - started)


def _score_in_process(model: str, source: Path, output: Path, quarantine: Path | None, chunk_rows: int):
    from crm_modes.serve.batch import score_file
    from crm_modes.serve.registry import load_model

    with console.status(f"loading {model}"):
        loaded = load_model(model)
    total = _row_count(source)
    progress = _progress("scoring")
    with progress:
        task = progress.add_task("rows", total=total)
        return score_file(
            loaded,
            source,
            output,
            quarantine=quarantine,
            chunk_rows=chunk_rows,
            on_chunk=lambda n: progress.advance(task, n),
        )


def _row_count(source: Path) -> int | None:
    """Rows in a Parquet file from its metadata; None for CSV (unknown without reading it)."""
    if source.suffix.lower() != ".parquet" or not source.exists():
        return None
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(source).metadata.num_rows
    except Exception:  # an unreadable file is reported by the reader, with its own message
        return None


@app.command()
def info(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    threads: Threads = None,
) -> None:
    """The versions, the CPUs this process may use and its thread pools, as the libraries report them."""
    configured = _threads(threads)  # first: the wait policy must be set before OpenMP loads
    import json

    import numpy  # noqa: F401 - loads BLAS
    import sklearn
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: F401 - loads OpenMP

    from crm_modes.models.threads import WAIT_POLICY, available_cpus, thread_pools

    _threads(threads)  # limit the pools that the imports above just loaded
    report = {
        "crm_modes": __version__,
        "scikit_learn": sklearn.__version__,
        "available_cpus": available_cpus(),
        "threads": configured,
        "omp_wait_policy": os.environ.get(WAIT_POLICY),
        "thread_pools": thread_pools(),
    }
    if as_json:
        console.print_json(json.dumps(report))
        return
    for key, value in report.items():
        console.print(f"{key}: {value}")


@app.command()
def serve(
    model: Annotated[str, typer.Option(help="Model URI to serve.")] = "models:/crm-advisor@champion",
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    threads: Annotated[
        int, typer.Option(min=1, help="Threads per worker for the models' OpenMP and BLAS pools.")
    ] = 1,
    max_records: Annotated[
        int, typer.Option(min=1, max=10_000, help="Most records one request may carry (413 above).")
    ] = 10_000,
    max_body_bytes: Annotated[
        int | None,
        typer.Option(min=1, help="Largest request body in bytes (413 above); default: 4 KiB per record."),
    ] = None,
) -> None:
    """Serve the advisor over REST: POST /v1/score, GET /health, /ready, /version, POST /admin/reload."""
    _threads(threads)
    import uvicorn

    from crm_modes.serve.api import Limits, create_app
    from crm_modes.training.tracking import quiet_environment

    quiet_environment()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with console.status(f"loading {model}"):
        app = create_app(model, limits=Limits(max_records=max_records, max_body_bytes=max_body_bytes))
    console.print(f"serving {app.state.holder.model.version} on http://{host}:{port}")
    uvicorn.run(app, host=host, port=port, log_level="warning")


if __name__ == "__main__":  # pragma: no cover - `python -m crm_modes.cli`
    app()
