import numpy as np
import pandas as pd
import pytest

from crm_modes.training.config import SplitConfig
from crm_modes.training.split import exclude_seen_groups, split_rows


@pytest.fixture
def table():
    dates = pd.date_range("2020-01-31", periods=60, freq="ME")
    frame = pd.DataFrame(
        {"snapshot_date": np.tile(dates, 10), "facility_id": np.repeat([f"F{i}" for i in range(10)], 60)}
    )
    frame["label"] = np.where(frame["snapshot_date"] <= dates[47], 1.0, np.nan)
    return frame


def months(frame, mask):
    chosen = frame.loc[mask, "snapshot_date"]
    return chosen.min().strftime("%Y-%m"), chosen.max().strftime("%Y-%m")


def test_out_of_time_split_leaves_the_label_horizon_out(table):
    known = table["label"].notna().to_numpy()
    split = split_rows(table, SplitConfig(), known=known, stratify=np.zeros(len(table)))
    assert months(table, split.evaluation) == ("2023-01", "2023-12")
    assert months(table, split.calibration) == ("2021-07", "2021-12")
    assert months(table, split.train) == ("2020-01", "2021-06")
    assert not (split.train & split.evaluation).any()
    assert not (split.calibration & split.evaluation).any()
    assert not split.evaluation[~known].any()
    assert "no training label sees the evaluation period" in split.description


def test_too_short_history_says_what_is_missing(table):
    short = table[table["snapshot_date"] < "2021-03-01"]
    with pytest.raises(ValueError, match="leaves no training rows"):
        split_rows(short, SplitConfig(), known=np.ones(len(short), bool), stratify=np.zeros(len(short)))


def test_groups_seen_in_training_are_not_evaluated(table):
    late = table["facility_id"].isin(["F8", "F9"]) & (table["snapshot_date"] < "2024-01-01")
    table = table[~late.to_numpy()].reset_index(drop=True)
    split = split_rows(
        table, SplitConfig(horizon_months=0), known=np.ones(len(table), bool), stratify=np.zeros(len(table))
    )
    honest = exclude_seen_groups(split, table["facility_id"])
    assert set(table.loc[honest.evaluation, "facility_id"]) == {"F8", "F9"}


def test_holdout_column_split(table):
    table["_is_test"] = np.arange(len(table)) % 4 == 0
    stratify = (np.arange(len(table)) % 2).astype(str)
    config = SplitConfig(kind="holdout_column", holdout_column="_is_test")
    split = split_rows(table, config, known=np.ones(len(table), bool), stratify=stratify)
    assert split.evaluation.sum() == len(table) // 4
    assert not (split.train & split.calibration).any()
    with pytest.raises(ValueError, match="holdout_column 'nope' is not a column"):
        split_rows(
            table,
            SplitConfig(kind="holdout_column", holdout_column="nope"),
            known=np.ones(len(table), bool),
            stratify=stratify,
        )
