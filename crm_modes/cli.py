"""The ``crm-modes`` command line: thin wrappers over the library, with progress and summaries."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from crm_modes import __version__
from crm_modes.data.errors import InputError
from crm_modes.progress import JobProgress
from crm_modes.reports import (
    cross_validation_table,
    policy_table,
    print_monitoring_report,
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

#: The state store of every command that uses one.
State = Annotated[
    str | None,
    typer.Option(
        "--state",
        help="State store URL: sqlite:///PATH or postgresql://USER@HOST/DB "
        "(default: $CRM_MODES_STATE_URL, else sqlite:///crm_state.db).",
    ),
]

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


@contextmanager
def _model_stack() -> Iterator[None]:
    """The block in which a command imports the model stack and loads what it keeps to the end:
    skops imported first, the cyclic collector paused, and what the block built frozen out of
    later full collections (:func:`crm_modes.collector.long_lived`).

    When skops is imported it names every type it trusts by looking the type's module up
    among all the modules loaded so far; after MLflow and the rest of the model stack
    (thousands of modules) that lookup is what takes the time. Imported first, `crm-modes
    score` of 10,000 rows took 7.3-8.0 s (median 7.9) against 8.0-9.0 s (8.3), five runs each.
    """
    from crm_modes.collector import long_lived

    with long_lived():
        import skops.io  # noqa: F401 - imported for its side effect on import order

        yield


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


def _progress(label: str, *, total: int | None = None, unit: str = "rows") -> JobProgress:
    """A long job's progress: a bar on a terminal, a plain line at most every 10 s anywhere else."""
    return JobProgress(console, label, total=total, unit=unit)


def _fail(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(EXIT_BAD_INPUT)


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Where to write the book: .csv or .parquet.")],
    rows: Annotated[int, typer.Option(min=1, help="Number of client-facility snapshots.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same book.")] = 42,
    scenario: Annotated[
        str,
        typer.Option(
            help="How the last 12 months depart from the book the seed makes: none, baseline (an "
            "ordinary economy), downturn or industry_shock (the README describes each); rows before "
            "the departure are the same whatever the scenario."
        ),
    ] = "none",
    threads: Threads = None,
) -> None:
    """Simulate a synthetic loan book and write it atomically."""
    _threads(threads)
    from crm_modes.data.generator import generate_book
    from crm_modes.data.io import table_format, write_table
    from crm_modes.data.scenarios import scenario_named

    try:
        table_format(out)
        scenario_named(scenario)
    except InputError as error:
        raise _fail(str(error)) from None
    started = time.perf_counter()
    with console.status(f"simulating {rows:,} snapshots ({scenario})"):
        book = generate_book(rows, seed, scenario=scenario)
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
    config: Annotated[
        Path | None,
        typer.Option(help="A table of one's own: check it against this configuration's table profile."),
    ] = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows read at a time; bounds memory.")] = 100_000,
    threads: Threads = None,
) -> None:
    """Check a table against the schema (or a configuration's table profile); quarantine bad rows."""
    _threads(threads)
    from crm_modes.data.check import check_file

    gate = None
    if config is not None:
        from crm_modes.training.data_source import configured_profile

        settings = _load_training_config(config)
        if settings.data.schema_table:
            raise _fail(f"{config}: its table follows the project's schema; validate it without --config")
        gate = configured_profile(settings).gate()
    try:
        with _progress("validating", total=_row_count(path)) as progress:
            report, summary = check_file(
                path,
                quarantine=quarantine,
                output=output,
                chunk_rows=chunk_rows,
                gate=gate,
                on_chunk=progress.advance,
            )
    except InputError as error:
        raise _fail(str(error)) from None

    console.print(validation_table(path, report, summary, quarantine))
    console.print(
        "rows in = valid + quarantined: "
        f"{report.rows_in:,} = {report.rows_valid:,} + {report.rows_quarantined:,}"
    )


@app.command()
def profile(
    config: Annotated[Path, typer.Option(help="Training configuration of a table of one's own.")],
    out: Annotated[Path, typer.Option(help="Where to write the profile (YAML) to review and commit.")],
    margin: Annotated[
        float,
        typer.Option(min=0.0, help="Widen each observed range by this share of its width on each side."),
    ] = 0.1,
    threads: Threads = None,
) -> None:
    """Infer what each configured column of the table may hold: kind, range, categories, nullability."""
    _threads(threads)
    from crm_modes.data.io import atomic_text, read_table
    from crm_modes.data.profile import infer_profile
    from crm_modes.training.data_source import profile_uses

    settings = _load_training_config(config)
    if settings.data.path is None or settings.data.schema_table:
        raise _fail(f"{config}: profiles are for tables of one's own (data.path with schema_table: false)")
    uses, numeric = profile_uses(settings)
    table = read_table(settings.data.path)
    found = infer_profile(table, uses, numeric=numeric, source=Path(settings.data.path).name, margin=margin)
    atomic_text(out, found.to_yaml())
    console.print(f"profiled {len(found.columns)} columns of {found.rows:,} rows -> {out}")
    for note in found.notes:
        console.print(f"  note: {note}", highlight=False)
    console.print(f"Review it, then set data.profile: {out} in {config}")


def _print_gate(rows_in: int, quarantined: int, problems: dict[str, int], written: Path | None) -> None:
    """The gate's reconciled count, the problems by column and where the rejected rows are."""
    line = f"rows in = used + quarantined: {rows_in:,} = {rows_in - quarantined:,} + {quarantined:,}"
    console.print(line + (f" -> {written}" if written is not None else ""))
    if problems:
        listed = ", ".join(f"{column} {count:,}" for column, count in sorted(problems.items()))
        console.print(f"quarantined for: {listed}", highlight=False)


def _load_training_config(path: Path):
    from crm_modes.training.config import load_training_config

    try:
        return load_training_config(path)
    except InputError as error:
        raise _fail(str(error)) from None


@app.command()
def train(
    config: Annotated[Path, typer.Option(help="Training configuration (YAML), e.g. configs/train.yaml.")],
    threads: Threads = None,
) -> None:
    """Train, calibrate, evaluate, log to MLflow and register every configured model as challenger."""
    _threads(threads)
    with _model_stack():
        from crm_modes.training.run import train as run_training
        from crm_modes.training.tracking import quiet_environment

        quiet_environment()
    settings = _load_training_config(config)
    started = time.perf_counter()
    with _progress("training", unit="steps") as progress:
        try:
            report = run_training(settings, progress=progress.stage)
        except InputError as error:
            raise _fail(str(error)) from None
    console.print(f"training run {report.run_id} finished in {time.perf_counter() - started:.0f} s")
    _print_gate(report.rows_in, report.rows_quarantined, report.problems, report.quarantine)
    console.print(training_table(report))
    note = "benchmark: logistic regression on the same features"
    if any(outcome.oracle_metrics for outcome in report.outcomes):
        note += (
            "; oracle: the simulation's true probabilities (churn, PD) or, for the mode model, the model "
            "scored against the noiseless policy mode"
        )
    console.print(note + ".")
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
    with _model_stack():
        from crm_modes.training.promote import PromotionConflictError, PromotionRefusedError
        from crm_modes.training.promote import promote as run_promotion
        from crm_modes.training.promote import rollback as run_rollback
        from crm_modes.training.tracking import quiet_environment

        quiet_environment()
    settings = _load_training_config(config)
    if rollback:
        try:
            moves = run_rollback(settings, model)
        except InputError as error:
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
    except InputError as error:
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
    """Repeated stratified K-fold cross-validation of the configured models and their benchmark.

    Each fold's figures reach MLflow as the fold finishes: a run stopped halfway keeps its folds.
    """
    _threads(threads)
    with _model_stack():
        import mlflow

        from crm_modes.training.cross_validation import cross_validate
        from crm_modes.training.data_source import load_training_table
        from crm_modes.training.run import write_quarantine
        from crm_modes.training.tracking import evaluation_run, quiet_environment

        quiet_environment()
    settings = _load_training_config(config)
    started = time.perf_counter()
    data = load_training_table(settings)
    _print_gate(data.rows_in, data.rows_quarantined, data.problems, write_quarantine(settings, data))
    binary = sum(model.kind == "binary" for model in settings.models.values())
    mlflow.set_experiment(settings.mlflow.experiment)
    name = settings.source_path.name if settings.source_path else "config.yaml"
    with (
        evaluation_run(name, settings.source_text, folds=cv, repeats=repeats) as log_fold,
        _progress("cross-validating", total=binary * cv * repeats, unit="folds") as progress,
    ):

        def fold_done(model: str, figures: dict[str, float]) -> None:
            log_fold(model, figures)
            progress.advance(
                1, f"{model}: repeat {int(figures['repeat']) + 1}, fold {int(figures['fold']) + 1}"
            )

        results = cross_validate(
            settings, data.table, folds=cv, repeats=repeats, seed=seed, on_fold=fold_done
        )
        run_id = log_fold.run_id
        log_fold.summary(results)
    console.print(
        cross_validation_table(results, folds=cv, repeats=repeats, seconds=time.perf_counter() - started)
    )
    console.print(f"logged to MLflow run {run_id}")


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
    _threads(threads)
    with _model_stack():
        from crm_modes.data.io import atomic_text
        from crm_modes.monitor.config import load_monitoring_config
        from crm_modes.monitor.html import render
        from crm_modes.monitor.run import json_safe, monitor_file
        from crm_modes.training.tracking import quiet_environment

        quiet_environment()
    started = time.perf_counter()
    try:
        settings = load_monitoring_config(config)
        loaded = _load(model)
        with _progress("monitoring", total=_row_count(current)) as progress:
            report = monitor_file(
                loaded,
                current,
                settings,
                outcomes=outcomes,
                scores=scores,
                chunk_rows=chunk_rows,
                on_chunk=progress.advance,
            )
        report = json_safe(report)
        page = render(report, settings.model_dump())
        for path, text in ((html_path, page), (json_path, json.dumps(report, indent=1))):
            if path is not None:
                atomic_text(path, text)
    except InputError as error:
        raise _fail(str(error)) from None
    print_monitoring_report(console, report, time.perf_counter() - started)
    for label, path in (("HTML report", html_path), ("JSON", json_path)):
        if path is not None:
            console.print(f"{label}: {path}")
    if mlflow_log:
        from crm_modes.monitor.tracking import EXPERIMENT, log_report

        run_id = log_report(report, page)
        console.print(f"logged on MLflow run {run_id} (experiment {EXPERIMENT})")
    if report["status"] == "act":
        raise typer.Exit(1)


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
    with _model_stack():
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
            report = judge_bundle(settings, uri, load_training_table(settings).table)
            run_id = log_report(report, settings.mlflow.experiment, uri)
    except InputError as error:
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
    from crm_modes.data.io import latest_snapshot

    try:
        date, rows = latest_snapshot(source, out)
    except InputError as error:
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
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Rows scored at a time (on Spark, per Arrow batch); bounds memory.")
    ] = 50_000,
    engine: Annotated[str, typer.Option(help="inprocess (pandas, chunked) or spark.")] = "inprocess",
    spark_master: Annotated[str, typer.Option(help="Spark master URL for --engine spark.")] = "local[*]",
    spark_task_threads: Annotated[
        int, typer.Option(min=1, help="Threads each Spark task's pools may use (one task runs per core).")
    ] = 1,
    state: State = None,
    policy: Annotated[
        Path | None,
        typer.Option(help="Alert policy for recording (default: the one inside the bundle)."),
    ] = None,
    record_scores: Annotated[
        bool,
        typer.Option(
            "--record/--no-record",
            help="Record the scores in the state store (--state, $CRM_MODES_STATE_URL or crm_state.db) "
            "and add alert_status and notify to the output.",
        ),
    ] = False,
    threads: Threads = None,
) -> None:
    """Score a table with the advisor: scores, alerts and reasons, every row reconciled."""
    _threads(threads)
    with _model_stack():
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
                    model,
                    source,
                    output,
                    quarantine=quarantine,
                    master=spark_master,
                    task_threads=spark_task_threads,
                    chunk_rows=chunk_rows,
                )
            console.print(
                f"scored {spark_report.rows_scored:,} rows with {spark_report.model_version} on Spark "
                f"in {spark_report.pieces} piece{'s' if spark_report.pieces != 1 else ''} "
                f"in {time.perf_counter() - started:.1f} s ({spark_report.seconds_after_session:.1f} s "
                f"after the session started) -> {output}"
            )
            console.print(
                f"rows in = scored + quarantined: {spark_report.rows_in:,} = {spark_report.rows_scored:,} + "
                f"{spark_report.rows_quarantined:,} -> {spark_report.quarantine}"
            )
            if record_scores or state:
                from crm_modes.serve.registry import fetch

                bundled = fetch(model)[2] / "artifacts" / "alert_policy.yaml"
                _record(output, state, policy or bundled, annotate=output)
            return
        report, loaded = _score_in_process(
            model, source, output, quarantine, chunk_rows, recording=bool(record_scores or state)
        )
    except InputError as error:
        raise _fail(str(error)) from None
    print_score_report(console, report, time.perf_counter() - started)
    if record_scores or state:
        _record(output, state, policy or loaded.path / "artifacts" / "alert_policy.yaml", annotate=output)


def _record(
    scores: Path, state: str | None, policy_path: Path, *, annotate: Path | None, force: bool = False
):
    """Record ``scores`` in the state store, print what happened, optionally annotate a copy."""
    from crm_modes.models.alerts import load_policy
    from crm_modes.state import record
    from crm_modes.state.store import connect, state_url

    try:
        policy = load_policy(policy_path)
        if policy.notifications is None:
            raise InputError(
                f"{policy_path} has no `notifications` section (a bundle registered before it existed?); "
                "pass --policy configs/alert_policy.yaml or register the bundle again"
            )
        engine = connect(state)
        with _progress("recording") as progress:
            report = record.record_scores(engine, scores, policy, force=force, on_chunk=progress.advance)
        if annotate is not None:
            record.annotate(engine, scores, annotate, report)
    except record.SnapshotBusyError as busy:
        errors.print(f"not recorded: {busy}", highlight=False)
        raise typer.Exit(1) from None
    except (InputError, KeyError) as error:
        raise _fail(str(error)) from None
    console.print(
        f"recorded run {report.run_id} in {state_url(state).split('@')[-1]}: "
        f"{report.rows_recorded:,} decisions, {report.notifications:,} notifications "
        f"({', '.join(f'{k} {v:,}' for k, v in sorted(report.events.items())) or 'no alert changes'})"
    )
    for snapshot, reason in report.skipped.items():
        console.print(f"snapshot {snapshot}: {reason}")
    counts = (report.rows_in, report.rows_recorded, report.rows_already, report.rows_quarantined)
    console.print(
        "rows in = recorded + already recorded + quarantined: {:,} = {:,} + {:,} + {:,}".format(*counts)
        + "".join(f"; {reason}: {count:,}" for reason, count in report.quarantine_reasons.items())
    )
    if annotate is not None:
        console.print(f"alert_status and notify added to {annotate}")
    return report


@app.command("record")
def record_command(
    scores: Annotated[
        Path, typer.Argument(help="Scores to record: `crm-modes score` output (file or Spark folder).")
    ],
    state: State = None,
    policy: Annotated[
        Path, typer.Option(help="Alert policy with the notification topics (the bundle's own, normally).")
    ] = Path("configs/alert_policy.yaml"),
    output: Annotated[
        Path | None, typer.Option(help="Also write the scores with alert_status and notify here.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Record a snapshot older than one already recorded.")] = False,
) -> None:
    """Record scored decisions and move every alert through its lifecycle (idempotent per snapshot)."""
    if not scores.exists():
        raise _fail(f"{scores}: no such file or folder")
    if not policy.exists():
        raise _fail(f"{policy}: no such policy file; pass --policy")
    _record(scores, state, policy, annotate=output, force=force)


alerts_app = typer.Typer(help="Alerts in the state store: list and acknowledge.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("list")
def alerts_list(
    status: Annotated[
        str | None, typer.Option(help="open, new, ongoing, escalated, acknowledged or resolved.")
    ] = "open",
    output_format: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many, newest first.")] = None,
    state: State = None,
) -> None:
    """List alerts, newest first."""
    from crm_modes.reports import alerts_table
    from crm_modes.state.queries import list_alerts
    from crm_modes.state.store import connect

    if output_format not in ("table", "json", "csv"):
        raise _fail(f"--format must be table, json or csv, got {output_format!r}")
    try:
        found = list_alerts(connect(state), status=status, limit=limit)
    except InputError as error:
        raise _fail(str(error)) from None
    _print_rows(found, output_format, lambda rows: alerts_table(rows, status))


@alerts_app.command("ack")
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(help="The alert's id (`crm-modes alerts list`).")],
    by: Annotated[str, typer.Option(help="Who acknowledges it.")],
    note: Annotated[str | None, typer.Option(help="Why, or what was agreed.")] = None,
    state: State = None,
) -> None:
    """Acknowledge an open alert: it is not notified again until it escalates."""
    from crm_modes.state.queries import acknowledge
    from crm_modes.state.store import connect

    try:
        alert = acknowledge(connect(state), alert_id, by=by, note=note)
    except (InputError, KeyError) as error:
        raise _fail(str(error).strip("'\"")) from None
    console.print(
        f"alert {alert_id} ({alert['facility_id']} {alert['code']}) acknowledged by {by}", highlight=False
    )


@app.command()
def history(
    facility_id: Annotated[str, typer.Argument(help="The facility.")],
    output_format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    state: State = None,
) -> None:
    """A facility's modes, grades and alerts over time, from the state store."""
    from crm_modes.reports import history_tables
    from crm_modes.state.queries import history as facility_history
    from crm_modes.state.store import connect

    found = facility_history(connect(state), facility_id)
    if found is None:
        raise _fail(f"facility {facility_id!r} was never recorded in this state store")
    if output_format == "json":
        console.print_json(json.dumps(found, default=str))
        return
    for table in history_tables(found):
        console.print(table)


def _print_rows(rows: list[dict], output_format: str, table) -> None:
    if output_format == "json":
        console.print_json(json.dumps(rows, default=str))
    elif output_format == "csv":
        import csv
        import sys

        if rows:
            writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        console.print(table(rows))


def _score_in_process(
    model: str, source: Path, output: Path, quarantine: Path | None, chunk_rows: int, *, recording: bool
):
    loaded = _load(model)
    from crm_modes.serve.batch import score_file
    from crm_modes.serve.registry import is_advisor

    if recording and not is_advisor(loaded.path):
        raise InputError(
            f"{model} is a single model: only the advisor's decisions and alerts are recorded; "
            "drop --record and --state"
        )
    total = _row_count(source)
    with _progress("scoring", total=total) as progress:
        report = score_file(
            loaded,
            source,
            output,
            quarantine=quarantine,
            chunk_rows=chunk_rows,
            on_chunk=progress.advance,
        )
    return report, loaded


def _load(model: str):
    """The registered model ``model``, verified and loaded under a status line; what loading built
    is kept to the end, out of the collector's later full passes (:func:`crm_modes.collector.long_lived`)."""
    from crm_modes.collector import long_lived

    with console.status(f"loading {model}"), long_lived():
        from crm_modes.serve.registry import load_model

        return load_model(model)


def _row_count(source: Path) -> int | None:
    """Rows in a Parquet file from its metadata; None for CSV (unknown without reading it)."""
    if source.suffix.lower() != ".parquet" or not source.exists():
        return None
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(source).metadata.num_rows
    except Exception:  # an unreadable file is reported by the reader, with its own message
        return None


@app.command("config-schema")
def config_schema(
    kind: Annotated[
        str,
        typer.Argument(help="training, features, monitoring, alert-policy or economics."),
    ] = "training",
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Every key of every kind as the README's reference tables.")
    ] = False,
) -> None:
    """Print the JSON Schema of a kind of configuration file: every key, its type, default and meaning."""
    from crm_modes.config_reference import json_schema, kinds
    from crm_modes.config_reference import markdown as reference

    if markdown:
        print(reference())
        return
    if kind not in kinds():
        raise _fail(f"unknown kind {kind!r}; use one of {list(kinds())}")
    print(json_schema(kind))


@app.command()
def info(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    threads: Threads = None,
) -> None:
    """The versions, the CPUs this process may use and its thread pools, as the libraries report them."""
    configured = _threads(threads)  # first: the wait policy must be set before OpenMP loads
    import json

    import lightgbm  # loads LightGBM's OpenMP runtime
    import numpy  # noqa: F401 - loads BLAS
    import sklearn
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: F401 - loads OpenMP

    from crm_modes.models.threads import WAIT_POLICY, available_cpus, thread_pools

    _threads(threads)  # limit the pools that the imports above just loaded
    report = {
        "crm_modes": __version__,
        "scikit_learn": sklearn.__version__,
        "lightgbm": lightgbm.__version__,
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
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes, each with its own copy of the model; one per core the service may "
            "use. A reload reaches every worker.",
        ),
    ] = 1,
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
    state: State = None,
) -> None:
    """Serve the advisor over REST: scoring, health, version, reload, facility history and alerts."""
    _threads(threads)
    import tempfile

    import uvicorn

    from crm_modes.serve.api import SERVICE_VARIABLE, Limits, ServiceSettings, create_app
    from crm_modes.serve.registry import resolve
    from crm_modes.training.tracking import quiet_environment

    quiet_environment()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    limits = Limits(max_records=max_records, max_body_bytes=max_body_bytes)
    if workers == 1:
        with console.status(f"loading {model}"):
            app = create_app(model, limits=limits, state=state)
        console.print(f"serving {app.state.holder.model.version} on http://{host}:{port}")
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    pinned, version = resolve(model)  # every worker starts with this very version
    with tempfile.TemporaryDirectory(prefix="crm-modes-serve-") as folder:
        settings = ServiceSettings(model, pinned, limits, state, str(Path(folder) / "reloaded.json"), threads)
        os.environ[SERVICE_VARIABLE] = settings.to_environment()
        console.print(f"serving {version} on http://{host}:{port} with {workers} workers")
        uvicorn.run(
            "crm_modes.serve.api:app_from_environment",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level="warning",
        )


def run() -> None:
    """The ``crm-modes`` console script: the application, with one rule for errors.

    A problem with the user's input (:class:`~crm_modes.data.errors.InputError`), wherever it is
    raised, is a message and exit code 2; anything else is a fault of the program and keeps its
    traceback (exit code 1).
    """
    try:
        app()
    except InputError as error:
        raise SystemExit(_fail(str(error)).exit_code) from None


if __name__ == "__main__":  # pragma: no cover - `python -m crm_modes.cli`
    run()
