"""Mode effects of a logistic outcome model constrained to the domain's order (pure: no I/O).

The churn and PD models take ``assigned_mode`` as an input, and the value policy reads each row
in each mode from them, so the fitted effect of each mode drives every recommendation. Deviations
from the committee's rule, the only rows where the mode varies independently of what the rule
reads, are few; on the default book they cannot tell the sign of responsible mode's effect on PD
(docs/decisions/023-mode-effects-in-the-domain-order.md). The domain can: more attention does not
raise default risk, nor make a client more likely to leave. :func:`order_mode_effects` keeps the
fitted effects in a configured order (highest log-odds first) by pooling adjacent violators, as
isotonic regression does, refitting the whole model each time two modes are pooled so that every
other coefficient adjusts to the shared effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from crm_modes.shared.errors import InputError

MODE_FEATURE = "assigned_mode={}"


@dataclass(frozen=True)
class OrderedEffects:
    """What the constraint did: each mode's log-odds coefficient as fitted and as kept."""

    fitted: dict[str, float]
    kept: dict[str, float]
    #: modes that share one effect, e.g. ``["reactive+responsible"]`` (empty: the fit kept the order)
    pooled: list[str]


def order_mode_effects(
    estimator: LogisticRegression, X: pd.DataFrame, y: np.ndarray, order: Sequence[str]
) -> OrderedEffects:
    """Constrain the fitted ``estimator``'s mode coefficients to ``order`` (highest first), in place.

    Args:
        estimator: a binary logistic regression fitted on ``X`` and ``y``.
        X: its feature matrix, with one column ``assigned_mode=<mode>`` per mode of ``order``.
        y: its 0/1 labels.
        order: modes from the highest effect on the log-odds to the lowest.

    Raises:
        InputError: ``X`` has no column for a mode of ``order``.
    """
    names = list(X.columns)
    missing = [mode for mode in order if MODE_FEATURE.format(mode) not in names]
    if missing:
        raise InputError(f"mode_effect_order names modes the model does not read: {missing}")
    column = {mode: names.index(MODE_FEATURE.format(mode)) for mode in order}
    fitted = {mode: float(estimator.coef_[0, column[mode]]) for mode in order}
    groups: list[list[str]] = [[mode] for mode in order]
    matrix: np.ndarray | None = None
    while True:
        effects = [float(estimator.coef_[0, column[group[0]]]) for group in groups]
        violation = next((i for i in range(len(groups) - 1) if effects[i] < effects[i + 1]), None)
        if violation is None:
            break
        groups[violation : violation + 2] = [groups[violation] + groups[violation + 1]]
        if matrix is None:
            matrix = X.to_numpy(dtype=np.float64)
        _refit_pooled(estimator, matrix, y, [[column[mode] for mode in group] for group in groups])
    return OrderedEffects(
        fitted=fitted,
        kept={mode: float(estimator.coef_[0, column[mode]]) for mode in order},
        pooled=["+".join(group) for group in groups if len(group) > 1],
    )


def _refit_pooled(
    estimator: LogisticRegression, matrix: np.ndarray, y: np.ndarray, groups: list[list[int]]
) -> None:
    """Refit with each group of mode columns summed into one (one shared coefficient); write the
    coefficients back, each pooled column taking its group's."""
    pooled = [group for group in groups if len(group) > 1]
    dropped = sorted(index for group in pooled for index in group)
    kept = [index for index in range(matrix.shape[1]) if index not in set(dropped)]
    merged = np.column_stack([matrix[:, kept], *(matrix[:, group].sum(axis=1) for group in pooled)])
    refit = clone(estimator).fit(merged, y)
    coef = np.empty(matrix.shape[1])
    coef[kept] = refit.coef_[0, : len(kept)]
    for offset, group in enumerate(pooled):
        coef[group] = refit.coef_[0, len(kept) + offset]
    estimator.coef_ = coef[None, :]
    estimator.intercept_ = refit.intercept_.copy()
