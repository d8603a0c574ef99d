"""PSI, the binomial and Jeffreys tests and the bins, against values worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from crm_modes.models.stability import MISSING, UNSEEN, Bins, fit_bins, psi
from crm_modes.monitor.backtest import (
    backtest_groups,
    binomial_p_value,
    jeffreys_interval,
    jeffreys_p_value,
)
from crm_modes.monitor.figures import beyond_whole


def test_psi_by_hand():
    # (0.6 - 0.5) ln(0.6/0.5) + (0.4 - 0.5) ln(0.4/0.5) = 0.1 * 0.18232 + 0.1 * 0.22314
    assert psi(np.array([0.5, 0.5]), np.array([0.6, 0.4])) == pytest.approx(0.0405465, abs=1e-6)
    # counts are normalized first: the same shares
    assert psi(np.array([50, 50]), np.array([600, 400])) == pytest.approx(0.0405465, abs=1e-6)
    assert psi(np.array([0.2, 0.3, 0.5]), np.array([0.2, 0.3, 0.5])) == 0.0


def test_an_empty_bin_gets_the_floor_and_both_empty_adds_nothing():
    # current empty in bin 2: (1e-4 - 0.5) ln(1e-4 / 0.5) + (1 - 0.5) ln(1 / 0.5) (current renormalized)
    expected = (1e-4 - 0.5) * math.log(1e-4 / 0.5) + (1.0 - 0.5) * math.log(1.0 / 0.5)
    assert psi(np.array([1, 1, 0]), np.array([2, 0, 0]), floor=1e-4) == pytest.approx(expected, rel=1e-12)
    assert psi(np.array([1, 1, 0]), np.array([1, 1, 0])) == 0.0


def test_binomial_test_by_hand():
    # P(X >= 2 | N=3, p=0.5) = (3 + 1) / 8
    assert binomial_p_value(2, 3, 0.5) == pytest.approx(0.5)
    # P(X >= 3 | N=3, p=0.1) = 0.001
    assert binomial_p_value(3, 3, 0.1) == pytest.approx(0.001)
    assert binomial_p_value(0, 100, 0.01) == 1.0


def test_jeffreys_test_by_hand():
    # Beta(0.5, 0.5) is the arcsine law: CDF(p) = (2 / pi) asin(sqrt(p))
    assert jeffreys_p_value(0, 0, 0.25) == pytest.approx(2 / math.pi * math.asin(0.5))
    # D=1, N=1: Beta(1.5, 0.5), CDF(p) = (2/pi)(asin(sqrt p) - sqrt(p (1 - p)))
    p = 0.3
    by_hand = 2 / math.pi * (math.asin(math.sqrt(p)) - math.sqrt(p * (1 - p)))
    assert jeffreys_p_value(1, 1, p) == pytest.approx(by_hand, rel=1e-9)
    # more defaults than promised: a small p-value
    assert jeffreys_p_value(30, 1000, 0.01) < 1e-6
    assert jeffreys_p_value(10, 1000, 0.01) > 0.3


def test_jeffreys_interval_ends():
    assert jeffreys_interval(0, 50)[0] == 0.0
    assert jeffreys_interval(50, 50)[1] == 1.0
    low, high = jeffreys_interval(10, 1000)
    assert low < 0.01 < high


def test_groups_are_flagged_on_the_jeffreys_p_value():
    groups = np.array(["1"] * 1000 + ["2"] * 1000)
    predicted = np.full(2000, 0.01)
    outcome = np.zeros(2000)
    outcome[:10] = 1  # grade 1 as promised
    outcome[1000:1040] = 1  # grade 2: 4% against 1%
    result = {
        g.group: g
        for g in backtest_groups(groups, predicted, outcome, ["1", "2", "3"], watch_p=0.05, act_p=0.001)
    }
    assert set(result) == {"1", "2"}  # a grade without rows is left out
    assert result["1"].flag == "ok"
    assert result["2"].flag == "act"
    assert result["2"].observed == pytest.approx(0.04)
    assert result["2"].binomial_p == pytest.approx(binomial_p_value(40, 1000, 0.01))


def test_numeric_bins_fixed_on_the_reference_with_a_bin_for_missing():
    reference = np.arange(1, 101, dtype=float)
    bins = fit_bins(reference, categorical=False)
    assert len(bins.edges) == 9
    counts = bins.count(np.array([0.0, 1000.0, np.nan, 50.0]))
    assert counts.sum() == 4
    assert counts[-1] == 1
    assert counts[0] == 1
    assert counts[-2] == 1
    assert len(bins.labels) == len(counts)


def test_a_mostly_zero_count_gets_a_bin_for_zero():
    reference = np.array([0] * 90 + list(range(1, 11)), dtype=float)
    bins = fit_bins(reference, categorical=False)
    assert bins.edges[0] == 0.0
    assert bins.count(np.zeros(5))[0] == 5


def test_categories_with_missing_and_unseen_bins():
    bins = fit_bins(pd.Series(["a", "b", "b", None]), categorical=True)
    assert bins.labels == ["a", "b", MISSING, UNSEEN]
    assert bins.count(pd.Series(["b", "c", None, "a", "c"])).tolist() == [1, 1, 1, 2]
    assert Bins.from_dict(bins.to_dict()) == bins


def test_the_tests_take_the_pd_at_least_at_the_floor():
    groups, predicted, outcome = np.array(["1"] * 100), np.full(100, 1e-9), np.zeros(100)
    outcome[0] = 1
    (raw,) = backtest_groups(groups, predicted, outcome, ["1"], watch_p=0.05, act_p=0.001)
    (floored,) = backtest_groups(groups, predicted, outcome, ["1"], watch_p=0.05, act_p=0.001, floor=0.0003)
    assert raw.flag == "act"
    assert floored.predicted == pytest.approx(1e-9)  # the report shows the model's own mean
    assert floored.binomial_p == pytest.approx(1 - (1 - 0.0003) ** 100)
    assert floored.flag == "watch"


def test_a_slice_is_measured_beyond_the_whole_book_and_beyond_chance():
    # 3 bins used (the fourth empty on both sides): chance = 2 * (1/200 + 1/1000) = 0.012
    expected, actual = np.array([500, 300, 200, 0]), np.array([100, 60, 40, 0])
    assert beyond_whole(0.40, 0.18, expected, actual) == pytest.approx(0.40 - 0.18 - 0.012, abs=1e-12)
    # moving with the book, or less, is nothing beyond it
    assert beyond_whole(0.15, 0.18, expected, actual) == 0.0
    # a slice with no rows has nothing to tell
    assert math.isnan(beyond_whole(0.0, 0.18, expected, np.zeros(4)))


def test_a_level_change_is_flagged_by_its_size_only_when_its_interval_excludes_no_change():
    from crm_modes.monitor.config import Levels
    from crm_modes.monitor.figures import _change

    levels = Levels(watch=0.10, act=0.25)
    # 0.0113 against 0.0100: +13%; error 0.0003: z = 1.96, margin 1.96 * 0.0003 / 0.01 = 5.9 points
    rise = _change(0.0113, 0.0100, 0.0003, levels, 0.95)
    assert rise["change"] == pytest.approx(0.13)
    assert rise["interval"] == pytest.approx([0.13 - 0.0588, 0.13 + 0.0588], abs=1e-3)
    assert rise["flag"] == "watch"
    assert _change(0.0113, 0.0100, 0.0010, levels, 0.95)["flag"] == "ok"  # [-6.6%, +32.6%]: may be noise
    assert _change(0.0130, 0.0100, 0.0001, levels, 0.95)["flag"] == "act"  # +30%
    assert _change(0.0070, 0.0100, 0.0001, levels, 0.95)["flag"] == "ok"  # a fall is shown, not flagged
    assert _change(0.0070, 0.0, 0.0001, levels, 0.95)["change"] is None  # no base to compare with


def test_an_input_mean_shift_is_flagged_either_way_in_standard_deviations():
    from crm_modes.monitor.config import Levels
    from crm_modes.monitor.figures import _shift

    levels = Levels(watch=0.15, act=0.30)
    base = {"rows": 5000, "mean": 2.77, "spread": 1.3}
    # leverage 10% higher: +0.277 over a pooled spread of sqrt((1.28^2 + 1.3^2) / 2) = 1.290 is
    # +0.2147 sd; margin 1.96 * sqrt(2 / 5000) = 0.0392
    worse = _shift({"rows": 5000, "mean": 3.047, "spread": 1.28}, base, levels, 0.95)
    assert worse["shift"] == pytest.approx(0.2147, abs=1e-4)
    assert worse["interval"] == pytest.approx([0.2147 - 0.0392, 0.2147 + 0.0392], abs=1e-3)
    assert worse["flag"] == "watch"
    assert (
        _shift({"rows": 5000, "mean": 2.25, "spread": 1.3}, base, levels, 0.95)["flag"] == "act"
    )  # -0.40 sd
    # the same shift over 100 rows a month: [-0.06, +0.49] may be noise
    small = base | {"rows": 100}
    assert _shift({"rows": 100, "mean": 3.047, "spread": 1.28}, small, levels, 0.95)["flag"] == "ok"
    assert (
        _shift({"rows": 5000, "mean": 3.0, "spread": 1.3}, None, levels, 0.95)["shift"] is None
    )  # no previous
    # a column set to one value on every row is measured against the previous run's spread
    constant = _shift(
        {"rows": 5000, "mean": 10.0, "spread": 0.0}, {"rows": 5000, "mean": 5.0, "spread": 2.0}, levels, 0.95
    )
    assert constant["shift"] == pytest.approx(5 / np.sqrt(2))
    assert constant["flag"] == "act"
    # constant in both runs: the same value is no shift, another value is
    kept = {"rows": 5000, "mean": 0.0, "spread": 0.0}
    assert _shift(kept, kept, levels, 0.95)["flag"] == "ok"
    assert _shift(kept | {"mean": 1.0}, kept, levels, 0.95)["flag"] == "act"


def test_the_grade_mix_is_compared_with_the_previous_runs_by_its_psi():
    from crm_modes.monitor.config import MonitoringConfig
    from crm_modes.monitor.figures import _grade_mix

    config = MonitoringConfig()
    before = {"1": 0.5, "2": 0.5}
    # (0.6 - 0.5) ln(0.6 / 0.5) + (0.4 - 0.5) ln(0.4 / 0.5) = 0.0405
    assert _grade_mix({"1": 0.6, "2": 0.4}, before, config) == {
        "psi": pytest.approx(0.0405, abs=1e-4),
        "flag": "ok",
    }
    assert _grade_mix({"1": 0.9, "2": 0.1}, before, config)["flag"] == "act"  # 0.55
    assert _grade_mix({"1": 0.6, "2": 0.4}, {}, config) is None  # no previous mix
    assert _grade_mix({"1": 0.6, "2": 0.4, "3": 0.0}, before, config) is None  # another master scale


def test_a_profile_keeps_each_numeric_inputs_level_over_the_values_present():
    from crm_modes.models.reference import BookProfile
    from crm_modes.models.stability import Bins

    profile = BookProfile(
        {"leverage": Bins("numeric", edges=(1.0, 2.0)), "collateral_type": Bins("categorical")}
    )
    advice = pd.DataFrame({"recommended_mode": ["basic"] * 3, "alert_level": ["none"] * 3})
    profile.add(pd.DataFrame({"leverage": [1.0, 3.0, np.nan], "collateral_type": ["none"] * 3}), advice)
    profile.add(pd.DataFrame({"leverage": [2.0], "collateral_type": ["none"]}), advice.iloc[:1])
    assert profile.input_level("leverage") == (3, pytest.approx(2.0), pytest.approx(1.0))
    assert "collateral_type" not in profile.input_moments  # categories have shares, not means
    assert BookProfile.from_dict(profile.to_dict()).input_moments == profile.input_moments


def test_a_book_follows_the_previous_run_by_one_month_end():
    from crm_modes.monitor.figures import continuity

    assert continuity("2024-02-29", "2024-01-31")["flag"] == "ok"
    stale = continuity("2024-01-31", "2024-01-31")
    assert stale["flag"] == "act"
    assert stale["note"] == "the same snapshot as the previous run (2024-01-31): last month's file again?"
    wrong = continuity("2024-04-30", "2024-01-31")
    assert wrong["flag"] == "act"
    assert (
        wrong["note"]
        == "snapshot 2024-04-30, where the month after the previous run's 2024-01-31 is 2024-02-29"
    )
    assert continuity("2024-04-30", None)["flag"] == "ok"  # no previous run: nothing to follow
