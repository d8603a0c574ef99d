"""The readings a mode moves: levels learnt per client mode, moved with the facility's mode."""

import json

import numpy as np
import pandas as pd
import pytest

from crm_modes.models.mode_readings import (
    ModeReadings,
    client_modes,
    fit_mode_readings,
    load_mode_readings,
)

READINGS = ModeReadings(
    means={"rm_contacts_90d": (0.5, 2.0, 6.0), "complaints_12m": (0.6, 0.3, 0.2)}, models=("churn",)
)


def _rows(**columns):
    base = {
        "assigned_mode": ["basic"],
        "other_facilities_mode": ["none"],
        "rm_contacts_90d": [1],
        "complaints_12m": [3],
    }
    return pd.DataFrame({**base, **columns})


def test_a_facility_alone_takes_the_new_modes_levels():
    moved = READINGS.in_mode(_rows(), "responsible")
    assert moved.loc[0, "assigned_mode"] == "responsible"
    assert moved.loc[0, "rm_contacts_90d"] == pytest.approx(1 + 6.0 - 0.5)
    assert moved.loc[0, "complaints_12m"] == pytest.approx(3 + 0.2 - 0.6)
    # a reading never goes below zero
    assert READINGS.in_mode(_rows(complaints_12m=[0]), "responsible").loc[0, "complaints_12m"] == 0.0


def test_the_client_mode_is_the_highest_over_its_facilities():
    rows = _rows(
        assigned_mode=["basic", "basic", "responsible", "reactive"],
        other_facilities_mode=["reactive", "responsible", "basic", "none"],
        rm_contacts_90d=[4, 6, 12, 2],
        complaints_12m=[0, 1, 0, 2],
    )
    today, then = client_modes(rows, 2)
    assert today.tolist() == [1, 2, 2, 1]
    assert then.tolist() == [2, 2, 2, 2]
    moved = READINGS.in_mode(rows, "responsible")
    # reactive -> responsible client: + (6 - 2); already responsible: unchanged
    assert moved["rm_contacts_90d"].tolist() == pytest.approx([8.0, 6.0, 12.0, 6.0])
    down = READINGS.in_mode(rows, "basic")
    # a responsible facility moved to basic leaves a basic client; the others keep the client's mode
    assert down["rm_contacts_90d"].tolist() == pytest.approx([4.0, 6.0, 12 + 0.5 - 6.0, 2 + 0.5 - 2.0])


def test_rows_that_do_not_say_the_modes_keep_their_readings():
    rows = _rows(
        assigned_mode=["basic", None, "basic"],
        other_facilities_mode=["none", "none", None],
        rm_contacts_90d=[1, 1, 1],
        complaints_12m=[3, 3, 3],
    )
    moved = READINGS.in_mode(rows, "responsible")
    assert moved["rm_contacts_90d"].tolist() == pytest.approx([6.5, 1.0, 1.0])
    assert (moved["assigned_mode"] == "responsible").all()
    without = READINGS.in_mode(rows.drop(columns="other_facilities_mode"), "responsible")
    assert without["rm_contacts_90d"].tolist() == [1, 1, 1]


def test_fitted_levels_are_the_means_at_each_client_mode():
    rows = _rows(
        assigned_mode=["basic", "basic", "reactive", "responsible", "basic"],
        other_facilities_mode=["none", "none", "none", "none", "responsible"],
        rm_contacts_90d=[1, 3, 4, 8, 10],
        complaints_12m=[2, 0, 1, 1, 0],
    )
    fitted = fit_mode_readings(rows, ["rm_contacts_90d", "complaints_12m"], ["churn"])
    assert fitted.means["rm_contacts_90d"] == pytest.approx((2.0, 4.0, 9.0))
    assert fitted.means["complaints_12m"] == pytest.approx((1.0, 1.0, 0.5))
    assert fitted.models == ("churn",)


def test_a_client_mode_without_rows_or_a_missing_column_is_named():
    rows = _rows(
        assigned_mode=["basic", "reactive"],
        other_facilities_mode=["none", "none"],
        rm_contacts_90d=[1, 2],
        complaints_12m=[0, 1],
    )
    with pytest.raises(ValueError, match=r"no training row whose client is served in \['responsible'\]"):
        fit_mode_readings(rows, ["rm_contacts_90d"], ["churn"])
    with pytest.raises(ValueError, match=r"lack the columns \['digital_logins_90d'\]"):
        fit_mode_readings(rows, ["digital_logins_90d"], ["churn"])
    with pytest.raises(ValueError, match="'complaints_12m' needs a mean for each of"):
        ModeReadings(means={"complaints_12m": (0.5, float("nan"), 0.1)}, models=("churn",))


def test_saved_readings_load_as_plain_json(tmp_path):
    path = READINGS.save(tmp_path / "mode_readings.json")
    assert json.loads(path.read_text())["models"] == ["churn"]
    loaded = load_mode_readings(path)
    assert loaded == READINGS
    rows = _rows()
    np.testing.assert_array_equal(
        loaded.in_mode(rows, "reactive").to_numpy(), READINGS.in_mode(rows, "reactive").to_numpy()
    )


def test_the_mode_of_the_other_facilities_is_no_feature():
    from crm_modes.features.config import FeatureConfig

    numeric, categorical = FeatureConfig(from_schema=True).columns("churn_12m")
    assert "other_facilities_mode" not in [*numeric, *categorical]
    assert "assigned_mode" in categorical


def test_the_configuration_names_a_reading_that_is_no_numeric_input():
    from pydantic import ValidationError

    from crm_modes.training.config import ModeReadingsConfig

    assert ModeReadingsConfig(inputs=["rm_contacts_90d"], models=["churn"]).models == ["churn"]
    with pytest.raises(ValidationError, match=r"\['segment', 'churn_12m'\] are not numeric input columns"):
        ModeReadingsConfig(inputs=["segment", "churn_12m"], models=["churn"])
    with pytest.raises(ValidationError, match="mode"):
        ModeReadingsConfig(inputs=["rm_contacts_90d"], models=["mode"])
