"""Commands on the state store: record scores, list and acknowledge alerts, a facility's history."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crm_modes.cli.app import MaxQuarantined, State, app, console, progress, quarantine_limit
from crm_modes.cli.tables import access_table, alerts_table, history_tables
from crm_modes.shared.errors import InputError

if TYPE_CHECKING:
    from rich.table import Table

    from crm_modes.state.record import RecordReport


def record_file(
    scores: Path,
    state: str | None,
    policy_path: Path,
    *,
    annotate: Path | None,
    force: bool = False,
    max_quarantined_share: float | None = None,
    queue_seconds: float | None = None,
    names: Mapping[str, str] | None = None,
) -> RecordReport:
    """Record ``scores`` in the state store, print what happened, optionally annotate a copy.

    ``names``: schema identifier -> the bank's column, where the scores carry a bank's names."""
    from crm_modes.models.alerts import load_policy
    from crm_modes.state.annotation import annotate as annotate_scores
    from crm_modes.state.record import QUEUE_SECONDS, record_scores
    from crm_modes.state.store import connect, state_url

    policy = load_policy(policy_path)
    if policy.notifications is None:
        raise InputError(
            f"{policy_path} has no `notifications` section (a bundle registered before it existed?); "
            "pass --policy configs/alert_policy.yaml or register the bundle again"
        )
    engine = connect(state)
    with progress("recording") as shown:
        report = record_scores(
            engine,
            scores,
            policy,
            force=force,
            max_quarantined_share=quarantine_limit(max_quarantined_share),
            queue_seconds=QUEUE_SECONDS if queue_seconds is None else queue_seconds,
            on_chunk=shown.advance,
            names=names,
        )
    if annotate is not None:
        annotate_scores(engine, scores, annotate, report, names=names)
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
    max_quarantined_share: MaxQuarantined = None,
    queue_seconds: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Seconds to wait after registering, so that recorders started together record in "
            "snapshot order (default 5).",
        ),
    ] = None,
    contract: Annotated[
        Path | None,
        typer.Option(help="The book contract, where the scores carry a bank's identifier names."),
    ] = None,
) -> None:
    """Record scored decisions and move every alert through its lifecycle (idempotent per snapshot)."""
    if not scores.exists():
        raise InputError(f"{scores}: no such file or folder")
    if not policy.exists():
        raise InputError(f"{policy}: no such policy file; pass --policy")
    names = None
    if contract is not None:
        from crm_modes.data.book_contract import BookContract
        from crm_modes.shared.configuration import load_yaml_model

        names = load_yaml_model(contract, BookContract).identifier_names()
    record_file(
        scores,
        state,
        policy,
        annotate=output,
        force=force,
        max_quarantined_share=max_quarantined_share,
        queue_seconds=queue_seconds,
        names=names,
    )


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
    from crm_modes.state.queries import list_alerts
    from crm_modes.state.store import connect

    if output_format not in ("table", "json", "csv"):
        raise InputError(f"--format must be table, json or csv, got {output_format!r}")
    found = list_alerts(connect(state), status=status, limit=limit)
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

    alert = acknowledge(connect(state), alert_id, by=by, note=note)
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
    from crm_modes.state.queries import history as facility_history
    from crm_modes.state.store import connect

    found = facility_history(connect(state), facility_id)
    if found is None:
        raise InputError(f"facility {facility_id!r} was never recorded in this state store")
    if output_format == "json":
        console.print_json(json.dumps(found, default=str))
        return
    for table in history_tables(found):
        console.print(table)


@app.command("access-log")
def access_log(
    holder: Annotated[str | None, typer.Option(help="Only this holder's reads.")] = None,
    output_format: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
    state: State = None,
) -> None:
    """Who read client data over REST (histories, alerts), what and when, newest first."""
    from crm_modes.state.queries import access_entries
    from crm_modes.state.store import connect

    if output_format not in ("table", "json", "csv"):
        raise InputError(f"--format must be table, json or csv, got {output_format!r}")
    found = access_entries(connect(state), holder=holder, limit=limit)
    _print_rows(found, output_format, access_table)


def _print_rows(rows: list[dict], output_format: str, table: Callable[[list[dict]], Table]) -> None:
    if output_format == "json":
        console.print_json(json.dumps(rows, default=str))
    elif output_format == "csv":
        if rows:
            writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        console.print(table(rows))
