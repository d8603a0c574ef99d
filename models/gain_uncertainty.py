"""How sure a recommended move is: the standard error of each mode's gain over today's mode.

A move is recommended where one mode's value beats today's by more than the switching cost. The
values come from fitted churn and PD models, so a gain is an estimate, and the largest estimated
gains are the likeliest to be overestimated (the winner's curse). With ``move_confidence`` k in
the economics, a facility moves only where its gain beats k standard errors of that gain.

The standard error follows the coefficients' uncertainty into the gain (the delta method). A
penalized logistic regression's coefficients ``theta = (intercept, w)`` have the Laplace
covariance ``S = (Z' W Z + P / C)^-1``, with ``Z = [1, X]`` the training matrix, ``W`` the fitted
``p (1 - p)``, and ``P`` the penalty's identity on ``w`` (not the intercept) at the model's ``C``
(:func:`coefficient_covariance`, computed once at training and stored with the estimator). Where
the model declares the domain's order of its mode effects (training/mode_effects.py), the stored
covariance is the one that step computes: the mode effects counted per client, under the order.

A facility's value in mode m is linear in its probabilities, ``v_m = ... - a_m d_m - b_m c_m``, and
a probability's gradient in ``theta`` is ``g_m = s p_m (1 - p_m) [1, x_m]`` (``s`` the sigmoid
calibration's slope, 1 without one). So the gain of m over today's mode t, through one model, has
the gradient ``a_m g_m - a_t g_t``, and its variance is that vector's quadratic form in ``S``; the
churn and PD models are fitted separately, and their variances add (:func:`gain_standard_errors`).
The calibration's own two parameters, fitted on the calibration months, are taken as known.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from crm_modes.features import fast
from crm_modes.features.columns import Columns
from crm_modes.models import sklearn_adapter
from crm_modes.models.estimators import fitted_estimators

#: The attribute of a fitted LogisticRegression holding its coefficients' covariance, intercept first.
COVARIANCE = "coef_covariance_"
#: Rows whose gradients are formed at once (each mode's matrix and gradient: rows x features).
CHUNK_ROWS = 20_000


def coefficient_covariance(matrix: np.ndarray, probability: np.ndarray, penalty_c: float) -> np.ndarray:
    """The Laplace covariance of an L2-penalized logistic regression's (intercept, coefficients).

    Args:
        matrix: the training feature matrix, rows x features.
        probability: the fitted probability of each training row.
        penalty_c: the model's ``C`` (the loss weighs ``C`` against half the squared coefficients).

    Returns:
        Shape (1 + features, 1 + features), the intercept first.
    """
    weight = probability * (1.0 - probability)
    design = np.column_stack([np.ones(len(matrix)), matrix])
    information = (design * weight[:, None]).T @ design
    information[1:, 1:] += np.eye(matrix.shape[1]) / penalty_c
    return np.linalg.pinv(information, hermitian=True)


def attach_covariance(estimator: LogisticRegression, X: pd.DataFrame | np.ndarray) -> None:
    """Store the fitted ``estimator``'s coefficient covariance on it (:data:`COVARIANCE`), from its
    training matrix ``X``: it is then saved and loaded with the estimator."""
    probability = estimator.predict_proba(X)[:, 1]
    matrix = np.asarray(X, dtype=np.float64)
    setattr(estimator, COVARIANCE, coefficient_covariance(matrix, probability, float(estimator.C)))


def covariance_of(pipeline: Pipeline) -> np.ndarray | None:
    """The coefficient covariance stored on the logistic regression inside ``pipeline`` (plain or
    sigmoid-calibrated), or None: another estimator, or one fitted without it."""
    if not sklearn_adapter.LinearLogistic.applies_to(pipeline["model"]):
        return None  # not one logistic regression (an ensemble of cross-fitted copies, trees)
    for estimator in fitted_estimators(pipeline):  # unwrapped from the calibration
        covariance = getattr(estimator, COVARIANCE, None)
        if isinstance(estimator, LogisticRegression) and covariance is not None:
            return np.asarray(covariance, dtype=np.float64)
    return None


def _gradients(pipeline: Pipeline, variants: Sequence[Columns], slope: float) -> list[np.ndarray]:
    """Each variant's gradient of the positive probability in (intercept, coefficients), rows x (1 +
    features): ``s p (1 - p) [1, x]``."""
    model = pipeline["model"]
    gradients = []
    for variant in variants:
        matrix = fast.matrix(pipeline["features"], variant)
        probability = sklearn_adapter.predict_proba(model, matrix, fast.feature_names(pipeline["features"]))[
            :, 1
        ]
        scale = slope * probability * (1.0 - probability)
        gradients.append(np.column_stack([scale, matrix * scale[:, None]]))
    return gradients


def _slope(pipeline: Pipeline) -> float:
    """The calibration's slope on the logistic model's log-odds (1 without a calibration)."""
    model = pipeline["model"]
    return (
        -sklearn_adapter.LinearLogistic(model).a if sklearn_adapter.LinearLogistic.applies_to(model) else 1.0
    )


def gain_standard_errors(
    models: Sequence[tuple[Pipeline, Sequence[Columns], np.ndarray]], mode_today: np.ndarray
) -> np.ndarray:
    """The standard error of each mode's value less today's, shape (rows, modes): 0 in today's mode
    and for a facility with no mode today. Memory grows with rows x features x modes: callers pass
    chunks of rows (:data:`CHUNK_ROWS`).

    Args:
        models: per outcome model: its pipeline (a logistic regression with its covariance), the
            rows as it sees them in each mode (MODES order), and the value's slope in its probability
            in each mode, shape (rows, modes).
        mode_today: today's mode of each row (index into MODES; -1: none).

    Raises:
        ValueError: a model carries no coefficient covariance.
    """
    n = len(mode_today)
    modes = len(models[0][1]) if models else 0
    variance = np.zeros((n, modes))
    rows = np.arange(n)
    known = mode_today >= 0
    today = np.where(known, mode_today, 0)
    for pipeline, variants, value_slope in models:
        covariance = covariance_of(pipeline)
        if covariance is None:
            raise ValueError("a gain's standard error needs logistic churn and PD models fitted with it")
        gradients = _gradients(pipeline, variants, _slope(pipeline))
        weighted = np.stack([value_slope[:, [mode]] * gradient for mode, gradient in enumerate(gradients)])
        base = weighted[today, rows]  # the gradient of today's value, row by row
        for mode in range(modes):
            difference = weighted[mode] - base
            variance[:, mode] += ((difference @ covariance) * difference).sum(axis=1)
    variance[~known] = 0.0
    variance[rows[known], mode_today[known]] = 0.0
    return np.sqrt(np.maximum(variance, 0.0))
