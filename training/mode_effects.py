"""Mode effects of a logistic outcome model kept in the domain's order (pure: no I/O).

The churn and PD models take ``assigned_mode`` as an input, and the value policy reads each row
in each mode from them, so the fitted effect of each mode drives every recommendation. Deviations
from the committee's rule, the only rows where the mode varies independently of what the rule
reads, are few; on the default book they cannot tell the sign of responsible mode's effect on PD
(docs/decisions/023-mode-effects-in-the-domain-order.md). The domain can: more attention does not
raise default risk, nor make a client more likely to leave.

:func:`order_mode_effects` keeps the effects in a configured order (highest log-odds first) by
taking their posterior mean under it. A penalized logistic regression's coefficients ``theta`` have,
to the Laplace approximation, the posterior ``N(theta_hat, S)`` (the penalty is a Gaussian prior,
``S`` :func:`~crm_modes.models.gain_uncertainty.coefficient_covariance`). The order is a prior that
puts no mass outside it, so the effects' posterior is that normal truncated to the order:

- the differences of adjacent modes' effects, ``d = D theta``, are drawn from ``N(D theta_hat,
  D S D')`` truncated to ``d >= 0`` (a Gibbs sampler, :func:`truncated_moments`), which gives their
  mean ``d*`` and covariance ``V*``;
- every coefficient, the intercept included, moves to its conditional mean given ``d*``,
  ``theta* = theta_hat + K (d* - D theta_hat)`` with ``K = S D' (D S D')^-1``, and the covariance
  becomes ``S - K D S + K V* K'`` (the law of total variance), stored for the gains' errors.

Where the data agree with the order nothing changes. Where they do not, each difference is small
and positive, by as much as the data leave room for, never the data's wrong sign, nor exactly zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
from scipy.stats import truncnorm
from sklearn.linear_model import LogisticRegression

from crm_modes.models.gain_uncertainty import coefficient_covariance
from crm_modes.shared.errors import InputError

MODE_FEATURE = "assigned_mode={}"
#: Independent Gibbs chains and the sweeps each runs: the chains' last states are the draws.
CHAINS = 5_000
SWEEPS = 30
SEED = 0


@dataclass(frozen=True)
class OrderedEffects:
    """What the order did: each mode's effect on the log-odds as fitted and as kept (coefficient
    times the column's step; one constant apart from the effect against any reference mode)."""

    fitted: dict[str, float]
    kept: dict[str, float]
    #: whether the fitted effects broke the order (then ``kept`` is their posterior mean under it)
    constrained: bool
    #: the coefficients' covariance under the order, intercept first (None: as fitted, not computed)
    covariance: np.ndarray | None = None


def order_mode_effects(
    estimator: LogisticRegression, X: pd.DataFrame, y: np.ndarray, order: Sequence[str]
) -> OrderedEffects:
    """Keep the fitted ``estimator``'s mode effects in ``order`` (highest first), in place.

    A mode's column may be scaled (the linear features standardize every column), so its effect on
    the log-odds is its coefficient times the column's step, the difference between its value for a
    row in that mode and for a row in another: the effects compared and reported are those.

    Args:
        estimator: a binary logistic regression fitted on ``X`` and ``y`` with an L2 penalty.
        X: its feature matrix, with one column ``assigned_mode=<mode>`` per mode of ``order``.
        y: its 0/1 labels.
        order: modes from the highest effect on the log-odds to the lowest.

    Raises:
        InputError: ``X`` has no column for a mode of ``order``, or one that never takes two values.
    """
    names = list(X.columns)
    missing = [mode for mode in order if MODE_FEATURE.format(mode) not in names]
    if missing:
        raise InputError(f"mode_effect_order names modes the model does not read: {missing}")
    column = [names.index(MODE_FEATURE.format(mode)) for mode in order]
    matrix = X.to_numpy(dtype=np.float64)
    step = np.ptp(matrix[:, column], axis=0) if len(matrix) else np.zeros(len(order))
    flat = [mode for mode, size in zip(order, step, strict=True) if not size > 0]
    if flat:
        raise InputError(
            f"mode_effect_order: no training row is served in {flat}, so no effect can be ordered"
        )

    def effects() -> dict[str, float]:
        return {
            mode: float(estimator.coef_[0, c]) * s for mode, c, s in zip(order, column, step, strict=True)
        }

    fitted = effects()
    values = list(fitted.values())
    if all(first >= second for first, second in pairwise(values)):
        return OrderedEffects(fitted=fitted, kept=fitted, constrained=False)

    theta = np.concatenate([estimator.intercept_, estimator.coef_[0]])
    probability = 1.0 / (1.0 + np.exp(-(matrix @ theta[1:] + theta[0])))
    covariance = coefficient_covariance(matrix, probability, float(estimator.C))
    # D: rows are adjacent differences of effects, columns the coefficients (intercept first)
    difference = np.zeros((len(order) - 1, len(theta)))
    for row in range(len(order) - 1):
        difference[row, 1 + column[row]] = step[row]
        difference[row, 1 + column[row + 1]] = -step[row + 1]
    spread = difference @ covariance @ difference.T
    mean, moments = truncated_moments(difference @ theta, spread)
    gain = covariance @ difference.T @ np.linalg.inv(spread)
    kept = theta + gain @ (mean - difference @ theta)
    estimator.intercept_ = kept[:1].copy()
    estimator.coef_ = kept[None, 1:].copy()
    return OrderedEffects(
        fitted=fitted,
        kept=effects(),
        constrained=True,
        covariance=covariance - gain @ difference @ covariance + gain @ moments @ gain.T,
    )


def truncated_moments(mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of ``N(mean, covariance)`` truncated to every coordinate >= 0.

    Coordinate by coordinate Gibbs sampling (each coordinate's conditional is a normal truncated at
    zero), :data:`CHAINS` independent chains of :data:`SWEEPS` sweeps from a point inside the
    region, a fixed seed: the same inputs give the same moments.
    """
    rng = np.random.default_rng(SEED)
    precision = np.linalg.inv(covariance)
    scale = np.sqrt(np.diag(covariance))
    state = np.tile(np.maximum(mean, 0.1 * scale), (CHAINS, 1))
    for _ in range(SWEEPS):
        for index in range(len(mean)):
            others = np.delete(np.arange(len(mean)), index)
            shift = (state[:, others] - mean[others]) @ precision[index, others] / precision[index, index]
            centre = mean[index] - shift
            sd = 1.0 / np.sqrt(precision[index, index])
            state[:, index] = truncnorm.rvs(-centre / sd, np.inf, loc=centre, scale=sd, random_state=rng)
    return state.mean(axis=0), np.cov(state, rowvar=False).reshape(len(mean), len(mean))
