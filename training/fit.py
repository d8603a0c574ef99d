"""Fit one model: feature pipeline + estimator, calibration, benchmark (pure: no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from crm_modes.features.builder import build_feature_pipeline, categorical_outputs
from crm_modes.features.config import FeatureConfig
from crm_modes.models.estimators import flavor_of, make_estimator
from crm_modes.training.config import ModelConfig

CALIBRATION_METHODS = ("isotonic", "sigmoid")


@dataclass
class FittedModel:
    """A fitted model with what training learned about it."""

    name: str
    config: ModelConfig
    pipeline: Pipeline
    calibration_method: str
    calibration_scores: dict[str, float] = field(default_factory=dict)
    benchmark: Pipeline | None = None


def binary_target(values: pd.Series, config: ModelConfig) -> np.ndarray:
    """0/1 labels of a binary model; raise naming the column if it holds other than two values."""
    present = values.dropna()
    distinct = pd.unique(present)
    if len(distinct) > 2:
        shown = sorted(map(str, distinct))[:6]
        raise ValueError(
            f"target {config.target!r} of binary model holds {len(distinct)} distinct values {shown}; "
            "a binary model needs exactly two"
        )
    if config.positive_label is not None:
        if str(config.positive_label) not in set(map(str, distinct)):
            raise ValueError(
                f"positive_label {config.positive_label!r} does not occur in target {config.target!r}"
            )
        return (present.astype(str) == str(config.positive_label)).reindex(values.index).to_numpy(dtype=float)
    numeric = pd.to_numeric(present, errors="coerce")
    if numeric.isna().any() or not set(numeric.unique()) <= {0, 1}:
        raise ValueError(
            f"target {config.target!r} holds {sorted(map(str, distinct))}; "
            "set positive_label to say which is 1"
        )
    return numeric.reindex(values.index).to_numpy(dtype=float)


def fit_model(
    name: str,
    config: ModelConfig,
    features: FeatureConfig,
    train: pd.DataFrame,
    calibration: pd.DataFrame,
) -> FittedModel:
    """Fit the feature pipeline and estimator on ``train``; calibrate binary models on ``calibration``.

    The returned pipeline is ``Pipeline([("features", ...), ("model", ...)])``; for a
    calibrated binary model the last step is a ``CalibratedClassifierCV`` around the
    frozen, fitted estimator, so training and scoring always share the same features.
    """
    pipeline = _fit_pipeline(config, features, train, config.estimator.type, config.estimator.params)
    benchmark = None
    if config.benchmark:
        benchmark = _fit_pipeline(config, features, train, "logistic_regression", {})
    if config.kind == "multiclass" or config.calibration == "none":
        return FittedModel(name, config, pipeline, "none", benchmark=benchmark)

    y_cal = binary_target(calibration[config.target], config)
    X_cal = pipeline["features"].transform(calibration)
    estimator = pipeline["model"]
    scores = _compare_calibrations(estimator, X_cal, y_cal) if config.calibration == "auto" else {}
    method = min(scores, key=scores.get) if scores else config.calibration
    calibrated = CalibratedClassifierCV(FrozenEstimator(estimator), method=method).fit(X_cal, y_cal)
    if benchmark is not None:
        benchmark_calibrated = CalibratedClassifierCV(FrozenEstimator(benchmark["model"]), method="sigmoid")
        benchmark_calibrated.fit(benchmark["features"].transform(calibration), y_cal)
        benchmark = Pipeline([("features", benchmark["features"]), ("model", benchmark_calibrated)])
    final = Pipeline([("features", pipeline["features"]), ("model", calibrated)])
    return FittedModel(name, config, final, method, scores, benchmark)


def _fit_pipeline(
    config: ModelConfig, features: FeatureConfig, train: pd.DataFrame, kind: str, params: dict
) -> Pipeline:
    flavor = flavor_of(kind)
    feature_pipeline = build_feature_pipeline(features, target=config.target, flavor=flavor)
    categorical = categorical_outputs(features, target=config.target) if flavor == "tree" else None
    estimator = make_estimator(kind, params, categorical=categorical)
    y = train[config.target]
    y = binary_target(y, config) if config.kind == "binary" else y.astype(str).to_numpy()
    X = feature_pipeline.fit_transform(train)
    estimator.fit(X, y)
    return Pipeline([("features", feature_pipeline), ("model", estimator)])


def _compare_calibrations(estimator: object, X: pd.DataFrame, y: np.ndarray) -> dict[str, float]:
    """Log loss of each calibration method fitted on one half of the calibration rows, scored on the other."""
    fit_rows, score_rows = train_test_split(np.arange(len(y)), test_size=0.5, random_state=0, stratify=y)
    scores = {}
    for method in CALIBRATION_METHODS:
        candidate = CalibratedClassifierCV(FrozenEstimator(estimator), method=method)
        candidate.fit(X.iloc[fit_rows], y[fit_rows])
        scores[method] = float(log_loss(y[score_rows], candidate.predict_proba(X.iloc[score_rows])[:, 1]))
    return scores
