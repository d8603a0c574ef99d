"""What the command line prints: summaries as rich tables (rendering only, no work)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # the command line imports the heavy modules lazily; so does this file
    from crm_modes.data.gate import FileReport
    from crm_modes.data.summary import BookSummary
    from crm_modes.serve.batch import ScoreReport
    from crm_modes.training.cross_validation import CrossValidation
    from crm_modes.training.trainer import TrainingReport


def validation_table(
    path: Path, report: FileReport, summary: BookSummary | None, quarantine: Path | None
) -> Table:
    table = wrapping_table("", "", title=f"validation of {path}", show_header=False)
    table.add_row("rows in", f"{report.rows_in:,}")
    table.add_row("rows valid", f"{report.rows_valid:,}")
    table.add_row(
        "rows quarantined", f"{report.rows_quarantined:,}" + (f" -> {quarantine}" if quarantine else "")
    )
    table.add_row("reconciles", "yes" if report.reconciles else "[bold red]NO[/]")
    add_gate_rows(table, report)
    if report.extra_columns:
        table.add_row("extra columns (ignored)", ", ".join(report.extra_columns))
    if summary is None:  # a table of one's own: no book figures
        return table
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
    return table


def add_gate_rows(table: Table, report: FileReport) -> None:
    """The gate's problems by column, an offending value each, and the new categories it let through."""
    for column_name, count, example in report.worst(count=len(report.reasons)):
        table.add_row(f"  problem in {column_name}", f"{count:,} (e.g. {example})")
    for column_name, values in sorted(report.unseen.items()):
        ranked = sorted(values.items(), key=lambda item: (-item[1], item[0]))
        table.add_row(f"  new values of {column_name} (scored)", ", ".join(f"{v} {n:,}" for v, n in ranked))


def _figure(metrics: dict[str, object], key: str) -> str:
    return f"{metrics[key]:.4f}" if key in metrics else "-"


def wrapping_table(*headers: str, **options: object) -> Table:
    """A table whose cells wrap onto more lines when the terminal is narrow: no name or count is cut."""
    table = Table(**options)  # type: ignore[arg-type]
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def training_table(report: TrainingReport) -> Table:
    """Each model's figures beside its baseline; beside the oracle too, for the synthetic book."""
    oracle = any(outcome.oracle_metrics for outcome in report.outcomes)
    headers = [
        "model",
        "version",
        "rows train",
        "rows calibration",
        "rows evaluation",
        "metric",
        "model",
        "baseline",
    ]
    table = wrapping_table(*headers, *(["oracle"] if oracle else []))
    for outcome in report.outcomes:
        keys = ("auc", "pr_auc", "ece", "brier") if "auc" in outcome.metrics else ("accuracy", "macro_f1")
        counts = outcome.counts
        rows = [f"{counts[key]:,}" for key in ("rows_train", "rows_calibration", "rows_evaluation")]
        for index, key in enumerate(keys):
            first = index == 0
            cells = [
                outcome.name if first else "",
                f"{outcome.registered_name} v{outcome.version}" if first else "",
                *(rows if first else ["", "", ""]),
                key,
                _figure(outcome.metrics, key),
                _figure(outcome.baseline_metrics, key),
            ]
            table.add_row(*cells, *([_figure(outcome.oracle_metrics, key)] if oracle else []))
    return table


def cross_validation_table(
    results: list[CrossValidation], *, folds: int, repeats: int, seconds: float
) -> Table:
    from crm_modes.training.cross_validation import REPORTED

    table = wrapping_table(
        "model",
        "metric",
        "model mean ± sd",
        "baseline mean ± sd",
        title=f"{folds}-fold cross-validation x {repeats} ({seconds:.0f} s)",
    )
    for result in results:
        summary = result.summary()
        for index, key in enumerate(REPORTED):
            baseline = (
                f"{summary[f'baseline_{key}_mean']:.4f} ± {summary[f'baseline_{key}_std']:.4f}"
                if f"baseline_{key}_mean" in summary
                else "-"
            )
            table.add_row(
                result.model if index == 0 else "",
                key,
                f"{summary[f'{key}_mean']:.4f} ± {summary[f'{key}_std']:.4f}",
                baseline,
            )
    return table


def print_score_report(console: Console, report: ScoreReport, seconds: float) -> None:
    from crm_modes.serve.batch import mode_mix

    counts = report.counts
    summary = wrapping_table(
        "", "", title=f"scored with {report.model_version} in {seconds:.1f} s", show_header=False
    )
    summary.add_row("rows in", f"{counts.rows_in:,}")
    summary.add_row("rows scored", f"{counts.rows_scored:,} -> {report.output}")
    summary.add_row("rows quarantined", f"{counts.rows_quarantined:,} -> {report.quarantine}")
    add_gate_rows(summary, report.gate)
    if report.gate.rows_warned:
        summary.add_row("rows scored with a warning", f"{report.gate.rows_warned:,} (input_warnings)")
    summary.add_row("reconciles", "yes" if report.reconciles else "[bold red]NO[/]")
    if report.levels:  # the advisor: alerts and modes (a single model answers probabilities only)
        for level in reversed(report.levels):  # most severe first, as the policy orders them
            summary.add_row(f"alerts: {level}", f"{counts.alerts.get(level, 0):,}")
        summary.add_row(
            "recommended mode mix", ", ".join(f"{m} {s:.1%}" for m, s in mode_mix(counts).items())
        )
        summary.add_row("mode switches", f"{counts.mode_switches:,}")
    if report.chunks_resumed:
        summary.add_row("chunks resumed", f"{report.chunks_resumed} of {report.chunks}")
    console.print(summary)
    console.print(
        "rows in = scored + quarantined: "
        f"{counts.rows_in:,} = {counts.rows_scored:,} + {counts.rows_quarantined:,}"
    )
    if len(report.top_alerts):
        console.print(f"[bold]{len(report.top_alerts)} most severe alerts[/]")
        facility = report.names.get("facility_id", "facility_id")
        for rank, row in enumerate(report.top_alerts.to_dict("records"), start=1):
            console.print(
                f"{rank:>2}. {row.get(facility, '')} {row['alert_level'].upper()} [{row['alert_codes']}] "
                f"PD {row['default_probability']:.1%}, churn {row['churn_probability']:.1%}, "
                f"grade {row['risk_grade']}",
                highlight=False,
            )
            console.print(f"    action: {row['recommended_action']}", highlight=False)
            if row["alert_reasons"]:
                console.print(f"    reasons: {row['alert_reasons']}", highlight=False)


def policy_table(report: dict, model_uri: str) -> Table:
    """The policy report: each policy's value, the captured share, the doubly robust check."""
    table = wrapping_table(
        "policy", title=f"mode policies of {model_uri} on {report['rows']:,} evaluation rows"
    )
    table.add_column("12-month value, millions", justify="right", overflow="fold")
    for name, value in report["policies"].items():
        table.add_row(name, f"{value:,.1f}")
    if report["value_captured"] is not None:
        table.add_row("value captured", f"{report['value_captured']:.3f}")
        table.add_row("true gain over the committee", f"{report['true_gain']:,.1f}")
    low, high = report["dr_interval"]
    table.add_row("doubly robust: value policy", f"{report['dr_estimate']:,.1f} [{low:,.1f}, {high:,.1f}]")
    gain = report["dr_gain"]
    table.add_row(
        "doubly robust: gain over the committee",
        f"{gain['value']:,.1f} [{gain['lower']:,.1f}, {gain['upper']:,.1f}]",
    )
    concentration = report["dr_gain_concentration"]
    share, most = concentration["share_of_variance"], report["dr_settings"]["max_concentration"]
    table.add_row(
        f"  its variance carried by {concentration['clients']} clients",
        f"{share:.0%}"
        + (" (a few outcomes decide it: the interval cannot be trusted)" if share > most else ""),
    )
    clipped = ", ".join(f"{name} {count:,}" for name, count in report["dr_clipped_rows"].items())
    table.add_row("propensities clipped (rows)", clipped)
    weights = ", ".join(f"{name} {mean:.2f}" for name, mean in report.get("dr_mean_weight", {}).items())
    table.add_row("mean weight (1 when propensities are right)", weights)
    by_mode = ", ".join(f"{mode} {mean:.2f}" for mode, mean in report.get("mean_weight_by_mode", {}).items())
    table.add_row("mean weight per mode applied (1 when right)", by_mode)
    recorded = report.get("recorded_weight_by_mode")
    if recorded:
        table.add_row(
            "  by the propensity recorded", ", ".join(f"{mode} {mean:.2f}" for mode, mean in recorded.items())
        )
    table.add_row("facilities switched", f"{report['share_switched']:.1%}")
    mix = report["recommended_mix"]
    table.add_row("recommended mix", ", ".join(f"{mode} {share:.1%}" for mode, share in mix.items()))
    for committee_mode, counts in report["switch_matrix"].items():
        moves = ", ".join(f"{mode} {count:,}" for mode, count in counts.items())
        table.add_row(f"  committee {committee_mode} ->", moves)
    capacity = report.get("capacity")
    if capacity is not None:
        if not capacity["bounds"]:
            table.add_row("within capacity", "no bound")
        for name, limits in capacity["bounds"].items():
            table.add_row(f"within {CAPACITY_BOUNDS.get(name, name)}", _per_group(limits, "{:,.0f}"))
            table.add_row("  one more is worth (millions)", _per_group(capacity["prices"][name], "{:,.3f}"))
        if capacity.get("gap"):
            table.add_row("  at most below the best (millions)", f"{capacity['gap']:,.3f}")
        if capacity.get("value_captured") is not None:
            table.add_row("  value captured within it", f"{capacity['value_captured']:.3f}")
        table.add_row("  facilities switched", f"{capacity['share_switched']:.1%}")
        mix = ", ".join(f"{mode} {share:.1%}" for mode, share in capacity["mix"].items())
        table.add_row("  mix", mix)
    return table


#: What each capacity bound limits, in the policy report's table.
CAPACITY_BOUNDS = {
    "responsible": "responsible slots",
    "rm_hours": "RM hours a month",
    "moves": "moves this run",
}


def _per_group(figures: dict[str, float], form: str) -> str:
    """A bound's figures by group: one figure for a book-wide bound, ``group figure`` pairs otherwise."""
    if list(figures) == ["book"]:
        return form.format(figures["book"])
    return ", ".join(f"{group} {form.format(figure)}" for group, figure in figures.items())


def access_table(rows: list[dict]) -> Table:
    """Reads of client data from the access log, one line each."""
    from rich import box

    table = Table(title=f"{len(rows):,} reads, newest first", box=box.SIMPLE_HEAD)
    for name in ("at", "holder", "action", "subject", "rows"):
        table.add_column(name, no_wrap=name != "subject", overflow="fold")
    for row in rows:
        at = row["at"]
        table.add_row(
            f"{at:%Y-%m-%d %H:%M:%S}", row["holder"], row["action"], row["subject"], f"{row['rows']:,}"
        )
    return table


def alerts_table(rows: list[dict], status: str | None) -> Table:
    """Alerts from the state store, one line each (dates never wrapped)."""
    from rich import box

    table = Table(title=f"{len(rows):,} {status or 'all'} alerts", box=box.SIMPLE_HEAD)
    for name in ("id", "facility", "code", "status", "since", "notified"):
        table.add_column(
            name, no_wrap=name != "code", overflow="fold", min_width=15 if name == "code" else None
        )
    acknowledged = any(row["acknowledged_by"] for row in rows)
    if acknowledged:
        table.add_column("acknowledged", overflow="fold")
    for row in rows:
        cells = [
            str(row["id"]),
            row["facility_id"],
            row["code"],
            row["status"],
            str(row["first_seen"]),
            str(row["last_notified"] or ""),
        ]
        if acknowledged:
            cells.append(f"{row['acknowledged_by']}: {row['note'] or ''}" if row["acknowledged_by"] else "")
        table.add_row(*cells)
    return table


def history_tables(found: dict) -> list[Table]:
    """A facility's decisions and alert events over time (dates and modes never wrapped)."""
    from rich import box

    models = sorted({row["model_version"] for row in found["decisions"]})
    decisions = Table(
        title=f"{found['facility_id']}: decisions", caption="by " + ", ".join(models), box=box.SIMPLE_HEAD
    )
    for name in ("snapshot", "applied", "committee", "recommended", "PD", "churn", "grade", "alerts"):
        decisions.add_column(
            name,
            no_wrap=name in ("snapshot", "PD", "churn", "grade"),
            overflow="fold",
            min_width=16 if name == "alerts" else None,
        )
    for row in found["decisions"]:
        decisions.add_row(
            str(row["snapshot_date"]),
            row["assigned_mode"] or "",
            row["committee_mode"] or "",
            row["recommended_mode"] or "",
            "" if row["default_probability"] is None else f"{row['default_probability']:.2%}",
            "" if row["churn_probability"] is None else f"{row['churn_probability']:.1%}",
            row["risk_grade"] or "",
            (row["alert_codes"] or "").replace(",", ", "),
        )
    events = Table(title=f"{found['facility_id']}: alert events", box=box.SIMPLE_HEAD)
    for name in ("snapshot", "event", "code", "notified", "by", "note"):
        events.add_column(name, no_wrap=name in ("snapshot", "event", "code"), overflow="fold")
    for row in found["alert_events"]:
        events.add_row(
            str(row["snapshot_date"] or row["at"]),
            row["event"],
            row["code"],
            "yes" if row["notified"] else "",
            row["by"] or "",
            row["note"] or "",
        )
    return [decisions, events]


def print_monitoring_report(console: Console, report: dict, seconds: float) -> None:
    """The monitoring summary: status, reconciled rows, the headline figures and every flag."""
    summary = wrapping_table(
        "",
        "",
        title=f"monitoring {report['model_version']} in {seconds:.1f} s: {report['status'].upper()}",
        show_header=False,
    )
    summary.add_row("rows in", f"{report['rows_in']:,}")
    summary.add_row("rows scored", f"{report['rows_scored']:,}")
    gated = report.get("quarantine") or {}
    summary.add_row(
        "rows quarantined",
        f"{report['rows_quarantined']:,} ({gated.get('share', 0.0):.1%})"
        + (f" -> {report['quarantine_file']}" if report.get("quarantine_file") else ""),
    )
    for reason in gated.get("reasons", [])[:5]:
        summary.add_row(f"  problem in {reason['column']}", f"{reason['rows']:,} (e.g. {reason['example']})")
    if not report["judged"]["enough"]:
        summary.add_row("[bold red]cannot judge[/]", report["judged"]["note"])
    summary.add_row("snapshots", " to ".join(report["snapshots"]) or "-")
    summary.add_row(
        "reference",
        f"{report['reference']['rows']:,} training rows, " + " to ".join(report["reference"]["snapshots"]),
    )
    levels = report["portfolio"]
    now = levels["current"]
    if now["rows"]:
        summary.add_row(
            "mean PD, expected defaults",
            f"{now['mean_default_probability']:.3%}, {now['expected_defaults']:,.1f}"
            + _changes(levels, "mean_default_probability"),
        )
        summary.add_row(
            "mean churn", f"{now['mean_churn_probability']:.2%}" + _changes(levels, "mean_churn_probability")
        )
    stable = report["stability"]
    for entry in stable["scores"][:2]:
        summary.add_row(f"PSI {entry['name']}", f"{entry['psi']:.3f} ({entry['flag']})")
    worst = max(stable["inputs"], key=lambda entry: entry["psi"], default=None)
    if worst is not None:
        summary.add_row("largest input PSI", f"{worst['name']} {worst['psi']:.3f} ({worst['flag']})")
    shifts = [
        (name, f)
        for name, f in (levels.get("inputs_against_previous") or {}).items()
        if f["shift"] is not None
    ]
    if shifts:
        name, moved = max(shifts, key=lambda item: abs(item[1]["shift"]))
        summary.add_row(
            "largest input mean shift",
            f"{name} {moved['shift']:+.2f} sd on the previous run ({moved['flag']})",
        )
    if report.get("backtest"):
        for name, overall in report["backtest"]["overall"].items():
            auc = "-" if overall["auc"] is None else f"{overall['auc']:.4f}"
            summary.add_row(
                f"backtest {name}",
                f"observed {overall['observed_rate']:.2%}, "
                f"predicted {overall['mean_prediction']:.2%}, AUC {auc}",
            )
    console.print(summary)
    console.print(
        "rows in = scored + quarantined: "
        f"{report['rows_in']:,} = {report['rows_scored']:,} + {report['rows_quarantined']:,}"
    )
    flagged = report["flags"]
    if flagged:
        table = wrapping_table(
            "level", "section", "what", "figure", "value", title=f"{len(flagged)} flagged figures"
        )
        for item in sorted(flagged, key=lambda f: f["level"] != "act"):
            value = item["value"]
            shown = "-" if value is None else f"{value:.4g}" if isinstance(value, float | int) else str(value)
            note = item.get("note")
            table.add_row(
                item["level"],
                item["section"],
                item["name"] + (f": {note}" if note else ""),
                item["figure"],
                shown,
            )
        console.print(table)
    else:
        console.print("nothing flagged")


def _changes(levels: dict, name: str) -> str:
    """`` (+12.7% on the reference, +3.1% on the previous run)`` for one level of the portfolio."""
    parts = []
    for side, label in (
        ("against_reference", "on the reference"),
        ("against_previous", "on the previous run"),
    ):
        change = ((levels.get(side) or {}).get(name) or {}).get("change")
        if change is not None:
            parts.append(f"{change:+.1%} {label}")
    return f" ({', '.join(parts)})" if parts else ""
