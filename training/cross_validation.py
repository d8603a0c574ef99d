"""Repeated stratified K-fold cross-validation of the configured models (pure: no I/O).

Every outer fold refits the whole pipeline on its training part: features, the tuning
search when enabled (nested: it never sees the fold it is scored on), the estimator and
its calibration (on a stratified share of the training part); the logistic-regression
baseline is refit beside it. The held-out fold is scored once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import RepeatedStratifiedKFold, train_test_split

from crm_modes.shared.errors import InputError
from crm_modes.training.config import TrainingConfig
from crm_modes.training.evaluate import evaluate
from crm_modes.training.fit import binary_target, fit_model

REPORTED = ("auc", "brier", "ece")


@dataclass
class CrossValidation:
    """Fold-by-fold figures of one model and its baseline."""

    model: str
    folds: list[dict[str, float]] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.folds)

    def summary(self) -> dict[str, float]:
        """Mean and standard deviation of each figure, e.g. ``auc_mean``, ``baseline_auc_std``."""
        frame = self.table().drop(columns=["repeat", "fold"])
        figures = {}
        for column in frame.columns:
            figures[f"{column}_mean"] = float(frame[column].mean())
            figures[f"{column}_std"] = float(frame[column].std(ddof=1)) if len(frame) > 1 else 0.0
        return figures


def cross_validate(
    config: TrainingConfig,
    table: pd.DataFrame,
    *,
    folds: int,
    repeats: int = 1,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    on_fold: Callable[[str, dict[str, float]], None] | None = None,
) -> list[CrossValidation]:
    """Cross-validate every binary model of ``config`` on the rows of ``table`` with a known label.

    ``progress`` hears which fold starts; ``on_fold`` gets each fold's figures as it finishes
    (model name, figures), e.g. to log them before the next fold runs.

    Raises:
        InputError: fewer than two folds, or a model is not binary.
    """
    if folds < 2:
        raise InputError(f"--cv must be at least 2, got {folds}")
    say = progress or (lambda message: None)
    results = []
    for name, model in config.models.items():
        if model.kind != "binary":
            raise InputError(f"cross-validation reports binary metrics; model {name!r} is {model.kind}")
        if model.target not in table:
            raise InputError(f"target {model.target!r} of model {name!r} is not a column of the table")
        rows = table[table[model.target].notna()].reset_index(drop=True)
        y = binary_target(rows[model.target], model).astype(int)
        splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
        result = CrossValidation(name)
        for index, (train_index, test_index) in enumerate(splitter.split(np.zeros(len(y)), y)):
            repeat, fold = divmod(index, folds)
            say(f"{name}: repeat {repeat + 1}/{repeats}, fold {fold + 1}/{folds}")
            if model.calibration_folds is not None or model.calibration == "none":
                fit_index, calibration_index = train_index, train_index[:0]
            else:
                fit_index, calibration_index = train_test_split(
                    train_index,
                    test_size=config.split.calibration_share,
                    random_state=seed + index,
                    stratify=y[train_index],
                )
            fitted = fit_model(
                name, model, config.features, rows.iloc[fit_index], rows.iloc[calibration_index]
            )
            scored = evaluate(fitted, rows.iloc[test_index])
            figures: dict[str, float] = {"repeat": repeat, "fold": fold}
            figures |= {key: scored.metrics[key] for key in REPORTED}
            figures |= {
                f"baseline_{key}": scored.baseline_metrics[key] for key in REPORTED if scored.baseline_metrics
            }
            result.folds.append(figures)
            if on_fold is not None:
                on_fold(name, figures)
        results.append(result)
    return results
