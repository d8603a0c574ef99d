"""Estimators for the mode, churn and default-risk models, built from configuration."""

from __future__ import annotations

from typing import Any

from sklearn.base import ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from crm_modes.models.lightgbm_model import LightGBMClassifier
from crm_modes.shared.errors import InputError

RANDOM_STATE = 0

_DEFAULTS: dict[str, dict[str, Any]] = {
    "hist_gradient_boosting": {"random_state": RANDOM_STATE},
    "lightgbm": {"random_state": RANDOM_STATE},
    "logistic_regression": {"max_iter": 2000, "C": 1.0},
}
#: Estimator kinds that take the tree flavor of the feature pipeline (category codes).
TREE_KINDS = frozenset({"hist_gradient_boosting", "lightgbm"})


def make_estimator(
    kind: str, params: dict[str, Any], *, categorical: list[str] | None = None
) -> ClassifierMixin:
    """A fresh, unfitted classifier.

    Args:
        kind: ``"hist_gradient_boosting"`` or ``"lightgbm"`` (tree flavor: native categorical
            codes in the columns named by ``categorical``) or ``"logistic_regression"`` (linear
            flavor).
        params: estimator parameters from the configuration; they override the defaults.
        categorical: output columns of the feature pipeline that hold category codes.

    Raises:
        ValueError naming the estimator kind or a parameter it does not accept.
    """
    if kind not in _DEFAULTS:
        raise InputError(f"unknown estimator type {kind!r}; known: {sorted(_DEFAULTS)}")
    settings = {**_DEFAULTS[kind], **params}
    if kind in TREE_KINDS:
        settings.setdefault("categorical_features", categorical or None)
    if kind == "hist_gradient_boosting":
        estimator: ClassifierMixin = HistGradientBoostingClassifier()
    elif kind == "lightgbm":
        estimator = LightGBMClassifier()
    else:
        estimator = LogisticRegression()
    unknown = sorted(set(settings) - set(estimator.get_params()))
    if unknown:
        raise InputError(f"{kind} does not take parameters {unknown}")
    return estimator.set_params(**settings)


def flavor_of(kind: str) -> str:
    """The feature-pipeline flavor an estimator kind needs."""
    return "tree" if kind in TREE_KINDS else "linear"


def fitted_estimators(pipeline: Pipeline) -> list[object]:
    """The fitted estimators inside a model pipeline: one, or one per calibration fold."""
    model = pipeline["model"]
    inner = [calibrated.estimator for calibrated in getattr(model, "calibrated_classifiers_", [])] or [model]
    return [getattr(estimator, "estimator", estimator) for estimator in inner]  # unwrap FrozenEstimator
