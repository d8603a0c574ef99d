"""The ``crm-modes`` command line: thin wrappers over the library, with progress and summaries."""

from __future__ import annotations

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
from rich.table import Table

from crm_modes import __version__

app = typer.Typer(
    name="crm-modes",
    help="Relationship modes, churn and default risk for project finance and corporate lending.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
errors = Console(stderr=True)

EXIT_BAD_INPUT = 2


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


def _fail(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(EXIT_BAD_INPUT)


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Where to write the book: .csv or .parquet.")],
    rows: Annotated[int, typer.Option(min=1, help="Number of client-facility snapshots.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same book.")] = 42,
) -> None:
    """Simulate a synthetic loan book and write it atomically."""
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
) -> None:
    """Check a table against the schema; quarantine bad rows; print a reconciled summary."""
    from crm_modes.data.check import check_file
    from crm_modes.data.io import TableReadError
    from crm_modes.data.validation import TableSchemaError

    progress = Progress(
        SpinnerColumn(),
        TextColumn("validating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
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

    table = Table(title=f"validation of {path}", show_header=False)
    table.add_row("rows in", f"{report.rows_in:,}")
    table.add_row("rows valid", f"{report.rows_valid:,}")
    table.add_row(
        "rows quarantined", f"{report.rows_quarantined:,}" + (f" -> {quarantine}" if quarantine else "")
    )
    table.add_row("reconciles", "yes" if report.reconciles else "[bold red]NO[/]")
    for column_name, count in sorted(report.reasons.items(), key=lambda item: -item[1]):
        table.add_row(f"  problem in {column_name}", f"{count:,}")
    if report.extra_columns:
        table.add_row("extra columns (ignored)", ", ".join(report.extra_columns))
    if summary.first_snapshot is not None:
        table.add_row("snapshots", f"{summary.first_snapshot:%Y-%m-%d} to {summary.last_snapshot:%Y-%m-%d}")
    for label in ("default_12m", "churn_12m"):
        rate = summary.label_rate(label)
        if rate is not None:
            known, _ = summary.label_counts[label]
            table.add_row(f"{label} rate", f"{rate:.2%} of {known:,} rows with a known outcome")
    mix = summary.mode_mix()
    if mix:
        table.add_row("assigned mode mix", ", ".join(f"{mode} {share:.1%}" for mode, share in mix.items()))
    console.print(table)
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
) -> None:
    """Train, calibrate, evaluate, log to MLflow and register every configured model as challenger."""
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
    table = Table("model", "version", "rows train/cal/eval", "metric", "model", "benchmark", "oracle")
    for outcome in report.outcomes:
        keys = ("auc", "pr_auc", "ece", "brier") if "auc" in outcome.metrics else ("accuracy", "macro_f1")
        counts = outcome.counts
        for index, key in enumerate(keys):
            table.add_row(
                outcome.name if index == 0 else "",
                f"{outcome.registered_name} v{outcome.version}" if index == 0 else "",
                f"{counts['rows_train']:,}/{counts['rows_calibration']:,}/{counts['rows_evaluation']:,}"
                if index == 0
                else "",
                key,
                _figure(outcome.metrics, key),
                _figure(outcome.benchmark_metrics, key),
                _figure(outcome.oracle_metrics, key),
            )
    console.print(table)
    console.print(
        "benchmark: logistic regression on the same features; oracle: the simulation's true probabilities "
        "(churn, PD) or, for the mode model, the model scored against the noiseless policy mode."
    )
    console.print(f"registered as @challenger. Next: crm-modes promote --config {config}; browse: mlflow ui")


def _figure(metrics: dict[str, object], key: str) -> str:
    return f"{metrics[key]:.4f}" if key in metrics else "-"


@app.command()
def promote(
    config: Annotated[Path, typer.Option(help="Training configuration the challengers were trained with.")],
    model: Annotated[
        list[str] | None, typer.Option(help="Model(s) from the configuration; default: all of them.")
    ] = None,
    rollback: Annotated[bool, typer.Option(help="Put the previous champion back instead.")] = False,
) -> None:
    """Move @champion to the challenger if it passes every gate; or roll back to the previous champion."""
    from crm_modes.training.promote import (
        PromotionRefusedError,
    )
    from crm_modes.training.promote import (
        promote as run_promotion,
    )
    from crm_modes.training.promote import (
        rollback as run_rollback,
    )
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
    except ValueError as error:
        raise _fail(str(error)) from None
    for decision in decisions:
        if decision.note:
            console.print(f"{decision.registered_name} v{decision.challenger}: {decision.note}")
            continue
        before = f" (replaces v{decision.champion_before})" if decision.champion_before else ""
        figures = ", ".join(f"{key} {value:.4f}" for key, value in decision.challenger_metrics.items())
        console.print(
            f"{decision.registered_name} v{decision.challenger} is now @champion{before}: {figures}"
        )


if __name__ == "__main__":  # pragma: no cover - `python -m crm_modes.cli`
    app()
