"""Commands on tables: simulate a book, check a table through the gate, profile one, cut a month."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from crm_modes.cli.app import (
    MaxQuarantined,
    Threads,
    UnseenCategories,
    UnseenChoice,
    app,
    configure_threads,
    console,
    progress,
    quarantine_limit,
    row_count,
    training_config,
)
from crm_modes.cli.tables import validation_table
from crm_modes.shared.errors import InputError


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Where to write the book: .csv or .parquet.")],
    rows: Annotated[int, typer.Option(min=1, help="Number of client-facility snapshots.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same book.")] = 42,
    scenario: Annotated[
        str,
        typer.Option(
            help="How the last 12 months depart from the book the seed makes: none, baseline (an "
            "ordinary economy), downturn or industry_shock (the synthetic book's concept page describes "
            "each); rows before the departure are the same whatever the scenario."
        ),
    ] = "none",
    threads: Threads = None,
) -> None:
    """Simulate a synthetic loan book and write it atomically."""
    configure_threads(threads)
    from crm_modes.data.generator import generate_book
    from crm_modes.data.io import table_format, write_table
    from crm_modes.data.scenarios import scenario_named

    table_format(out)
    scenario_named(scenario)
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
    max_quarantined_share: MaxQuarantined = None,
    unseen_categories: UnseenCategories = UnseenChoice.score,
    threads: Threads = None,
) -> None:
    """Check a table against the schema (or a configuration's table profile); quarantine bad rows."""
    configure_threads(threads)
    from crm_modes.data.file_gate import check_file
    from crm_modes.data.gate import Gate

    gate, configured = Gate(unseen_inputs=unseen_categories.value), None
    if config is not None:
        from crm_modes.training.data_source import configured_profile

        settings = training_config(config)
        if settings.data.layout == "book":
            raise InputError(
                f"{config}: its table follows the project's schema; validate it without --config"
            )
        gate, configured = configured_profile(settings).gate(), settings.data.max_quarantined_share
    with progress("validating", total=row_count(path)) as shown:
        report, summary = check_file(
            path,
            quarantine=quarantine,
            output=output,
            chunk_rows=chunk_rows,
            gate=gate,
            book=config is None,
            max_quarantined_share=quarantine_limit(max_quarantined_share, configured),
            on_chunk=shown.advance,
        )
    console.print(validation_table(path, report, summary, quarantine))
    console.print(
        "rows in = valid + quarantined: "
        f"{report.rows_in:,} = {report.rows_valid:,} + {report.rows_quarantined:,}"
    )


@app.command()
def profile(
    config: Annotated[
        Path, typer.Option(help="Training configuration of a table of one's own, or of a bank's book.")
    ],
    out: Annotated[Path, typer.Option(help="Where to write the profile (YAML) to review and commit.")],
    margin: Annotated[
        float,
        typer.Option(min=0.0, help="Widen each observed range by this share of its width on each side."),
    ] = 0.1,
    threads: Threads = None,
) -> None:
    """Infer what each configured column of the table (or each input of a bank's book) may hold: kind,
    range, categories, nullability."""
    configure_threads(threads)
    from crm_modes.data.io import atomic_text, read_table
    from crm_modes.data.profile import infer_profile
    from crm_modes.training.data_source import binary_targets, profile_uses

    settings = training_config(config)
    contract = settings.data.book_contract()
    if settings.data.path is None or (settings.data.layout == "book" and contract is None):
        raise InputError(
            f"{config}: profiles are for tables of one's own (data.path with layout: own) and for a "
            "bank's book (data.path with data.book)"
        )
    table = read_table(settings.data.path)
    source = Path(settings.data.path).name
    if contract is not None:  # the inputs of a bank's book, as `crm-modes labels` wrote it
        from crm_modes.data.bank_book import infer_book_profile

        found = infer_book_profile(table, contract, source=source, margin=margin)
    else:
        uses, numeric = profile_uses(settings)
        found = infer_profile(
            table,
            uses,
            numeric=numeric,
            source=source,
            margin=margin,
            binary_targets=binary_targets(settings),
        )
    atomic_text(out, found.to_yaml())
    console.print(f"profiled {len(found.columns)} columns of {found.rows:,} rows -> {out}")
    for note in found.notes:
        console.print(f"  note: {note}", highlight=False)
    if settings.data.profile is not None and Path(settings.data.profile).resolve() == out.resolve():
        console.print(f"Review it: data.profile of {config} reads it")
        return
    # The key is read relative to the configuration file, so the hint says the path that way.
    relative = os.path.relpath(out.resolve(), config.resolve().parent)
    console.print(f"Review it, then set data.profile: {relative} in {config}")


@app.command("latest-month")
def latest_month(
    source: Annotated[Path, typer.Option("--input", help="Book to read (.csv or .parquet).")],
    out: Annotated[Path, typer.Option(help="Where to write the rows of the latest snapshot date.")],
    threads: Threads = None,
) -> None:
    """Copy the rows of the latest snapshot date: what a monthly scoring job scores."""
    configure_threads(threads)
    from crm_modes.data.io import latest_snapshot

    date, rows = latest_snapshot(source, out)
    console.print(f"wrote {rows:,} rows of snapshot {date} to {out}")


@app.command()
def labels(
    snapshots: Annotated[Path, typer.Option(help="The bank's monthly panel: .csv or .parquet.")],
    events: Annotated[Path, typer.Option(help="The bank's events (defaults, exits) with dates.")],
    contract: Annotated[Path, typer.Option(help="The book contract (e.g. configs/books/example_bank.yaml).")],
    out: Annotated[Path, typer.Option(help="Where to write the book in the schema: .csv or .parquet.")],
    macro: Annotated[
        Path | None,
        typer.Option(help="The macro series (period, value, published), if the contract names one."),
    ] = None,
    quarantine: Annotated[
        Path | None,
        typer.Option(help="Panel rows that cannot be used, with reasons (default: beside --out)."),
    ] = None,
    max_quarantined_share: MaxQuarantined = None,
) -> None:
    """A bank's panel and events as a labelled book: its names, codes, dates and units mapped by the
    contract, labels built from events, missing context derived, the macro series joined."""
    from crm_modes.data.bank_book import build_book
    from crm_modes.data.book_contract import BookContract
    from crm_modes.data.gate import FileReport, refuse_unusable
    from crm_modes.data.io import read_table, write_table
    from crm_modes.shared.configuration import load_yaml_model

    settings = load_yaml_model(contract, BookContract)
    for path in (snapshots, events, macro):
        if path is not None and not path.is_file():
            raise InputError(f"{path}: no such file")
    quarantine = quarantine or out.with_name(f"{out.stem}.quarantine.csv")
    events_quarantine = out.with_name(f"{out.stem}.events-quarantine.csv")
    with console.status("building the book"):
        built = build_book(
            read_table(snapshots),
            read_table(events),
            settings,
            read_table(macro) if macro is not None else None,
        )
    write_table(built.quarantine, quarantine)
    write_table(built.events_quarantine, events_quarantine)
    used = built.rows_in - built.dropped_after_exit
    report = FileReport(rows_in=used, rows_valid=len(built.book), rows_quarantined=len(built.quarantine))
    for reason in (
        built.quarantine["quarantine_reason"].str.split(":").str[0] if len(built.quarantine) else []
    ):
        report.reasons[reason] = report.reasons.get(reason, 0) + 1
    refuse_unusable(report, quarantine_limit(max_quarantined_share), str(snapshots), quarantine=quarantine)
    write_table(built.book, out)
    console.print(
        f"{out}: {len(built.book):,} rows; rows in = in the book + quarantined + after a default or exit: "
        f"{built.rows_in:,} = {len(built.book):,} + {len(built.quarantine):,} + {built.dropped_after_exit:,}",
        highlight=False,
    )
    console.print(
        f"events: {built.events_in:,} read, {built.events_used:,} used as a facility's default or exit, "
        f"{len(built.events_quarantine):,} quarantined -> {events_quarantine}; "
        + ", ".join(f"{name} {count:,}" for name, count in built.counts.items()),
        highlight=False,
    )
    if built.derived:
        console.print(
            f"derived from the panel or the macro series: {', '.join(built.derived)}", highlight=False
        )
    if built.absent:
        console.print(f"the bank does not have: {', '.join(built.absent)}", highlight=False)
