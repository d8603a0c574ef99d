"""Fit one model: feature pipeline + estimator, calibration, baseline (pure: no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from crm_modes.features.builder import build_feature_pipeline, categorical_outputs
from crm_modes.features.config import FeatureConfig
from crm_modes.models.estimators import flavor_of, make_estimator
from crm_modes.models.gain_uncertainty import COVARIANCE, attach_covariance
from crm_modes.shared.errors import InputError
from crm_modes.training.clients import GROUP_COLUMN
from crm_modes.training.config import ModelConfig
from crm_modes.training.mode_effects import OrderedEffects, order_mode_effects

CALIBRATION_METHODS = ("isotonic", "sigmoid")
#: What every model is compared with, on the same features and rows.
BASELINE_TYPE = "logistic_regression"
#: The baseline solves the same penalized likelihood with Newton steps: a few iterations
#: instead of lbfgs's hundred on a multi-class problem (docs/decisions/011-baseline-on-a-sample.md).
BASELINE_PARAMS = {"solver": "newton-cholesky"}


@dataclass
class FittedModel:
    """A fitted model with what training learned about it."""

    name: str
    config: ModelConfig
    pipeline: Pipeline
    calibration_method: str
    calibration_scores: dict[str, float] = field(default_factory=dict)
    baseline: Pipeline | None = None
    tuned_params: dict[str, object] = field(default_factory=dict)
    #: Training rows the baseline was fitted on (:func:`baseline_sample`).
    baseline_rows: int = 0
    #: The mode effects as fitted and as kept in the configured order (None: unconstrained).
    mode_effects: OrderedEffects | None = None


def binary_target(values: pd.Series, config: ModelConfig) -> np.ndarray:
    """0/1 labels of a binary model; raise naming the column if it holds other than two values."""
    present = values.dropna()
    distinct = pd.unique(present)
    if len(distinct) > 2:
        shown = sorted(map(str, distinct))[:6]
        raise InputError(
            f"target {config.target!r} of binary model holds {len(distinct)} distinct values {shown}; "
            "a binary model needs exactly two"
        )
    if config.positive_label is not None:
        if str(config.positive_label) not in set(map(str, distinct)):
            raise InputError(
                f"positive_label {config.positive_label!r} does not occur in target {config.target!r}"
            )
        return (present.astype(str) == str(config.positive_label)).reindex(values.index).to_numpy(dtype=float)
    numeric = pd.to_numeric(present.astype(str), errors="coerce")
    if numeric.isna().any() or not set(numeric.unique()) <= {0, 1}:
        raise InputError(
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
    tuned: dict[str, object] = {}
    if config.tuning.enabled:
        tuned = tune(config, features, train)
    pipeline, effects = _fit_pipeline(
        config,
        features,
        train,
        config.estimator.type,
        {**config.estimator.params, **tuned},
        # a logistic model's effects only (the configuration refuses the order with another estimator)
        mode_effect_order=config.mode_effect_order if config.estimator.type == BASELINE_TYPE else None,
        # a binary logistic model carries its coefficients' covariance: a gain's standard error
        covariance=config.estimator.type == BASELINE_TYPE and config.kind == "binary",
    )
    baseline, baseline_train = None, train.iloc[:0]
    if config.baseline and config.estimator.type != BASELINE_TYPE:  # a model is not its own baseline
        baseline_train = baseline_sample(train, config)
        baseline, _ = _fit_pipeline(config, features, baseline_train, BASELINE_TYPE, BASELINE_PARAMS)
    fitted = FittedModel(
        name,
        config,
        pipeline,
        "none",
        baseline=baseline,
        tuned_params=tuned,
        baseline_rows=len(baseline_train),
        mode_effects=effects,
    )
    if config.kind == "multiclass" or config.calibration == "none":
        return fitted
    if config.calibration_folds is not None:
        return _cross_fitted(fitted, train, baseline_train)

    y_cal = binary_target(calibration[config.target], config)
    X_cal = pipeline["features"].transform(calibration)
    estimator = pipeline["model"]
    scores = _compare_calibrations(estimator, X_cal, y_cal) if config.calibration == "auto" else {}
    method = min(scores, key=scores.get) if scores else config.calibration
    calibrated = CalibratedClassifierCV(FrozenEstimator(estimator), method=method).fit(X_cal, y_cal)
    if baseline is not None:
        baseline_calibrated = CalibratedClassifierCV(FrozenEstimator(baseline["model"]), method="sigmoid")
        baseline_calibrated.fit(baseline["features"].transform(calibration), y_cal)
        baseline = Pipeline([("features", baseline["features"]), ("model", baseline_calibrated)])
    final = Pipeline([("features", pipeline["features"]), ("model", calibrated)])
    return replace(
        fitted, pipeline=final, calibration_method=method, calibration_scores=scores, baseline=baseline
    )


def _cross_fitted(fitted: FittedModel, train: pd.DataFrame, baseline_train: pd.DataFrame) -> FittedModel:
    """Calibrate by K-fold cross-fitting on the training rows (an ensemble of K calibrated copies).

    The baseline is cross-fitted on ``baseline_train``, the rows its features were fitted on.
    """
    config, pipeline, baseline = fitted.config, fitted.pipeline, fitted.baseline
    # Shuffle once with a fixed seed, then use plain stratified folds: the folds do not follow
    # the file's row order, and no splitter object ends up in the model file.
    train = train.sample(frac=1.0, random_state=0)
    y = binary_target(train[config.target], config)
    X = pipeline["features"].transform(train)
    folds = config.calibration_folds
    calibrated = CalibratedClassifierCV(clone(pipeline["model"]), method=config.calibration, cv=folds).fit(
        X, y
    )
    final = Pipeline([("features", pipeline["features"]), ("model", calibrated)])
    if baseline is not None:
        baseline_train = baseline_train.sample(frac=1.0, random_state=0)  # shuffled as the model's rows
        X_baseline = baseline["features"].transform(baseline_train)
        baseline_model = CalibratedClassifierCV(clone(baseline["model"]), method="sigmoid", cv=folds)
        baseline_model.fit(X_baseline, binary_target(baseline_train[config.target], config))
        baseline = Pipeline([("features", baseline["features"]), ("model", baseline_model)])
    method = f"{config.calibration} ({config.calibration_folds}-fold cross-fitted)"
    return replace(fitted, pipeline=final, calibration_method=method, baseline=baseline)


def tune(config: ModelConfig, features: FeatureConfig, train: pd.DataFrame) -> dict[str, object]:
    """Best estimator parameters by successive halving, cross-validated on ``train`` alone.

    The whole pipeline (features included) is refit inside every inner fold.
    """
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401 - enables the import below
    from sklearn.model_selection import HalvingRandomSearchCV, StratifiedKFold

    flavor = flavor_of(config.estimator.type)
    categorical = categorical_outputs(features, target=config.target) if flavor == "tree" else None
    pipeline = Pipeline(
        [
            ("features", build_feature_pipeline(features, target=config.target, flavor=flavor)),
            (
                "model",
                make_estimator(config.estimator.type, config.estimator.params, categorical=categorical),
            ),
        ]
    )
    unknown = sorted(set(config.tuning.space) - set(pipeline["model"].get_params()))
    if unknown:
        raise InputError(f"tuning.space names parameters {config.estimator.type} does not take: {unknown}")
    y = train[config.target]
    y = binary_target(y, config) if config.kind == "binary" else y.astype(str).to_numpy()
    search = HalvingRandomSearchCV(
        pipeline,
        {f"model__{name}": values for name, values in config.tuning.space.items()},
        n_candidates=config.tuning.candidates,
        factor=config.tuning.factor,
        min_resources=min(config.tuning.min_resources, len(train) // 2),
        cv=StratifiedKFold(config.tuning.inner_folds, shuffle=True, random_state=config.tuning.seed),
        scoring="roc_auc" if config.kind == "binary" else "accuracy",
        random_state=config.tuning.seed,
        refit=False,
        n_jobs=1,
    )
    search.fit(train, y)
    return {name.removeprefix("model__"): value for name, value in search.best_params_.items()}


def baseline_sample(train: pd.DataFrame, config: ModelConfig) -> pd.DataFrame:
    """The rows the baseline is fitted on: all of ``train``, or a fixed random sample of ``baseline_rows``.

    The baseline is a reference, not the model: a logistic regression with a few hundred
    coefficients is estimated as well from 100,000 rows as from all of them, at a fraction of
    the Newton steps' cost (docs/decisions/011-baseline-on-a-sample.md).
    """
    limit = config.baseline_rows
    if limit is None or len(train) <= limit:
        return train
    return train.sample(n=limit, random_state=0)


def _fit_pipeline(
    config: ModelConfig,
    features: FeatureConfig,
    train: pd.DataFrame,
    kind: str,
    params: dict,
    *,
    mode_effect_order: list[str] | None = None,
    covariance: bool = False,
) -> tuple[Pipeline, OrderedEffects | None]:
    flavor = flavor_of(kind)
    feature_pipeline = build_feature_pipeline(features, target=config.target, flavor=flavor)
    categorical = categorical_outputs(features, target=config.target) if flavor == "tree" else None
    estimator = make_estimator(kind, params, categorical=categorical)
    y = train[config.target]
    y = binary_target(y, config) if config.kind == "binary" else y.astype(str).to_numpy()
    X = feature_pipeline.fit_transform(train)
    estimator.fit(X, y)
    # a client's snapshots counted together (docs/decisions/027-mode-effects-counted-per-client.md)
    groups = train[GROUP_COLUMN].to_numpy() if GROUP_COLUMN in train else None
    effects = order_mode_effects(estimator, X, y, mode_effect_order, groups) if mode_effect_order else None
    if covariance:
        if effects is not None and effects.covariance is not None:  # counted per client, in order
            setattr(estimator, COVARIANCE, effects.covariance)
        else:
            attach_covariance(estimator, X)
    return Pipeline([("features", feature_pipeline), ("model", estimator)]), effects


def _compare_calibrations(estimator: object, X: pd.DataFrame, y: np.ndarray) -> dict[str, float]:
    """Log loss of each calibration method fitted on one half of the calibration rows, scored on the other."""
    fit_rows, score_rows = train_test_split(np.arange(len(y)), test_size=0.5, random_state=0, stratify=y)
    scores = {}
    for method in CALIBRATION_METHODS:
        candidate = CalibratedClassifierCV(FrozenEstimator(estimator), method=method)
        candidate.fit(X.iloc[fit_rows], y[fit_rows])
        scores[method] = float(log_loss(y[score_rows], candidate.predict_proba(X.iloc[score_rows])[:, 1]))
    return scores
