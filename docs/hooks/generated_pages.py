"""MkDocs hook: the pages whose content is generated from the code and the measurements.

A page holds a marker comment, ``<!-- generated: NAME -->``, and the hook replaces it when the site
is built, so these pages can never fall behind what they describe:

- ``configuration``: every key of every configuration file, from the parsed models;
- ``cli``: every command and option, from the command line's own definitions;
- ``schema``: every column of the book, from ``data/schema.py``;
- ``benchmarks``: one row per result file in ``benchmarks/results/`` (the current figures, the
  command, the machine and the date; the history stays in the results' git log).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
MARKER = re.compile(r"<!-- generated: (?P<name>[a-z]+) -->")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace every generation marker of a page with its generated content."""
    return MARKER.sub(lambda found: GENERATORS[found["name"]](), markdown)


# --- configuration and command line --------------------------------------------------------------


def configuration() -> str:
    from crm_modes.cli.config_reference import markdown

    return markdown()


def cli() -> str:
    import typer

    from crm_modes.cli import app

    root = typer.main.get_command(app)
    parts: list[str] = []
    for path, command in _commands(root, ["crm-modes"]):
        parts.append(f"## `{' '.join(path)}`\n")
        parts.append((command.help or "").strip() + "\n")
        rows = []
        for parameter in command.params:
            if parameter.name == "help":
                continue
            if parameter.param_type_name == "argument":
                name = f"`{parameter.opts[0].upper()}` (argument)"
            else:
                name = ", ".join(f"`{option}`" for option in [*parameter.opts, *parameter.secondary_opts])
            default = "" if parameter.required else _shown_default(parameter.default)
            helped = (getattr(parameter, "help", "") or "").replace("|", "\\|").replace("\n", " ")
            rows.append(f"| {name} | {'required' if parameter.required else default} | {helped} |")
        if rows:
            parts.append(
                "| option | default | what it does |\n| --- | --- | --- |\n" + "\n".join(rows) + "\n"
            )
    return "\n".join(parts)


def _commands(group: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    found = []
    for name in sorted(group.commands):
        command = group.commands[name]
        if hasattr(command, "commands"):
            found += _commands(command, [*path, name])
        else:
            found.append(([*path, name], command))
    return found


def _shown_default(value: object) -> str:
    if value is None or value == () or value is False:
        return ""
    return f"`{value}`"


def schema() -> str:
    from crm_modes.data.schema import SCHEMA

    rows = []
    for column in SCHEMA:
        if column.categories:
            allowed = ", ".join(f"`{value}`" for value in column.categories)
            allowed += f"; another value: {column.unseen_policy}"
        elif column.minimum is not None or column.maximum is not None:
            allowed = f"{_bound(column.minimum)} to {_bound(column.maximum)}"
        else:
            allowed = ""
        flags = [word for word, on in (("nullable", column.nullable), ("required", column.required)) if on]
        rows.append(
            f"| `{column.name}` | {column.kind.value} | {column.role.value} | {', '.join(flags)} "
            f"| {allowed} | {column.description} |"
        )
    header = "| column | kind | role | | allowed | what it is |\n| --- | --- | --- | --- | --- | --- |\n"
    return header + "\n".join(rows) + "\n"


def _bound(value: float | None) -> str:
    if value is None:
        return "any"
    return f"{value:g}"


# --- benchmarks ----------------------------------------------------------------------------------

#: What each result file measures and which of its figures are its headline: (label, path, unit).
#: A path is the result's keys joined by dots. A result file not listed here still gets a row.
HEADLINES: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "generate": (
        "simulate 1,000,000 rows with the counterfactual oracle",
        [("seconds", "generate_seconds", "s"), ("peak memory", "peak_memory_mib_total", "MiB")],
    ),
    "features": (
        "features: fit 200,000 rows, transform 1,000,000",
        [
            ("tree transform", "tree.transform_seconds", "s"),
            ("linear transform", "linear.transform_seconds", "s"),
            ("tree, array path", "tree.fast_transform_seconds", "s"),
            ("linear, array path", "linear.fast_transform_seconds", "s"),
        ],
    ),
    "train_default": (
        "train the default configuration (400,000 rows)",
        [
            ("seconds", "seconds", "s"),
            ("peak memory", "peak_memory_mib", "MiB"),
            ("PD AUC", "models.default.auc", ""),
            ("PD oracle AUC", "models.default.oracle_auc", ""),
            ("churn AUC", "models.churn.auc", ""),
        ],
    ),
    "train_default_beside_busy_core": (
        "train the default configuration beside a busy core",
        [("seconds", "seconds", "s"), ("peak memory", "peak_memory_mib", "MiB")],
    ),
    "train_1000000": (
        "train all three models on 1,000,000 rows",
        [("seconds", "seconds", "s"), ("peak memory", "peak_memory_mib", "MiB")],
    ),
    "train_1000000_beside_busy_core": (
        "train all three models on 1,000,000 rows beside a busy core",
        [("seconds", "seconds", "s"), ("peak memory", "peak_memory_mib", "MiB")],
    ),
    "score": (
        "batch scoring 1,000,000 rows end to end; REST one record, 2,000 sequential requests",
        [
            ("batch", "batch.full.rows_per_second", "rows/s"),
            ("batch peak memory", "batch.full.peak_memory_mib", "MiB"),
            ("REST p50", "rest_single_record.crm_modes_serve.p50_ms", "ms"),
            ("REST p99", "rest_single_record.crm_modes_serve.p99_ms", "ms"),
            (
                "stock `mlflow models serve` p50",
                "rest_single_record.baseline_mlflow_models_serve.p50_ms",
                "ms",
            ),
        ],
    ),
    "floors": (
        "the fixed costs under the scoring targets, each alone",
        [
            ("one row end to end", "batch.score_one_row_end_to_end.median_seconds", "s"),
            (
                "committee trees on 1,000,000 rows",
                "batch.committee_booster_alone.threads_1.median_seconds",
                "s",
            ),
            ("pyfunc one record p50", "rest.in_process_one_record.pyfunc_predict_p50_ms", "ms"),
            ("HTTP stack alone p50", "rest.http_stack_without_model.sequential.p50_ms", "ms"),
        ],
    ),
    "spark": (
        "Spark against in-process scoring, 1,000,000 rows",
        [
            ("after the session started / in-process", "spark_after_session_over_inprocess", "x"),
            ("whole / in-process", "spark_whole_over_inprocess", "x"),
        ],
    ),
    "rest_concurrency": (
        "REST under load: 8 clients for 60 s, one record each",
        [
            ("1 worker", "workers_1.requests_per_second", "requests/s"),
            ("2 workers", "workers_2.requests_per_second", "requests/s"),
            ("errors", "workers_2.errors", ""),
        ],
    ),
    "rest_fuzz": (
        "REST fuzzing from the OpenAPI document",
        [("cases", "cases", ""), ("answered 5xx", "server_errors", "")],
    ),
    "rest_hostile": (
        "REST under hostile requests: each one's answer, and /health meanwhile",
        [
            ("cases", "case_count", ""),
            ("/health p99", "health.p99_ms", "ms"),
            ("slowest hostile answer", "slowest_hostile_seconds", "s"),
            ("worker memory idle", "worker_memory_mib.idle", "MiB"),
            ("after", "worker_memory_mib.after", "MiB"),
        ],
    ),
    "bank_book": (
        "a bank's panel through its contract: mapping and labels from events",
        [
            ("rows", "rows", ""),
            ("events", "events", ""),
            ("seconds", "seconds", "s"),
            ("peak memory", "peak_memory_mib", "MiB"),
        ],
    ),
    "bank_round_trip": (
        "a bank's export built back and trained: against the native book with the same information",
        [
            ("value captured, bank", "bank_book.value_captured", ""),
            ("native", "native_book_same_information.value_captured", ""),
            ("PD AUC, bank", "bank_book.default_auc", ""),
            ("native", "native_book_same_information.default_auc", ""),
            ("within targets", "within_targets", ""),
        ],
    ),
    "record": (
        "record 1,000,000 decisions in the state store",
        [("SQLite", "sqlite.seconds", "s"), ("PostgreSQL", "postgresql.seconds", "s")],
    ),
    "alert_replay": (
        "replay a book month by month through score and record",
        [
            ("notifications without the lifecycle", "notifications_without_lifecycle", ""),
            ("with it", "notifications_with_lifecycle", ""),
            ("defaults warned, with the lifecycle", "defaults_warned_with_lifecycle", ""),
        ],
    ),
    "contention": (
        "jobs side by side: alone, two at once, beside a training",
        [
            ("train, worst ratio", "jobs.train.worst_ratio", "x"),
            ("evaluate, worst ratio", "jobs.evaluate.worst_ratio", "x"),
            ("score, worst ratio", "jobs.score.worst_ratio", "x"),
        ],
    ),
    "monitor": (
        "monitoring 1,000,000 rows; false alarms over 20 seeds",
        [
            ("from the scores", "speed.full_from_scores.seconds", "s"),
            ("scoring the rows itself", "speed.full.seconds", "s"),
            ("runs with an act flag, of 20", "false_alarms.runs_with_an_act_flag", ""),
        ],
    ),
    "drift_suite": (
        "feeds that break the way real feeds break: the verdict expected and obtained",
        [("cases with their expected level", "met", ""), ("cases", "of", "")],
    ),
    "monitoring_libraries": (
        "input drift of 1,000,000 rows: this project against evidently and nannyml",
        [
            ("ours", "ours.seconds", "s"),
            ("evidently", "evidently.seconds", "s"),
            ("nannyml", "nannyml.seconds", "s"),
        ],
    ),
    "estimators": (
        "LightGBM beside HistGradientBoosting and logistic regression, same folds",
        [
            (
                "German credit, configured",
                "public_tables.german_credit.estimators.configured.auc_mean",
                "AUC",
            ),
            ("Taiwan", "public_tables.taiwan_credit_card.estimators.configured.auc_mean", "AUC"),
            ("bank churn", "public_tables.bank_churn.estimators.configured.auc_mean", "AUC"),
        ],
    ),
    "public_tables": (
        "public tables, 5-fold AUC repeated under 5 shuffles",
        [
            ("German credit", "tables.german_credit.auc_mean", "AUC"),
            ("Taiwan", "tables.taiwan_credit_card.auc_mean", "AUC"),
            ("bank churn", "tables.bank_churn.auc_mean", "AUC"),
        ],
    ),
    "pd_penalty": (
        "the PD model's penalty, chosen on training rows only",
        [("best C, seed 42", "best_forward_C_by_seed.42", ""), ("seed 7", "best_forward_C_by_seed.7", "")],
    ),
    "pd_economy": (
        "the PD model's calibration in the large against the oracle's: history and economic signals",
        [
            ("largest gap, 84 months, growth alone", "summary.84.growth.gap_to_oracle_max", ""),
            ("84 months, growth and its change (shipped)", "summary.84.with_change.gap_to_oracle_max", ""),
            ("120 months, growth and its change", "summary.120.with_change.gap_to_oracle_max", ""),
            (
                "84 months, the same form fitted to the oracle's probabilities",
                "summary.84.with_change.form_gap_to_oracle_max",
                "",
            ),
        ],
    ),
    "value_policy_history_120": (
        "the value policy on ten-year books (the history the PD model's calibration would prefer)",
        [
            ("value captured, mean", "summary.value_captured_mean", ""),
            ("lowest", "summary.value_captured_min", ""),
            ("PD calibration's largest gap to the oracle", "summary.pd_calibration_gap_to_oracle_max", ""),
        ],
    ),
    "value_policy_mode_noise_30": (
        "the value policy and its off-policy check on books with 30% of modes off the committee's rule",
        [
            ("value captured, mean", "summary.value_captured_mean", ""),
            ("books whose gain interval covers the truth", "summary.seeds_interval_covers_true_gain", ""),
            ("lower bound passing the policy (of 15)", "summary.runs_lower_bound_passes_value_policy", ""),
            ("gain's variance in its 10 largest clients, lowest", "summary.gain_concentration_range.0", ""),
        ],
    ),
    "mode_effects": (
        "the outcome models' mode effects counted per row and per client, against the truth",
        [
            ("PD effects' mean absolute error, per row", "summary.default.per row.mean_absolute_error", ""),
            ("per client (shipped)", "summary.default.per client.mean_absolute_error", ""),
            ("design effect, lowest", "summary.default.per client.design_effect_range.0", ""),
        ],
    ),
    "effect_learners": (
        "mode-effect learners on the same rows: the shipped S-learner against a DR-learner",
        [
            ("value captured, S-learner (mean of seeds)", "summary.value_captured_s_learner_shipped", ""),
            ("DR-learner", "summary.value_captured_dr_learner", ""),
        ],
    ),
    "recorded_propensity": (
        "the propensity each decision records, weighed on the out-of-time year",
        [
            ("lowest mode weight, shipped", "summary.shipped_weight_range.0", ""),
            ("highest", "summary.shipped_weight_range.1", ""),
        ],
    ),
    "value_policy": (
        "the value policy against the counterfactual truth: five books, three economics",
        [
            ("value captured, mean", "summary.value_captured_mean", ""),
            ("lowest", "summary.value_captured_min", ""),
            (
                "within the committee's responsible share, default book",
                "summary.value_captured_within_cap_default_book",
                "",
            ),
            ("gain intervals covering the truth (of 5)", "summary.seeds_interval_covers_true_gain", ""),
            (
                "lowest within each region's committee share",
                "summary.value_captured_within_team_capacity_min.responsible_by_region",
                "",
            ),
            (
                "lowest within each region's committee RM hours",
                "summary.value_captured_within_team_capacity_min.rm_hours_by_region",
                "",
            ),
            (
                "a move beating 1 standard error, mean",
                "summary.value_captured_beating_one_standard_error",
                "",
            ),
            ("every mode pair's effect with the true sign", "summary.effect_signs_true_on_every_seed", ""),
            ("gain's variance in its 10 largest clients, lowest", "summary.gain_concentration_range.0", ""),
        ],
    ),
}


def benchmarks() -> str:
    rows = []
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        name = result.get("benchmark", path.stem)
        title, headline = HEADLINES.get(path.stem, (name, []))
        figures = (
            "; ".join(f"{label} {_figure(_lookup(result, key), unit)}" for label, key, unit in headline)
            or f"see `{path.name}`"
        )
        checks = result.get("checks")
        if isinstance(checks, dict) and checks:
            met = sum(bool(value) for value in checks.values())
            missed = [key for key, value in checks.items() if not value]
            figures += f"; targets met {met} of {len(checks)}"
            if missed:
                figures += " (not: " + ", ".join(f"`{key}`" for key in missed) + ")"
        machine = result.get("machine", {})
        shown_machine = f"{machine.get('cpus', '?')} CPUs, Python {machine.get('python', '?')}"
        rows.append(
            f"| {title} | {figures} | `{result.get('command', '')}` | {shown_machine} "
            f"| {str(result.get('measured_at', ''))[:10]} | `{path.name}` |"
        )
    header = "| what | figures | command | machine | date | result |\n| --- | --- | --- | --- | --- | --- |\n"
    return header + "\n".join(rows) + "\n"


def _lookup(result: dict, key: str) -> object:
    value: object = result
    for part in key.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]  # an item of a list, e.g. a range's low end ``range.0``
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return None
    return value


def _figure(value: object, unit: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        text = f"{value:,}"
    elif isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    else:
        text = str(value)
    return f"{text} {unit}".strip() if unit not in ("x",) else f"{text}x"


GENERATORS = {"configuration": configuration, "cli": cli, "schema": schema, "benchmarks": benchmarks}
