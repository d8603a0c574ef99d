"""Scenarios: the seed's rows up to the departure, then the economy the scenario says."""

import numpy as np
import pandas as pd
import pytest

from crm_modes.data.generator import generate_book
from crm_modes.data.scenarios import SCENARIOS, scenario_named
from crm_modes.data.schema import Role, names

ROWS, SEED = 40_000, 13


@pytest.fixture(scope="module")
def books():
    return {name: generate_book(ROWS, SEED, scenario=name) for name in SCENARIOS}


def _observed(book: pd.DataFrame) -> pd.DataFrame:
    return book.drop(columns=names([Role.LABEL, Role.ORACLE]))


def _last_year(book: pd.DataFrame) -> pd.Series:
    return book["snapshot_date"] > book["snapshot_date"].max() - pd.DateOffset(months=12)


def test_none_is_the_book_the_seed_makes(books):
    pd.testing.assert_frame_equal(books["none"], generate_book(ROWS, SEED))


@pytest.mark.parametrize("name", ["baseline", "downturn", "industry_shock"])
def test_every_row_before_the_departure_is_the_seed_s(books, name):
    baseline, departed = books["none"], books[name]
    before = _observed(baseline[~_last_year(baseline)])
    merged = before.merge(_observed(departed), on=["facility_id", "snapshot_date"], suffixes=("", "_s"))
    assert len(merged) == len(before)
    for column in before.columns.drop(["facility_id", "snapshot_date"]):
        assert (merged[column].astype(str) == merged[f"{column}_s"].astype(str)).all(), column


def test_the_baseline_economy_settles_within_the_range_seen_before(books):
    before, last_year = (
        books[name].groupby("snapshot_date")["gdp_growth"].first() for name in ("none", "baseline")
    )
    earlier = before[before.index <= before.index.max() - pd.DateOffset(months=12)]
    settled = last_year[last_year.index > last_year.index.max() - pd.DateOffset(months=6)]
    middle = earlier.mean()
    assert ((settled - middle).abs() < 0.25 * (earlier.max() - earlier.min())).all()


def test_the_downturn_deteriorates_readings_and_raises_defaults(books):
    baseline, downturn = books["none"], books["downturn"]
    last = baseline["snapshot_date"].max()
    now, then = downturn[downturn["snapshot_date"] == last], baseline[baseline["snapshot_date"] == last]
    assert now["gdp_growth"].iloc[0] < books["none"]["gdp_growth"].min()  # beyond anything seen
    assert now["internal_rating"].mean() > then["internal_rating"].mean() + 0.5
    assert now["leverage"].median() > 1.15 * then["leverage"].median()
    assert now["utilization"].mean() > then["utilization"].mean()
    # the cohort whose 12-month window is the downturn year defaults more
    cohort = last - pd.DateOffset(months=12) - pd.offsets.MonthEnd(0)
    rate = {
        name: b[b["snapshot_date"] == cohort]["default_12m"].astype(float).mean() for name, b in books.items()
    }
    assert rate["downturn"] > 1.5 * rate["none"]


def test_the_industry_shock_hits_one_industry_only(books):
    baseline, shocked = books["baseline"], books["industry_shock"]
    last = baseline["snapshot_date"].max()
    now = (
        shocked[shocked["snapshot_date"] == last].groupby("industry", observed=True)["internal_rating"].mean()
    )
    then = (
        baseline[baseline["snapshot_date"] == last]
        .groupby("industry", observed=True)["internal_rating"]
        .mean()
    )
    moved = (now - then).abs()
    assert moved["construction"] > 1.0
    assert moved.drop("construction").max() < 0.3
    economy = {name: b.groupby("snapshot_date")["gdp_growth"].first() for name, b in books.items()}
    pd.testing.assert_series_equal(economy["industry_shock"], economy["baseline"])  # the same economy


def test_an_unknown_scenario_is_named():
    with pytest.raises(
        ValueError,
        match=r"unknown scenario 'boom'; known: \['baseline', 'downturn', 'industry_shock', 'none'\]",
    ):
        scenario_named("boom")


def test_the_baseline_brings_each_industry_back_to_its_average_and_holds_it():
    shocks = np.random.default_rng(3).normal(0.0, 0.03, (48, 4))
    departure, decay = 36, 0.99
    changed = SCENARIOS["baseline"].industry_shocks(shocks, decay, departure)
    np.testing.assert_array_equal(changed[:departure], shocks[:departure])  # the seed's months untouched

    def levels(steps):
        running, path = np.zeros(4), []
        for step in steps:
            running = decay * running + step
            path.append(running)
        return np.array(path)

    before, after = levels(shocks), levels(changed)
    average = before[:departure].mean(axis=0)
    np.testing.assert_allclose(after[departure + 5 :], np.broadcast_to(average, (7, 4)), atol=1e-12)
    halfway = before[departure - 1] + (average - before[departure - 1]) / 2  # a straight line in 6 months
    np.testing.assert_allclose(after[departure + 2], halfway, atol=1e-12)
    assert SCENARIOS["downturn"].industry_shocks(shocks, decay, departure) is shocks  # its own path
