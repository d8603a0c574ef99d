"""Monitoring against known truth: a baseline book flags nothing to act on, a downturn and an
industry shock are found where they are, and the backtest sees the downturn's defaults."""

import numpy as np
import pandas as pd
import pytest

from crm_modes.data.generator import generate_book
from crm_modes.data.schema import input_names
from crm_modes.data.validation import validate
from crm_modes.models.reference import MonitoringReference, fit_profile, load_reference
from crm_modes.models.signature import model_input
from crm_modes.monitor.config import load_monitoring_config
from crm_modes.monitor.figures import Outcomes, compute
from crm_modes.monitor.run import json_safe

ROWS, SEED = 400_000, 7  # seed 7: the book the fitted advisor learnt on (tests/conftest.py), larger
CONFIG = load_monitoring_config("configs/monitoring.yaml")


def advise(advisor, rows: pd.DataFrame) -> pd.DataFrame:
    return advisor.advise(model_input(rows[[c for c in input_names() if c in rows.columns]]))


@pytest.fixture(scope="module")
def books():
    """Each scenario's book: the month monitored is the last one (one row per facility), the
    backtest's the month a year before (its window is the scenario's year)."""
    return {
        name: generate_book(ROWS, SEED, scenario=name) for name in ("baseline", "downturn", "industry_shock")
    }


@pytest.fixture(scope="module")
def reference(fitted_advisor, books):
    """The profile of a sample of the training years (all but the last two) of the baseline book."""
    book = books["baseline"]
    training = book[book["snapshot_date"] <= book["snapshot_date"].max() - pd.DateOffset(months=24)]
    training = validate(training.sample(n=100_000, random_state=0)).valid
    development = {"default": {"auc": 0.92, "ece": 0.004}, "churn": {"auc": 0.72, "ece": 0.01}}
    grades = tuple(grade.max_pd for grade in fitted_advisor.policy.risk_grades[:-1])
    profile = fit_profile(
        training, advise(fitted_advisor, training), score_edges={"default_probability": grades}
    )
    return MonitoringReference(profile, development)


def monitor(advisor, reference, rows, *, outcomes: bool = False) -> dict:
    rows = validate(rows).valid
    advice = advise(advisor, rows)
    current = reference.profile.empty_like()
    current.add(rows, advice)
    collected = None
    if outcomes:
        collected = Outcomes()
        collected.add(
            rows,
            advice,
            rows[["default_12m", "churn_12m"]],
            ["segment", "industry", "market", "product", "region"],
        )
    grades = [str(grade) for grade in range(1, 11)]
    return json_safe(compute(reference, current, collected, grades, CONFIG))


def month(book: pd.DataFrame, before: int = 0) -> pd.DataFrame:
    """The snapshot ``before`` months before the last one."""
    return book[
        book["snapshot_date"]
        == book["snapshot_date"].max() - pd.DateOffset(months=before) - pd.offsets.MonthEnd(0)
    ]


def acted(report: dict) -> list[dict]:
    return [flag for flag in report["flags"] if flag["level"] == "act"]


def test_the_baseline_flags_nothing_to_act_on(fitted_advisor, reference, books):
    report = monitor(fitted_advisor, reference, month(books["baseline"]))
    assert acted(report) == []
    assert report["status"] in ("ok", "watch")
    scores = {entry["name"]: entry["psi"] for entry in report["stability"]["scores"]}
    assert scores["default_probability"] < 0.10


def test_the_downturn_flags_the_pd_the_deteriorating_readings_and_the_economy(
    fitted_advisor, reference, books
):
    report = monitor(fitted_advisor, reference, month(books["downturn"]))
    assert report["status"] == "act"
    scores = {entry["name"]: entry for entry in report["stability"]["scores"]}
    assert scores["default_probability"]["flag"] == "act"
    inputs = {entry["name"]: entry for entry in report["stability"]["inputs"]}
    for name in ("internal_rating", "leverage", "interest_coverage", "revenue_growth"):
        assert inputs[name]["flag"] in ("watch", "act"), (name, inputs[name]["psi"])
    (economy,) = report["stability"]["economy"]
    assert economy["flag"] == "act"
    assert economy["share_below"] == 1.0  # published growth below anything the models learnt on


def test_an_industry_shock_flags_that_industry_and_no_other_slice(fitted_advisor, reference, books):
    report = monitor(fitted_advisor, reference, month(books["industry_shock"]))
    slices = {(flag["name"], flag["figure"]) for flag in acted(report) if flag["section"] == "slices"}
    assert ("industry=construction", "default_probability_psi") in slices
    assert {name for name, _ in slices} == {"industry=construction"}
    assert not [flag for flag in acted(report) if flag["section"] != "slices"]


def test_the_backtest_shows_the_downturn_s_defaults_above_what_was_predicted(
    fitted_advisor, reference, books
):
    """Rows scored a year before the end: their 12-month window is the downturn year."""
    reports = {}
    for name in ("baseline", "downturn"):
        book = books[name]
        cohort = book[
            book["snapshot_date"]
            == book["snapshot_date"].max() - pd.DateOffset(months=12) - pd.offsets.MonthEnd(0)
        ]
        reports[name] = monitor(fitted_advisor, reference, cohort, outcomes=True)
    downturn = reports["downturn"]["backtest"]
    baseline = reports["baseline"]["backtest"]
    assert (
        downturn["overall"]["default"]["observed_rate"]
        > 1.5 * baseline["overall"]["default"]["observed_rate"]
    )
    assert downturn["overall"]["default"]["calibration_in_the_large"] < -0.3
    above = [g for g in downturn["grades"] if g["observed"] > g["interval_high"] or g["jeffreys_p"] < 0.01]
    assert len(above) >= 3  # the grades that moved
    assert all(g["observed"] > g["predicted"] for g in above)
    flagged_grades = [f for f in acted(reports["downturn"]) if f["section"] == "backtest.grades"]
    assert flagged_grades


def test_the_reference_survives_its_file(reference, tmp_path):
    loaded = load_reference(reference.save(tmp_path / "reference.json"))
    assert loaded.profile.to_dict() == reference.profile.to_dict()
    assert loaded.development == reference.development
    assert np.array_equal(
        loaded.profile.counts["internal_rating"], reference.profile.counts["internal_rating"]
    )
