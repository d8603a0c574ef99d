"""The recorded propensity: the probability of the mode applied that each decision keeps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_modes.data.gate import validate
from crm_modes.data.schema import MODES
from crm_modes.models.advisor import in_mode_order
from crm_modes.training.config import load_training_config
from crm_modes.training.off_policy import mode_weights
from crm_modes.training.policy_report import evaluation_rows
from crm_modes.training.propensity import fit_recorded_propensity
from crm_modes.training.trainer import model_split
from tests.conftest import REPO


@pytest.fixture(scope="module")
def trained(book_50k):
    """The recorded propensity as training fits it on the book, the book and its configuration."""
    config = load_training_config(REPO / "configs" / "train.yaml")
    table = validate(book_50k).valid
    split, _ = model_split(table, config, config.models["mode"])
    return fit_recorded_propensity(config, table, split), table, config


def _by_mode(pipeline, rows: pd.DataFrame) -> np.ndarray:
    return in_mode_order(pipeline.predict_proba(rows), pipeline.classes_)


@pytest.mark.integration
def test_the_recorded_propensity_weighs_a_later_year_as_the_committee_model_cannot(trained, fitted_advisor):
    propensity, table, config = trained
    later = evaluation_rows(config, table)  # the out-of-time year: facilities the models have seen
    applied = later["assigned_mode"].astype(str).map(MODES.index).to_numpy()
    floor = config.advisor.value_gate.propensity_floor
    recorded = mode_weights(applied, _by_mode(propensity, later), floor)
    committee = mode_weights(applied, _by_mode(fitted_advisor.mode, later), floor)
    # the committee model reads the mode's own readings and recognises a deviating facility it saw:
    # the modes applied get too much probability, every weight far below one
    assert max(committee.values()) < 0.7, (committee, recorded)
    # within [0.9, 1.1] on the default book (benchmarks/bench_value_policy.py); this book's 4,000
    # calibration rows make coarser steps
    worst = max(abs(weight - 1.0) for weight in recorded.values())
    assert worst < 0.25, (committee, recorded)
    assert worst < max(abs(weight - 1.0) for weight in committee.values()) / 2, (committee, recorded)
    np.testing.assert_allclose(_by_mode(propensity, later).sum(axis=1), 1.0)
    readings = set(config.advisor.mode_readings.inputs)
    assert not readings & set(map(str, propensity["features"].get_feature_names_out()))


def test_no_recorded_propensity_when_the_configuration_says_null(book_50k):
    config = load_training_config(REPO / "configs" / "train.yaml")
    config = config.model_copy(
        update={"advisor": config.advisor.model_copy(update={"recorded_propensity": None})}
    )
    table = validate(book_50k.head(2_000)).valid
    split, _ = model_split(table, config, config.models["mode"])
    assert fit_recorded_propensity(config, table, split) is None


@pytest.mark.integration
def test_each_decision_records_the_recorded_propensity_of_its_mode(trained, fitted_advisor, book_50k):
    from dataclasses import replace

    propensity, _, _ = trained
    advisor = replace(fitted_advisor, propensity=propensity).as_loaded()
    rows = validate(book_50k.tail(600)).valid.reset_index(drop=True)
    advice = advisor.advise(rows)
    applied = rows["assigned_mode"].astype(str).map(MODES.index).to_numpy()
    expected = _by_mode(propensity, rows)[np.arange(len(rows)), applied]
    np.testing.assert_allclose(advice["assigned_propensity"].to_numpy(), expected)
    committee = advice[[f"probability_{mode}" for mode in MODES]].to_numpy()[np.arange(len(rows)), applied]
    assert not np.allclose(expected, committee)  # not the committee model's
    # rows that do not say their mode record none; the others the same as when every row says it
    some = rows.assign(assigned_mode=rows["assigned_mode"].astype(object).where(rows.index % 3 > 0, None))
    mixed = advisor.advise(some)
    said = np.asarray(rows.index % 3 > 0)
    assert mixed.loc[~said, "assigned_propensity"].isna().all()
    np.testing.assert_allclose(mixed.loc[said, "assigned_propensity"].to_numpy(), expected[said])
