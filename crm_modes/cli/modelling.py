"""Commands of the model life cycle: train, cross-validate, judge the value policy, promote."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crm_modes.cli.app import (
    MaxQuarantined,
    Threads,
    app,
    configure_threads,
    console,
    model_stack,
    print_gate,
    progress,
    training_config,
)
from crm_modes.cli.tables import cross_validation_table, policy_table, training_table
from crm_modes.shared.errors import InputError

if TYPE_CHECKING:
    from crm_modes.training.config import TrainingConfig


def _limited(settings: TrainingConfig, max_quarantined_share: float | None) -> TrainingConfig:
    """The configuration with ``--max-quarantined-share`` over its ``data.max_quarantined_share``."""
    if max_quarantined_share is None:
        return settings
    data = settings.data.model_copy(update={"max_quarantined_share": max_quarantined_share})
    return settings.model_copy(update={"data": data})


@app.command()
def train(
    config: Annotated[Path, typer.Option(help="Training configuration (YAML), e.g. configs/train.yaml.")],
    max_quarantined_share: MaxQuarantined = None,
    threads: Threads = None,
) -> None:
    """Train, calibrate, evaluate, log to MLflow and register every configured model as challenger."""
    configure_threads(threads)
    with model_stack():
        from crm_modes.training.trainer import train as run_training
    settings = _limited(training_config(config), max_quarantined_share)
    started = time.perf_counter()
    with progress("training", unit="steps") as shown:
        report = run_training(settings, progress=shown.stage)
    console.print(f"training run {report.run_id} finished in {time.perf_counter() - started:.0f} s")
    print_gate(report.rows_in, report.rows_quarantined, report.problems, report.quarantine)
    console.print(training_table(report))
    note = "baseline: logistic regression on the same features"
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
    """Move @champion to the challenger if it passes every gate; or roll back to the previous champion.

    A refused promotion exits 1 and lists each failed gate with its figures; a promotion that finds
    @champion moved meanwhile exits 1 and changes nothing.
    """
    configure_threads(threads)
    with model_stack():
        from crm_modes.training.promote import promote as run_promotion
        from crm_modes.training.promote import rollback as run_rollback
    settings = training_config(config)
    if rollback:
        for name, was, now in run_rollback(settings, model):
            console.print(f"{name}: champion rolled back from v{was} to v{now}")
        return
    with console.status("scoring challengers and champions on the evaluation rows"):
        decisions = run_promotion(settings, model)
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
    max_quarantined_share: MaxQuarantined = None,
    threads: Threads = None,
) -> None:
    """Repeated stratified K-fold cross-validation of the configured models and their baseline.

    Each fold's figures reach MLflow as the fold finishes: a run stopped halfway keeps its folds.
    """
    configure_threads(threads)
    with model_stack():
        import mlflow

        from crm_modes.training.cross_validation import cross_validate
        from crm_modes.training.data_source import load_training_table, write_quarantine
        from crm_modes.training.run_logging import evaluation_run
    settings = _limited(training_config(config), max_quarantined_share)
    started = time.perf_counter()
    data = load_training_table(settings)
    print_gate(data.rows_in, data.rows_quarantined, data.problems, write_quarantine(settings, data))
    binary = sum(model.kind == "binary" for model in settings.models.values())
    mlflow.set_experiment(settings.mlflow.experiment)
    name = settings.source_path.name if settings.source_path else "config.yaml"
    with (
        evaluation_run(name, settings.source_text, folds=cv, repeats=repeats) as log_fold,
        progress("cross-validating", total=binary * cv * repeats, unit="folds") as shown,
    ):

        def fold_done(model: str, figures: dict[str, float]) -> None:
            log_fold(model, figures)
            shown.advance(1, f"{model}: repeat {int(figures['repeat']) + 1}, fold {int(figures['fold']) + 1}")

        results = cross_validate(
            settings, data.table, folds=cv, repeats=repeats, seed=seed, on_fold=fold_done
        )
        run_id = log_fold.run_id
        log_fold.summary(results)
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
    configure_threads(threads)
    with model_stack():
        from crm_modes.training.data_source import load_training_table
        from crm_modes.training.policy_report import judge_bundle, log_report
    settings = training_config(config)
    if settings.advisor is None:
        raise InputError(f"{config}: has no advisor section; the policy report judges the advisor bundle")
    uri = model or f"models:/{settings.advisor.registered_name}@challenger"
    with console.status("scoring the evaluation rows with the bundle"):
        report = judge_bundle(settings, uri, load_training_table(settings).table)
        run_id = log_report(report, settings.mlflow.experiment, uri)
    console.print(policy_table(report, uri))
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2))
        console.print(f"wrote {json_path}")
    console.print(f"logged to MLflow run {run_id}")
