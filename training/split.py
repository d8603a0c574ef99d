"""Split a table into training, calibration and evaluation rows (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from crm_modes.shared.errors import InputError
from crm_modes.training.config import SplitConfig


@dataclass(frozen=True)
class Split:
    """Boolean row masks over one table; the three never overlap."""

    train: np.ndarray
    calibration: np.ndarray
    evaluation: np.ndarray
    description: str

    def counts(self) -> dict[str, int]:
        return {
            "train": int(self.train.sum()),
            "calibration": int(self.calibration.sum()),
            "evaluation": int(self.evaluation.sum()),
        }


def _month_index(dates: pd.Series) -> np.ndarray:
    dates = pd.to_datetime(dates)
    return (dates.dt.year * 12 + dates.dt.month - 1).to_numpy()


def split_rows(table: pd.DataFrame, config: SplitConfig, *, known: np.ndarray, stratify: np.ndarray) -> Split:
    """Split the rows of ``table`` whose label is ``known``.

    Args:
        table: the validated table.
        config: how to split.
        known: rows with a known label; the others are in none of the three sets.
        stratify: the label, for stratified splits.

    Raises:
        ValueError: a column the split needs is missing, or a period is empty.
    """
    if config.kind == "out_of_time":
        return _out_of_time(table, config, known)
    if config.kind == "holdout_column":
        if config.holdout_column is None or config.holdout_column not in table:
            raise InputError(f"split.holdout_column {config.holdout_column!r} is not a column of the table")
        holdout = table[config.holdout_column].astype(str).str.lower().isin(["true", "1", "yes"]).to_numpy()
        evaluation = known & holdout
        rest = np.flatnonzero(known & ~holdout)
        description = f"evaluation: rows where {config.holdout_column} is true"
    else:
        rest_all, held = train_test_split(
            np.flatnonzero(known),
            test_size=config.evaluation_share,
            random_state=config.seed,
            stratify=stratify[known],
        )
        evaluation = np.zeros(len(table), dtype=bool)
        evaluation[held] = True
        rest = np.sort(rest_all)
        description = f"evaluation: stratified {config.evaluation_share:.0%} of rows (seed {config.seed})"
    fit_rows, calibration_rows = train_test_split(
        rest, test_size=config.calibration_share, random_state=config.seed, stratify=stratify[rest]
    )
    train = np.zeros(len(table), dtype=bool)
    calibration = np.zeros(len(table), dtype=bool)
    train[fit_rows] = True
    calibration[calibration_rows] = True
    return Split(
        train,
        calibration,
        evaluation,
        description + f"; calibration: {config.calibration_share:.0%} of the rest",
    )


def _out_of_time(table: pd.DataFrame, config: SplitConfig, known: np.ndarray) -> Split:
    if config.date_column not in table:
        raise InputError(f"split.date_column {config.date_column!r} is not a column of the table")
    month = _month_index(table[config.date_column])
    if not known.any():
        raise InputError("no row has a known label; nothing to train or evaluate on")
    last_known = month[known].max()
    evaluation_start = last_known - config.evaluation_months + 1
    fit_end = evaluation_start - config.horizon_months - 1  # last training snapshot month
    calibration_start = fit_end - config.calibration_months + 1
    evaluation = known & (month >= evaluation_start) & (month <= last_known)
    calibration = known & (month >= calibration_start) & (month <= fit_end)
    train = known & (month < calibration_start)
    for name, rows in (("training", train), ("calibration", calibration), ("evaluation", evaluation)):
        if not rows.any():
            raise InputError(
                f"the out-of-time split leaves no {name} rows: the table spans too few months for "
                f"{config.evaluation_months} evaluation, {config.horizon_months} horizon and "
                f"{config.calibration_months} calibration months"
            )

    def show(index: int) -> str:
        return f"{index // 12}-{index % 12 + 1:02d}"

    description = (
        f"out of time: train snapshots up to {show(calibration_start - 1)}, "
        f"calibration {show(calibration_start)} to {show(fit_end)}, "
        f"evaluation {show(evaluation_start)} to {show(last_known)}; the {config.horizon_months} months "
        "between are left out so no training label sees the evaluation period"
    )
    return Split(train, calibration, evaluation, description)


def exclude_seen_groups(split: Split, groups: pd.Series) -> Split:
    """Drop from evaluation every row whose group (e.g. facility) appears in train or calibration."""
    seen = set(groups[split.train | split.calibration])
    unseen = ~groups.isin(seen).to_numpy()
    return Split(
        split.train,
        split.calibration,
        split.evaluation & unseen,
        split.description + f"; evaluation keeps only {groups.name} values never seen in training",
    )
