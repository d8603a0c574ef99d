"""Monitoring against known truth: a baseline book flags nothing to act on, a downturn and an
industry shock are found where they are, and the backtest sees the downturn's defaults."""

import re

import numpy as np
import pandas as pd
import pytest

from crm_modes.data.gate import validate
from crm_modes.data.generator import generate_book
from crm_modes.data.schema import input_names
from crm_modes.models.advisor import OUTPUT_TYPES
from crm_modes.models.reference import MonitoringReference, fit_profile, load_reference
from crm_modes.monitor.book_monitor import ScoredRows, json_safe
from crm_modes.monitor.config import load_monitoring_config
from crm_modes.monitor.figures import Outcomes, compute
from crm_modes.shared.errors import InputError
from crm_modes.shared.model_loading import model_input

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
    economy = {entry["name"]: entry for entry in report["stability"]["economy"]}
    assert set(economy) == {"gdp_growth", "gdp_growth_change_12m"}
    for name in economy:  # published growth, and its fall over the year, below anything learnt on
        assert economy[name]["flag"] == "act"
        assert economy[name]["share_below"] == 1.0


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


def _scored(rows: int, version: str = "crm-advisor v1") -> pd.DataFrame:
    """A stand-in for score's output: keys, every advisor output column, the version."""
    frame = pd.DataFrame(
        {
            "facility_id": [f"F{i:04d}" for i in range(rows)],
            "snapshot_date": pd.Timestamp("2025-01-31"),
        }
    )
    for name, kind in OUTPUT_TYPES.items():
        frame[name] = 0.5 if kind == "double" else "x"
    frame["model_version"] = version
    return frame


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.iloc[::-1], "does not match the current book: its scored row 1 is F0009"),
        (lambda f: f.iloc[:7], "holds 7 scored rows, fewer than the current book's valid rows"),
        (lambda f: pd.concat([f, f.iloc[:2]]), "holds 12 scored rows, more than the current book's 10"),
        (lambda f: f.assign(model_version="crm-advisor v2"), "by crm-advisor v2, not by crm-advisor v1"),
        (lambda f: f.drop(columns=["risk_grade"]), "lacks the columns ['risk_grade']"),
        (lambda f: f.assign(default_probability="high"), "'default_probability' holds values that are not"),
    ],
)
def test_a_scored_file_of_other_rows_or_another_version_is_refused_naming_why(tmp_path, change, message):
    valid = _scored(10)[["facility_id", "snapshot_date"]]
    path = tmp_path / "scored.parquet"
    change(_scored(10)).to_parquet(path)
    reader = ScoredRows(path, "crm-advisor v1", chunk_rows=4)

    def read_all() -> None:
        for start in range(0, 10, 3):  # blocks that straddle the file's chunks
            reader.take(valid.iloc[start : start + 3])
        reader.finish()

    with pytest.raises(InputError, match=re.escape(message)):
        read_all()


def test_a_scored_file_is_taken_in_step_across_chunks_with_its_numbers_as_numbers(tmp_path):
    frame = _scored(10)
    frame["default_probability"] = np.arange(10) / 100
    path = tmp_path / "scored.csv"
    frame.to_csv(path, index=False)
    reader = ScoredRows(path, "crm-advisor v1", chunk_rows=4)
    keys = frame[["facility_id", "snapshot_date"]]
    taken = [reader.take(keys.iloc[start : start + 3]) for start in range(0, 10, 3)]
    reader.finish()
    assert [len(part) for part in taken] == [3, 3, 3, 1]
    together = pd.concat(taken, ignore_index=True)
    assert together["facility_id"].tolist() == frame["facility_id"].tolist()
    assert together["default_probability"].to_numpy() == pytest.approx(np.arange(10) / 100)
