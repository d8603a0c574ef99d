"""One training run: fit, calibrate, evaluate, log, register every configured model."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from crm_modes.data.schema import KEY
from crm_modes.models.mode_readings import ModeReadings, fit_mode_readings
from crm_modes.shared.errors import InputError
from crm_modes.training import plots
from crm_modes.training.bundle import log_advisor
from crm_modes.training.cards import model_card
from crm_modes.training.config import ModelConfig, TrainingConfig
from crm_modes.training.data_source import TrainingTable, load_training_table, write_quarantine
from crm_modes.training.evaluate import Evaluation, evaluate
from crm_modes.training.fit import FittedModel, binary_target, fit_model
from crm_modes.training.importance import IMPORTANCE_ROWS, permutation_scores
from crm_modes.training.metrics import scalar_metrics
from crm_modes.training.propensity import fit_recorded_propensity
from crm_modes.training.registration import log_and_register, make_challengers
from crm_modes.training.run_logging import git_commit
from crm_modes.training.split import Split, exclude_seen_groups, split_rows

Progress = Callable[[str], None]


@dataclass
class ModelOutcome:
    name: str
    registered_name: str
    version: str
    run_id: str
    calibration: str
    counts: dict[str, int]
    metrics: dict[str, object]
    baseline_metrics: dict[str, object] = field(default_factory=dict)
    oracle_metrics: dict[str, object] = field(default_factory=dict)


@dataclass
class TrainingReport:
    run_id: str
    experiment_id: str
    data_hash: str
    outcomes: list[ModelOutcome]
    advisor_version: str | None = None
    #: the gate's count: rows in = rows trained on (``rows_in - rows_quarantined``) + quarantined
    rows_in: int = 0
    rows_quarantined: int = 0
    #: where the quarantined rows were written, with their reasons (None: none quarantined)
    quarantine: Path | None = None
    problems: dict[str, int] = field(default_factory=dict)


def model_split(table: pd.DataFrame, config: TrainingConfig, model: ModelConfig) -> tuple[Split, int]:
    """The rows of one model, and how many were left out because the label is unknown.

    A mode label is known at the snapshot, so it needs no horizon; its evaluation keeps
    only facilities never seen in training, so remembered facilities cannot flatter it.
    """
    if model.target not in table:
        raise InputError(f"target {model.target!r} of model is not a column of the table")
    known = table[model.target].notna().to_numpy()
    split_config = config.split
    if model.kind == "multiclass":
        split_config = split_config.model_copy(update={"horizon_months": 0})
    split = split_rows(table, split_config, known=known, stratify=table[model.target].astype(str).to_numpy())
    if model.kind == "multiclass" and KEY[0] in table and config.split.kind == "out_of_time":
        split = exclude_seen_groups(split, table[KEY[0]])
    return split, int((~known).sum())


def training_rows(split: Split, model: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """Rows to fit on and rows to calibrate on (none when the model is not calibrated)."""
    if model.kind == "multiclass" or model.calibration == "none" or model.calibration_folds is not None:
        return split.train | split.calibration, np.zeros_like(split.train)
    return split.train, split.calibration


def fit_and_evaluate(
    name: str, config: TrainingConfig, table: pd.DataFrame
) -> tuple[FittedModel, Evaluation, Split, dict[str, int]]:
    model = config.models[name]
    split, unknown = model_split(table, config, model)
    fit_rows, calibration_rows = training_rows(split, model)
    fitted = fit_model(name, model, config.features, table[fit_rows], table[calibration_rows])
    evaluation = evaluate(fitted, table[split.evaluation])
    counts = {
        "rows_unknown_label": unknown,
        "rows_train": int(fit_rows.sum()),
        "rows_calibration": int(calibration_rows.sum()),
        "rows_evaluation": int(split.evaluation.sum()),
    }
    return fitted, evaluation, split, counts


def importance(fitted: FittedModel, evaluation_rows: pd.DataFrame) -> dict[str, float]:
    """Permutation importance of each input column on a fixed sample of evaluation rows."""
    sample = evaluation_rows.sample(n=min(IMPORTANCE_ROWS, len(evaluation_rows)), random_state=0)
    y = sample[fitted.config.target]
    if fitted.config.kind == "binary":
        return permutation_scores(fitted.pipeline, sample, binary_target(y, fitted.config), scoring="roc_auc")
    return permutation_scores(fitted.pipeline, sample, y.astype(str).to_numpy(), scoring="accuracy")


def _log_model_run(
    fitted: FittedModel,
    evaluation: Evaluation,
    split: Split,
    counts: dict[str, int],
    table: pd.DataFrame,
    data: TrainingTable,
    commit: str,
) -> ModelOutcome:
    config = fitted.config
    with mlflow.start_run(run_name=fitted.name, nested=True) as run:
        mlflow.log_params(
            {
                "target": config.target,
                "kind": config.kind,
                "estimator": config.estimator.type,
                **{f"estimator.{key}": value for key, value in config.estimator.params.items()},
                "calibration": fitted.calibration_method,
                "split": split.description,
            }
        )
        mlflow.log_metrics({**counts, **scalar_metrics(evaluation.metrics)})
        mlflow.log_metrics(
            {f"baseline_{k}": v for k, v in scalar_metrics(evaluation.baseline_metrics).items()}
        )
        mlflow.log_metrics({f"oracle_{k}": v for k, v in scalar_metrics(evaluation.oracle_metrics).items()})
        if fitted.mode_effects is not None:  # log-odds of each mode as fitted and as kept in the order
            effects = fitted.mode_effects
            mlflow.log_metrics(
                {f"mode_effect_fitted_{mode}": value for mode, value in effects.fitted.items()}
            )
            mlflow.log_metrics({f"mode_effect_{mode}": value for mode, value in effects.kept.items()})
            mlflow.log_param("mode_effects_constrained", str(effects.constrained).lower())
            if effects.design_effect is not None:  # docs/decisions/027-mode-effects-counted-per-client.md
                mlflow.log_metric("mode_effect_design_effect", effects.design_effect)
        ranked = importance(fitted, table[split.evaluation])
        with tempfile.TemporaryDirectory() as folder:
            folder_path = Path(folder)
            if config.kind == "binary":
                figures = plots.binary_plots(fitted.name, evaluation, folder_path)
            else:
                figures = [plots.confusion_plot(fitted.name, evaluation, folder_path)]
            figures.append(plots.importance_plot(fitted.name, ranked, folder_path))
            card = folder_path / f"{fitted.name}_model_card.md"
            card.write_text(
                model_card(
                    fitted,
                    evaluation,
                    data_description=data.description,
                    split_description=split.description,
                    counts=counts,
                    importance=ranked,
                )
            )
            details = folder_path / f"{fitted.name}_metrics.json"
            details.write_text(
                json.dumps(
                    {
                        "metrics": evaluation.metrics,
                        "baseline": evaluation.baseline_metrics,
                        "oracle": evaluation.oracle_metrics,
                        "importance": ranked,
                    },
                    indent=2,
                )
            )
            for path in [*figures, card, details]:
                mlflow.log_artifact(str(path), artifact_path="evaluation")
        version = log_and_register(
            fitted.pipeline,
            kind=config.kind,
            registered_name=config.registered_name,
            example=table[split.evaluation],
            tags={"data_hash": data.data_hash, "git_commit": commit, "training_run_id": run.info.run_id},
            target=config.target,
            positive_label=config.positive_label,
            profile_text=data.profile.to_yaml() if data.profile is not None else None,
        )
    return ModelOutcome(
        name=fitted.name,
        registered_name=config.registered_name,
        version=str(version.version),
        run_id=run.info.run_id,
        calibration=fitted.calibration_method,
        counts=counts,
        metrics=evaluation.metrics,
        baseline_metrics=evaluation.baseline_metrics,
        oracle_metrics=evaluation.oracle_metrics,
    )


def book_profile(config: TrainingConfig) -> Path | None:
    """The reviewed profile of a bank's book the bundle ships (None: the project's book, or none)."""
    return Path(config.data.profile) if config.data.book and config.data.profile else None


def advisor_readings(
    config: TrainingConfig, table: pd.DataFrame, fit_rows: dict[str, np.ndarray]
) -> ModeReadings | None:
    """The mode-driven readings' levels, learnt on the rows the models that see them trained on."""
    settings = config.advisor.mode_readings if config.advisor is not None else None
    if settings is None:
        return None
    rows = np.logical_or.reduce([fit_rows[name] for name in settings.models])
    return fit_mode_readings(table[rows], settings.inputs, settings.models)


def development_figures(outcomes: list[ModelOutcome]) -> dict[str, dict[str, float]]:
    """The binary models' figures on their evaluation rows: what a backtest is compared with."""
    keys = ("auc", "ece", "brier", "base_rate", "mean_prediction")
    return {
        outcome.name: {key: float(outcome.metrics[key]) for key in keys if key in outcome.metrics}
        for outcome in outcomes
        if "auc" in outcome.metrics
    }


def train(config: TrainingConfig, *, progress: Progress | None = None) -> TrainingReport:
    """Train, evaluate, log and register every model in ``config``; return what was registered."""
    say = progress or (lambda message: None)
    say("loading data")
    data = load_training_table(config)
    commit = git_commit()
    experiment = mlflow.set_experiment(config.mlflow.experiment)
    outcomes = []
    with mlflow.start_run(run_name="train") as parent:
        mlflow.set_tags({"git_commit": commit, "data_hash": data.data_hash})
        mlflow.log_params({"data": data.description, "models": ",".join(config.models)})
        mlflow.log_metrics({"rows_in": data.rows_in, "rows_quarantined": data.rows_quarantined})
        quarantine = write_quarantine(config, data)
        if quarantine is not None:
            mlflow.log_artifact(str(quarantine), artifact_path="data")
        if data.profile is not None:
            mlflow.log_text(data.profile.to_yaml(), "data/table_profile.yaml")
        if config.source_path is not None:
            mlflow.log_text(config.source_text, f"config/{config.source_path.name}")
        mlflow.log_text(config.features.model_dump_json(indent=2), "config/features.json")
        pipelines, fit_rows, splits = {}, {}, {}
        for name in config.models:
            say(f"fitting {name}")
            fitted, evaluation, split, counts = fit_and_evaluate(name, config, data.table)
            fit_rows[name], splits[name] = split.train | split.calibration, split
            say(f"logging and registering {name}")
            outcomes.append(_log_model_run(fitted, evaluation, split, counts, data.table, data, commit))
            pipelines[name] = fitted.pipeline
        advisor_version = None
        if config.advisor is not None:
            say("fitting the recorded propensity")
            propensity = fit_recorded_propensity(config, data.table, splits["mode"])
            say("logging and registering the advisor bundle")
            with mlflow.start_run(run_name="advisor", nested=True):
                version = log_advisor(
                    {name: pipelines[name] for name in ("mode", "churn", "default")},
                    policy_path=config.advisor.policy,
                    economics_path=config.advisor.economics,
                    registered_name=config.advisor.registered_name,
                    component_versions={o.registered_name: o.version for o in outcomes},
                    example=data.table,
                    readings=advisor_readings(config, data.table, fit_rows),
                    propensity=propensity,
                    reference_rows=data.table[fit_rows["default"]],
                    development=development_figures(outcomes),
                    book=Path(config.data.book) if config.data.book else None,
                    book_profile=Path(config.data.profile)
                    if config.data.book and config.data.profile
                    else None,
                )
            advisor_version = str(version.version)
        registered = {outcome.registered_name: outcome.version for outcome in outcomes}
        if config.advisor is not None:
            registered[config.advisor.registered_name] = advisor_version
        say("making the registered versions @challenger")
        make_challengers(registered)
    return TrainingReport(
        parent.info.run_id,
        experiment.experiment_id,
        data.data_hash,
        outcomes,
        advisor_version,
        rows_in=data.rows_in,
        rows_quarantined=data.rows_quarantined,
        quarantine=quarantine,
        problems=data.problems,
    )
