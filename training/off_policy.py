"""The value of a mode policy from logged data: the doubly robust estimate and its bootstrap interval.

Pure functions on arrays; no I/O. Modes are indices into :data:`crm_modes.data.schema.MODES`.

For logged rows ``(x_i, a_i, r_i)`` (the mode applied, the value realised), an outcome
model ``mu(x, m)`` (the advisor's value of each mode) and a propensity model ``p(m | x)`` (the
committee model), the doubly robust estimate of a deterministic policy ``pi`` (Dudik,
Langford and Li, "Doubly robust policy evaluation and learning", ICML 2011) is

    V = sum_i mu(x_i, pi_i) + n / sum_i w_i * sum_i w_i (r_i - mu(x_i, a_i)),
    w_i = 1[a_i = pi_i] / p(a_i | x_i)

in its self-normalized form: the weights of the rows that follow the policy are scaled to
average one over all rows, as they do in expectation when the propensities are right. The
plain form (``n / sum w`` left out) is unbiased when either the outcome model or the
propensities are right, but a committee that rarely deviates makes the propensities of
exactly the informative rows small and hard to estimate, and a weight that errs shifts the plain
estimate by all its rows' residuals. The mean weight, overall and per mode (:func:`mode_weights`),
is reported as a diagnostic. Propensities below a floor are clipped there (the count is
reported). A policy that moves a facility away from the mode it is in pays the switching
cost, known exactly, so it is subtracted as it is.

Rows of one client are not independent (shared credit quality, several facilities, twelve
monthly snapshots), so the interval resamples clients, not rows (a cluster bootstrap), and
recomputes the normalization in every resample. A bootstrap cannot see what its sample lacks: where
a handful of clients' outcomes (a default of a large facility at a high weight) carry most of a
gain's variance, the interval is not to be trusted, and :func:`gain_concentration` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from crm_modes.data.schema import MODES
from crm_modes.models.class_calibration import apply_steps, isotonic_steps


@dataclass(frozen=True)
class Estimate:
    """A total over the rows with its bootstrap interval."""

    value: float
    lower: float
    upper: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "lower": self.lower, "upper": self.upper}


@dataclass(frozen=True)
class DoublyRobust:
    """Per-row parts of the doubly robust estimate of one policy.

    Attributes:
        direct: ``mu(x_i, pi_i)``, less the switching cost where the policy moves the facility.
        residual: ``w_i (r_i - mu(x_i, a_i))``, zero where the policy differs from the log.
        weight: ``w_i``, zero where the policy differs from the log.
        clipped: rows that follow the policy and whose propensity was raised to the floor.
    """

    direct: np.ndarray
    residual: np.ndarray
    weight: np.ndarray
    clipped: int

    @property
    def value(self) -> float:
        """The self-normalized estimate (see the module docstring)."""
        return float(
            _self_normalized(self.direct.sum(), self.residual.sum(), self.weight.sum(), self.direct.size)
        )

    @property
    def mean_weight(self) -> float:
        """Average weight over all rows; near 1 when the propensities are right."""
        return float(self.weight.mean()) if self.weight.size else float("nan")


def _self_normalized(
    direct: ArrayLike, residual: ArrayLike, weight: ArrayLike, rows: ArrayLike
) -> np.ndarray:
    """``direct + residual x rows / weight`` (the residual term is 0 where no row follows the policy)."""
    residual, weight = np.asarray(residual, dtype=float), np.asarray(weight, dtype=float)
    scaled = np.divide(residual * rows, weight, out=np.zeros_like(residual), where=weight > 0)
    return direct + scaled


def doubly_robust(
    outcome: np.ndarray,
    logged: np.ndarray,
    realised: np.ndarray,
    propensity: np.ndarray,
    policy: np.ndarray,
    *,
    switching_cost: float,
    propensity_floor: float,
) -> DoublyRobust:
    """The parts of the doubly robust estimate of ``policy``.

    Args:
        outcome: ``mu(x_i, m)``, shape (n, modes).
        logged: the mode each row was served in, shape (n,).
        realised: the value each row realised in that mode, shape (n,).
        propensity: ``p(m | x_i)``, shape (n, modes).
        policy: the mode the evaluated policy chooses for each row, shape (n,).
        switching_cost: paid once where ``policy`` differs from ``logged``.
        propensity_floor: propensities below it are raised to it.
    """
    rows = np.arange(logged.shape[0])
    followed = policy == logged
    logged_propensity = propensity[rows, logged]
    clipped = int((followed & (logged_propensity < propensity_floor)).sum())
    weight = np.where(followed, 1.0 / np.maximum(logged_propensity, propensity_floor), 0.0)
    return DoublyRobust(
        direct=outcome[rows, policy] - switching_cost * ~followed,
        residual=weight * (realised - outcome[rows, logged]),
        weight=weight,
        clipped=clipped,
    )


def mode_weights(logged: np.ndarray, propensity: np.ndarray, floor: float) -> dict[str, float]:
    """Per mode, the mean over every row of ``1[a = m] / p(m | x)`` (propensities clipped at
    ``floor``): 1 for each mode when the propensities are right, below 1 where the model gives the
    mode applied too much probability, above where too little. The check of the propensities
    behind every inverse-probability weight.
    """
    weights = {}
    for index, mode in enumerate(MODES):
        applied = logged == index
        weights[mode] = float(np.sum(applied / np.maximum(propensity[:, index], floor)) / len(logged))
    return weights


def calibrate_out_of_fold(raw: np.ndarray, logged: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Propensities ``raw`` (n, modes) recalibrated per mode by isotonic regression, cross-fitted.

    The calibrator of each mode for the rows of fold ``k`` is fitted on the other folds' rows
    (``raw`` of mode ``m`` against ``1[a = m]``), so no row calibrates its own probability; each row
    is then renormalized to sum to one (:mod:`crm_modes.models.class_calibration`, whose reasons
    apply here: the weights of the few deviations are otherwise too large, :func:`mode_weights`).
    A fold without rows of another fold to learn from (a single fold) is left as it is.
    """
    calibrated = raw.astype(float, copy=True)
    for fold in np.unique(folds):
        held, fit = folds == fold, folds != fold
        if not fit.any():
            continue
        steps = [
            isotonic_steps(raw[fit, index], (logged[fit] == index).astype(float))
            for index in range(raw.shape[1])
        ]
        calibrated[held] = apply_steps(raw[held], steps)
    return calibrated


def cluster_bootstrap(
    estimates: dict[str, DoublyRobust],
    groups: np.ndarray,
    *,
    resamples: int,
    confidence: float,
    seed: int,
    differences: dict[str, tuple[str, str]] | None = None,
) -> dict[str, Estimate]:
    """Each estimate, and each named difference of two, with percentile intervals from
    resampling whole groups.

    Every estimate is resampled with the same draws, so a difference (e.g. a policy's gain
    over another, ``{"gain": ("value_policy", "committee")}``) is paired.
    """
    _, group = np.unique(groups, return_inverse=True)
    n_groups = int(group.max()) + 1
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=resamples)
    rows_per_group = np.bincount(group, minlength=n_groups).astype(float)
    draws, values = {}, {}
    for name, estimate in estimates.items():
        direct, residual, weight = _group_sums(estimate, group)
        draws[name] = _self_normalized(
            counts @ direct, counts @ residual, counts @ weight, counts @ rows_per_group
        )
        values[name] = estimate.value
    for name, (first, second) in (differences or {}).items():
        draws[name] = draws[first] - draws[second]
        values[name] = values[first] - values[second]
    tail = (1.0 - confidence) / 2.0
    intervals = {}
    for name, totals in draws.items():
        low, high = np.quantile(totals, [tail, 1.0 - tail])
        intervals[name] = Estimate(float(values[name]), float(low), float(high))
    return intervals


def gain_concentration(
    first: DoublyRobust, second: DoublyRobust, groups: np.ndarray, *, clients: int
) -> float:
    """The share of the difference ``first - second``'s variance between groups that the ``clients``
    groups with the largest terms carry.

    A group's term is its rows' part of the self-normalized difference: their direct parts and their
    residuals, scaled as the whole sample scales them. With many groups that count alike the share is
    small (about ``clients`` over the number of groups); near 1, a few outcomes decide the estimate, and
    a bootstrap that resamples those few cannot say how far off it is.
    """
    _, group = np.unique(groups, return_inverse=True)
    terms = _group_terms(first, group) - _group_terms(second, group)
    spread = (terms - terms.mean()) ** 2
    total = float(spread.sum())
    return float(np.sort(spread)[::-1][:clients].sum() / total) if total > 0 else 0.0


def _group_sums(estimate: DoublyRobust, group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The direct parts, residuals and weights of ``estimate`` summed per group (``group``: 0, 1, ...)."""
    size = int(group.max()) + 1
    direct, residual, weight = (
        np.bincount(group, weights=part, minlength=size)
        for part in (estimate.direct, estimate.residual, estimate.weight)
    )
    return direct, residual, weight


def _group_terms(estimate: DoublyRobust, group: np.ndarray) -> np.ndarray:
    """Each group's part of the self-normalized estimate (its parts add up to ``estimate.value``)."""
    direct, residual, weight = _group_sums(estimate, group)
    total = weight.sum()
    return direct + (residual * estimate.direct.size / total if total > 0 else 0.0)
