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


if __name__ == "__main__":  # pragma: no cover - `python -m crm_modes.cli`
    app()
