"""Mode effects of a logistic outcome model: counted per client, kept in the domain's order (pure).

The churn and PD models take ``assigned_mode`` as an input, and the value policy reads each row
in each mode from them, so the fitted effect of each mode drives every recommendation. Two things
make a penalized fit's own effects untrustworthy, and :func:`order_mode_effects` corrects both.

**Snapshots of one client are not independent.** A client appears in every monthly snapshot of
its facilities, its mode stays for years, and a default is labelled in each of the twelve
snapshots before it: the information about a mode's effect comes from clients, not rows. A
penalized logistic regression's coefficients ``theta`` have, to the Laplace approximation, the
posterior ``N(theta_hat, S)`` (the penalty is a Gaussian prior, ``S``
:func:`~crm_modes.models.gain_uncertainty.coefficient_covariance`), which counts every row as
independent. On the synthetic books the mode differences' variance clustered by client is 7.6 to 10.2
times that (their design effect), and the fitted effects scatter across books by as much
(docs/decisions/027-mode-effects-counted-per-client.md). So the differences of adjacent modes'
effects, ``d = D theta``, are re-weighed: their marginal posterior ``N(D theta_hat, D S D')`` is
split into the penalty's prior ``N(0, Sigma_0)`` and the data's information ``L``, the data's
information is divided by the design effect ``k`` (the mean eigenvalue of the client-clustered
sandwich covariance of ``d`` over the row-counted one), and the two recombine:
``Var(d) = (L / k + Sigma_0^-1)^-1`` and ``E(d) = Var(d) (D S D')^-1 D theta_hat / k``
(:func:`count_per_client`). A well-identified effect barely moves; one the book's deviations barely
inform shrinks towards the penalty's prior of no effect.

**The domain knows the order.** More attention does not raise default risk, nor make a client
more likely to leave; deviations from the committee's rule, the only rows where the mode varies
independently of what the rule reads, are few, and on the default book they cannot tell the sign of
responsible mode's effect on PD (docs/decisions/023-mode-effects-in-the-domain-order.md). The order
is a prior that puts no mass outside it, so the differences' posterior is truncated to ``d >= 0``
(a Gibbs sampler, :func:`truncated_moments`), which gives their mean ``d*`` and covariance ``V*``.

After each step every coefficient, the intercept included, moves to its conditional mean given the
differences' new mean, ``theta* = theta + K (d* - D theta)`` with ``K = S D' (D S D')^-1``, and the
covariance becomes ``S - K D S + K V* K'`` (the law of total variance), stored for the gains' errors
(:func:`condition_on_differences`). Where the data agree with the order, the order changes nothing;
where they do not, each difference is small and positive, by as much as the data leave room for,
never the data's wrong sign, nor exactly zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
from scipy import sparse
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
    """What the correction did: each mode's effect on the log-odds as fitted and as kept (coefficient
    times the column's step; one constant apart from the effect against any reference mode)."""

    fitted: dict[str, float]
    kept: dict[str, float]
    #: whether the effects broke the order (then ``kept`` is their posterior mean under it)
    constrained: bool
    #: the coefficients' covariance as kept, intercept first (None: as fitted, not computed)
    covariance: np.ndarray | None = None
    #: the mode differences' variance counted per client over counted per row (None: not counted)
    design_effect: float | None = None


def order_mode_effects(
    estimator: LogisticRegression,
    X: pd.DataFrame,
    y: np.ndarray,
    order: Sequence[str],
    groups: np.ndarray | None = None,
) -> OrderedEffects:
    """Count the fitted ``estimator``'s mode effects per client, then keep them in ``order`` (highest
    first), in place.

    A mode's column may be scaled (the linear features standardize every column), so its effect on
    the log-odds is its coefficient times the column's step, the difference between its value for a
    row in that mode and for a row in another: the effects compared and reported are those.

    Args:
        estimator: a binary logistic regression fitted on ``X`` and ``y`` with an L2 penalty.
        X: its feature matrix, with one column ``assigned_mode=<mode>`` per mode of ``order``.
        y: its 0/1 labels.
        order: modes from the highest effect on the log-odds to the lowest.
        groups: the client of each row (None: every row its own client, nothing re-weighed).

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

    def keep(theta: np.ndarray) -> None:
        estimator.intercept_ = theta[:1].copy()
        estimator.coef_ = theta[None, 1:].copy()

    fitted = effects()
    theta = np.concatenate([estimator.intercept_, estimator.coef_[0]])
    # D: rows are adjacent differences of effects, columns the coefficients (intercept first)
    difference = np.zeros((len(order) - 1, len(theta)))
    for row in range(len(order) - 1):
        difference[row, 1 + column[row]] = step[row]
        difference[row, 1 + column[row + 1]] = -step[row + 1]
    covariance, design_effect = None, None
    if groups is not None:
        probability = _fitted_probability(matrix, theta)
        covariance = coefficient_covariance(matrix, probability, float(estimator.C))
        mean, spread, design_effect = count_per_client(
            matrix, y, probability, theta, covariance, difference, float(estimator.C), groups
        )
        theta, covariance = condition_on_differences(theta, covariance, difference, mean, spread)
        keep(theta)
    constrained = not all(first >= second for first, second in pairwise(effects().values()))
    if constrained:
        if covariance is None:
            covariance = coefficient_covariance(
                matrix, _fitted_probability(matrix, theta), float(estimator.C)
            )
        mean, moments = truncated_moments(difference @ theta, difference @ covariance @ difference.T)
        theta, covariance = condition_on_differences(theta, covariance, difference, mean, moments)
        keep(theta)
    return OrderedEffects(
        fitted=fitted,
        kept=effects(),
        constrained=constrained,
        covariance=covariance,
        design_effect=design_effect,
    )


def _fitted_probability(matrix: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Each row's probability under the coefficients ``theta`` (intercept first)."""
    return 1.0 / (1.0 + np.exp(-(matrix @ theta[1:] + theta[0])))


def count_per_client(
    matrix: np.ndarray,
    y: np.ndarray,
    probability: np.ndarray,
    theta: np.ndarray,
    covariance: np.ndarray,
    difference: np.ndarray,
    penalty_c: float,
    groups: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean and covariance of the differences ``D theta`` with the data's information counted per
    client, and the design effect that counts it (see the module docstring).

    Args:
        matrix: the training feature matrix, rows x features (no intercept column).
        y: the 0/1 labels; ``probability`` the fitted probability of each row.
        theta: the fitted (intercept, coefficients); ``covariance`` their Laplace covariance.
        difference: ``D``, one row per difference, intercept column first.
        penalty_c: the model's ``C``: each coefficient's prior is ``N(0, C)``, the intercept's flat.
        groups: the client of each row.
    """
    design = np.column_stack([np.ones(len(matrix)), matrix])
    along = difference @ covariance  # how each difference's estimate moves with each row's score
    weighted = design @ along.T * np.sqrt(probability * (1.0 - probability))[:, None]
    per_row = weighted.T @ weighted  # the sandwich counting every row as independent
    codes = pd.factorize(groups)[0]
    scores = design @ along.T * (y - probability)[:, None]
    summed = sparse.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes))))) @ scores
    per_client = summed.T @ summed  # the sandwich clustered by client
    design_effect = max(1.0, float(np.trace(per_client @ np.linalg.inv(per_row))) / len(difference))
    posterior = difference @ covariance @ difference.T
    prior = penalty_c * difference[:, 1:] @ difference[:, 1:].T
    posterior_precision, prior_precision = np.linalg.inv(posterior), np.linalg.inv(prior)
    # the data's information is what the fit adds to the prior's; never negative (rounding aside)
    values, vectors = np.linalg.eigh(posterior_precision - prior_precision)
    data = (vectors * np.maximum(values, 0.0)) @ vectors.T
    spread = np.linalg.inv(data / design_effect + prior_precision)
    mean = spread @ posterior_precision @ (difference @ theta) / design_effect
    return mean, spread, design_effect


def condition_on_differences(
    theta: np.ndarray, covariance: np.ndarray, difference: np.ndarray, mean: np.ndarray, spread: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every coefficient at its conditional mean given that the differences ``D theta`` have ``mean``
    and covariance ``spread``; the coefficients' covariance by the law of total variance."""
    gain = covariance @ difference.T @ np.linalg.inv(difference @ covariance @ difference.T)
    return (
        theta + gain @ (mean - difference @ theta),
        covariance - gain @ difference @ covariance + gain @ spread @ gain.T,
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
