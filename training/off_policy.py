"""The value of a mode policy from logged data: the doubly robust estimate and its bootstrap interval.

Pure functions on arrays; no I/O. Modes are indices into :data:`crm_modes.data.schema.MODES`.

For logged rows ``(x_i, a_i, r_i)`` (the mode applied, the value realised), an outcome
model ``mu(x, m)`` (the advisor's value of each mode) and a propensity model ``p(m | x)`` (the
committee model), the doubly robust estimate of a deterministic policy ``pi`` sums over rows

    psi_i = mu(x_i, pi_i) + 1[a_i = pi_i] / p(a_i | x_i) * (r_i - mu(x_i, a_i))

(Dudik, Langford and Li, "Doubly robust policy evaluation and learning", ICML 2011): it is
unbiased when either the outcome model or the propensities are right. Propensities below a
floor are clipped there (the count is reported). A policy that moves a facility away from
the mode it is in pays the switching cost, known exactly, so it is subtracted as it is.

Rows of one client are not independent (shared credit quality, several facilities, twelve
monthly snapshots), so the interval resamples clients, not rows (a cluster bootstrap).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A total over the rows with its bootstrap interval."""

    value: float
    lower: float
    upper: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "lower": self.lower, "upper": self.upper}


def doubly_robust_terms(
    outcome: np.ndarray,
    logged: np.ndarray,
    realised: np.ndarray,
    propensity: np.ndarray,
    policy: np.ndarray,
    *,
    switching_cost: float,
    propensity_floor: float,
) -> tuple[np.ndarray, int]:
    """Per-row terms ``psi_i`` of the doubly robust estimate of ``policy``, and how many were clipped.

    Args:
        outcome: ``mu(x_i, m)``, shape (n, modes).
        logged: the mode each row was served in, shape (n,).
        realised: the value each row realised in that mode, shape (n,).
        propensity: ``p(m | x_i)``, shape (n, modes).
        policy: the mode the evaluated policy chooses for each row, shape (n,).
        switching_cost: paid once where ``policy`` differs from ``logged``.
        propensity_floor: propensities below it are raised to it.

    Returns:
        ``(psi, clipped)``: ``psi`` of shape (n,); ``clipped`` counts the rows that follow
        the policy and whose logged propensity was below the floor.
    """
    rows = np.arange(logged.shape[0])
    followed = policy == logged
    logged_propensity = propensity[rows, logged]
    clipped = int((followed & (logged_propensity < propensity_floor)).sum())
    weight = np.where(followed, 1.0 / np.maximum(logged_propensity, propensity_floor), 0.0)
    correction = weight * (realised - outcome[rows, logged])
    return outcome[rows, policy] + correction - switching_cost * ~followed, clipped


def cluster_bootstrap(
    terms: dict[str, np.ndarray],
    groups: np.ndarray,
    *,
    resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, Estimate]:
    """Totals of each array in ``terms`` with percentile intervals from resampling whole groups.

    Every array is resampled with the same draws, so differences of two totals (e.g. a
    policy's gain over another) are paired.
    """
    _, group = np.unique(groups, return_inverse=True)
    n_groups = int(group.max()) + 1
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=resamples)
    tail = (1.0 - confidence) / 2.0
    estimates = {}
    for name, values in terms.items():
        sums = np.bincount(group, weights=values, minlength=n_groups)
        totals = counts @ sums
        low, high = np.quantile(totals, [tail, 1.0 - tail])
        estimates[name] = Estimate(float(values.sum()), float(low), float(high))
    return estimates
