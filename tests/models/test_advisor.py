"""The advisor core: outputs, mode changes, reasons on alerted rows, one row equals the batch."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_modes.data.gate import validate
from crm_modes.data.generator import generate_book
from crm_modes.models.advisor import OUTPUT_TYPES, PASS_THROUGH
from crm_modes.shared.model_loading import model_input
from tests.strategies import valid_rows


@pytest.fixture(scope="module")
def rows():
    book = validate(generate_book(2_000, seed=31)).valid
    return book.drop(
        columns=[c for c in book.columns if c.startswith("oracle_") or c in ("default_12m", "churn_12m")]
    )


def test_every_output_column_in_order(fitted_advisor, rows):
    advice = fitted_advisor.advise(rows)
    assert list(advice.columns) == [*PASS_THROUGH, *OUTPUT_TYPES]
    assert len(advice) == len(rows)
    assert (advice["facility_id"].to_numpy() == rows["facility_id"].to_numpy()).all()
    probabilities = advice[["probability_basic", "probability_reactive", "probability_responsible"]]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert advice["default_probability"].between(0, 1).all()
    assert set(advice["alert_level"]) <= {"none", "watch", "warning", "critical"}
    assert (advice["model_version"] == "test").all()


def test_the_advice_shares_no_memory_with_the_input(fitted_advisor, rows):
    """The output frame is built without copying its arrays: the identifiers echoed back are copies,
    so changing the advice never changes the caller's rows."""
    advice = fitted_advisor.advise(rows)
    for name in PASS_THROUGH:
        assert not np.shares_memory(advice[name].to_numpy(), rows[name].to_numpy())
    before = rows["facility_id"].copy()
    advice.loc[:, "facility_id"] = "changed"
    pd.testing.assert_series_equal(rows["facility_id"], before)


def test_reasons_only_on_predictive_alerts(fitted_advisor, rows):
    advice = fitted_advisor.advise(rows)
    predictive = advice["alert_codes"].str.contains(r"(?:^|,)(?:PD|CHURN)_")
    assert predictive.any()
    assert (advice.loc[predictive, "alert_reasons"] != "").all()
    assert (advice.loc[~predictive, "alert_reasons"] == "").all()


def test_mode_change_is_reported_when_the_input_says_todays_mode(fitted_advisor, rows):
    forced = rows.assign(assigned_mode="basic")
    changed = fitted_advisor.advise(forced)
    recommended = changed["recommended_mode"]
    upgrade = recommended != "basic"
    assert upgrade.any()
    assert (changed.loc[upgrade, "mode_change"] == "basic -> " + recommended[upgrade]).all()
    assert changed.loc[upgrade, "alert_codes"].str.contains("MODE_UPGRADE").all()
    assert (changed.loc[~upgrade, "mode_change"] == "").all()
    unknown = fitted_advisor.advise(rows.drop(columns=["assigned_mode"]))
    assert (unknown["mode_change"] == "").all()
    assert not unknown["alert_codes"].str.contains("MODE_UPGRADE").any()


def test_each_decision_carries_the_mode_applied_and_its_propensity(fitted_advisor, rows):
    advice = fitted_advisor.advise(rows)
    given = rows["assigned_mode"].astype(str).to_numpy()
    assert (advice["assigned_mode"].to_numpy() == given).all()
    chosen = np.array([advice[f"probability_{mode}"].iloc[i] for i, mode in enumerate(given)])
    np.testing.assert_allclose(advice["assigned_propensity"].to_numpy(), chosen)
    assert advice["assigned_propensity"].between(0, 1).all()
    unknown = fitted_advisor.advise(rows.drop(columns=["assigned_mode"]))
    assert unknown["assigned_mode"].isna().all()
    assert unknown["assigned_propensity"].isna().all()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batch=st.lists(valid_rows(), min_size=2, max_size=6, unique_by=lambda r: r["facility_id"]),
    pick=st.integers(0, 5),
)
def test_any_row_alone_scores_as_in_a_batch(fitted_advisor, batch, pick):
    frame = model_input(validate(pd.DataFrame(batch)).valid)
    together = fitted_advisor.advise(frame)
    index = pick % len(frame)
    alone = fitted_advisor.advise(frame.iloc[[index]])
    pd.testing.assert_frame_equal(alone.reset_index(drop=True), together.iloc[[index]].reset_index(drop=True))


def test_shared_features_give_the_same_answers_as_separate_pipelines(fitted_advisor, rows):
    """Churn and PD models fitted on the same rows share one fitted feature pipeline; the advisor
    then computes the matrices once (here the PD model is given the churn model's features)."""
    from dataclasses import replace

    from sklearn.pipeline import Pipeline

    default = Pipeline(
        [("features", fitted_advisor.churn["features"]), ("model", fitted_advisor.default["model"])]
    )
    shared = replace(fitted_advisor, default=default)
    assert shared._shared_features
    separate = replace(shared)
    separate._shared_features = False
    pd.testing.assert_frame_equal(shared.advise(rows.head(300)), separate.advise(rows.head(300)))


def test_the_loaded_fast_paths_give_the_plain_advice(fitted_advisor, rows):
    """Installed on copies of the pipelines (as the loaded model has them), the direct forms (the
    linear product without the wide matrix) give the same advice as scikit-learn's own path, to
    rounding; the advisor's own pipelines are left as they are."""
    from crm_modes.models import sklearn_adapter

    fast = fitted_advisor.as_loaded()
    assert sklearn_adapter.linear_logistic(fast.churn["model"]) is not None
    assert sklearn_adapter.linear_logistic(fitted_advisor.churn["model"]) is None
    assert "predict_proba" not in vars(fitted_advisor.churn["model"])
    plain, quick = fitted_advisor.advise(rows), fast.advise(rows)
    numbers = [name for name, kind in OUTPUT_TYPES.items() if kind == "double"]
    np.testing.assert_allclose(quick[numbers], plain[numbers], rtol=1e-9, atol=1e-12)
    pd.testing.assert_frame_equal(quick.drop(columns=numbers), plain.drop(columns=numbers))


def test_an_alerted_record_alone_is_explained_as_in_the_batch(fitted_advisor):
    """One record whose alert fired is explained from the rows already read; in a batch, the alerted
    rows are taken from the frame: the same advice, reasons included, for PD and churn alerts."""
    book = validate(generate_book(12_000, seed=5)).valid
    frame = model_input(book.drop(columns=["default_12m", "churn_12m"]))
    together = fitted_advisor.advise(frame)
    codes = together["alert_codes"]
    pd_rows = np.flatnonzero(codes.str.contains(r"(?:^|,)PD_").to_numpy())
    churn_rows = np.flatnonzero(codes.str.contains(r"(?:^|,)CHURN_").to_numpy())
    assert len(pd_rows) >= 5
    assert len(churn_rows) >= 5
    for index in [*pd_rows[:6], *churn_rows[:6]]:
        alone = fitted_advisor.advise(frame.iloc[[index]])
        assert alone["alert_reasons"].iloc[0] != ""
        pd.testing.assert_frame_equal(alone, together.iloc[[index]].reset_index(drop=True))
