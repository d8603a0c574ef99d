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
    """What the constraint did: each mode's effect on the log-odds as fitted and as kept (coefficient
    times the column's step; one constant apart from the effect against any reference mode)."""

    fitted: dict[str, float]
    kept: dict[str, float]
    #: modes that share one effect, e.g. ``["reactive+responsible"]`` (empty: the fit kept the order)
    pooled: list[str]
    #: features x parameters: the coefficients as a function of those the model was last fitted in
    #: (each pooled group's one shared parameter); None when nothing was pooled
    transform: np.ndarray | None = None


def order_mode_effects(
    estimator: LogisticRegression, X: pd.DataFrame, y: np.ndarray, order: Sequence[str]
) -> OrderedEffects:
    """Constrain the fitted ``estimator``'s mode effects to ``order`` (highest first), in place.

    A mode's column may be scaled (the linear features standardize every column), so its effect on
    the log-odds is its coefficient times the column's step, the difference between its value for a
    row in that mode and for a row in another: the effects compared, reported and pooled are those.

    Args:
        estimator: a binary logistic regression fitted on ``X`` and ``y``.
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
    column = {mode: names.index(MODE_FEATURE.format(mode)) for mode in order}
    step = {}
    for mode, index in column.items():
        values = X.iloc[:, index].to_numpy(dtype=np.float64)
        step[mode] = float(values.max() - values.min()) if len(values) else 0.0
    flat = [mode for mode, size in step.items() if not size > 0]
    if flat:
        raise InputError(
            f"mode_effect_order: no training row is served in {flat}, so no effect can be ordered"
        )

    def effect(mode: str) -> float:
        return float(estimator.coef_[0, column[mode]]) * step[mode]

    fitted = {mode: effect(mode) for mode in order}
    groups: list[list[str]] = [[mode] for mode in order]
    matrix: np.ndarray | None = None
    while True:
        effects = [effect(group[0]) for group in groups]
        violation = next((i for i in range(len(groups) - 1) if effects[i] < effects[i + 1]), None)
        if violation is None:
            break
        groups[violation : violation + 2] = [groups[violation] + groups[violation + 1]]
        if matrix is None:
            matrix = X.to_numpy(dtype=np.float64)
        pooled = [[(column[mode], step[mode]) for mode in group] for group in groups]
        _refit_pooled(estimator, matrix, y, pooled)
    merged = [[(column[mode], step[mode]) for mode in group] for group in groups if len(group) > 1]
    return OrderedEffects(
        fitted=fitted,
        kept={mode: effect(mode) for mode in order},
        pooled=["+".join(group) for group in groups if len(group) > 1],
        transform=_pooling(len(names), merged) if merged else None,
    )


def _pooling(features: int, merged: list[list[tuple[int, float]]]) -> np.ndarray:
    """Features x parameters: each column not pooled its own parameter, each pooled group one,
    ``coefficient = parameter / step`` (as :func:`_refit_pooled` writes them back)."""
    dropped = {index for group in merged for index, _ in group}
    kept = [index for index in range(features) if index not in dropped]
    transform = np.zeros((features, len(kept) + len(merged)))
    transform[kept, np.arange(len(kept))] = 1.0
    for offset, group in enumerate(merged):
        for index, step in group:
            transform[index, len(kept) + offset] = 1.0 / step
    return transform


def _refit_pooled(
    estimator: LogisticRegression, matrix: np.ndarray, y: np.ndarray, groups: list[list[tuple[int, float]]]
) -> None:
    """Refit with each group of mode columns (index, step) merged into one column, ``sum(x / step)``,
    so that its modes share one effect; write the coefficients back, ``effect / step`` for each."""
    pooled = [group for group in groups if len(group) > 1]
    dropped = {index for group in pooled for index, _ in group}
    kept = [index for index in range(matrix.shape[1]) if index not in dropped]
    merged = np.column_stack(
        [matrix[:, kept], *(sum(matrix[:, index] / step for index, step in group) for group in pooled)]
    )
    refit = clone(estimator).fit(merged, y)
    coef = np.empty(matrix.shape[1])
    coef[kept] = refit.coef_[0, : len(kept)]
    for offset, group in enumerate(pooled):
        shared = refit.coef_[0, len(kept) + offset]
        for index, step in group:
            coef[index] = shared / step
    estimator.coef_ = coef[None, :]
    estimator.intercept_ = refit.intercept_.copy()
