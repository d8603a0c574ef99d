"""Evaluate fitted models on the evaluation rows, against the baseline and the oracle."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from crm_modes.data.schema import MODES
from crm_modes.training.fit import FittedModel, binary_target
from crm_modes.training.metrics import binary_metrics, multiclass_metrics

#: Oracle columns the synthetic book carries for each label.
ORACLE_PROBABILITY = {"default_12m": "oracle_default_probability", "churn_12m": "oracle_churn_probability"}
ORACLE_MODE = "oracle_policy_mode"


@dataclass
class Evaluation:
    """Metrics of one model on the evaluation rows, with what the plots need."""

    metrics: dict[str, object]
    baseline_metrics: dict[str, object] = field(default_factory=dict)
    oracle_metrics: dict[str, object] = field(default_factory=dict)
    y_true: np.ndarray | None = None
    y_score: np.ndarray | None = None
    labels: list[str] = field(default_factory=list)


def positive_probability(pipeline: Pipeline, table: pd.DataFrame) -> np.ndarray:
    return pipeline.predict_proba(table)[:, 1]


def evaluate(model: FittedModel, evaluation: pd.DataFrame) -> Evaluation:
    """Metrics of ``model`` (and its baseline, and the oracle where present) on ``evaluation``."""
    return evaluate_pipeline(model.pipeline, model.config, evaluation, baseline=model.baseline)


def evaluate_pipeline(
    pipeline: Pipeline, config: object, evaluation: pd.DataFrame, *, baseline: Pipeline | None = None
) -> Evaluation:
    target = config.target
    if config.kind == "binary":
        y = binary_target(evaluation[target], config).astype(int)
        p = positive_probability(pipeline, evaluation)
        result = Evaluation(binary_metrics(y, p), y_true=y, y_score=p)
        if baseline is not None:
            result.baseline_metrics = binary_metrics(y, positive_probability(baseline, evaluation))
        oracle = ORACLE_PROBABILITY.get(target)
        if oracle in evaluation:
            result.oracle_metrics = binary_metrics(y, evaluation[oracle].to_numpy())
        return result

    y = evaluation[target].astype(str).to_numpy()
    labels = [str(label) for label in pipeline.classes_]
    labels = [mode for mode in MODES if mode in labels] + [label for label in labels if label not in MODES]
    predicted = pipeline.predict(evaluation).astype(str)
    result = Evaluation(multiclass_metrics(y, predicted, labels), y_true=y, y_score=predicted, labels=labels)
    if baseline is not None:
        result.baseline_metrics = multiclass_metrics(y, baseline.predict(evaluation).astype(str), labels)
    if ORACLE_MODE in evaluation:
        result.oracle_metrics = multiclass_metrics(
            evaluation[ORACLE_MODE].astype(str).to_numpy(), predicted, labels
        )
    return result
