"""The value of a mode: the formula on hand-made rows, the switching rule, the advisor's value policy."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crm_modes.data.gate import validate
from crm_modes.data.generator import generate_book
from crm_modes.data.schema import MODES
from crm_modes.models.advisor import Advisor
from crm_modes.models.economics import (
    Economics,
    choose_modes,
    load_economics,
    policy_value,
    recommendation_reasons,
    value_parts,
)

ECONOMICS = load_economics(Path(__file__).resolve().parents[2] / "configs" / "economics.yaml")


def _economics(**changes) -> Economics:
    return ECONOMICS.model_copy(update=changes)


def test_value_formula_on_a_hand_made_row():
    # E = 10m at 200 bps: M = 0.2m a year. Collateral 0.5: LGD = max(0.45 (1 - 0.6 x 0.5), 0.1) = 0.315,
    # x 0.9 in responsible mode = 0.2835.
    default = np.array([[0.02, 0.015, 0.01]])
    churn = np.array([[0.20, 0.12, 0.06]])
    parts = value_parts(
        default,
        churn,
        exposure=np.array([10.0]),
        margin_bps=np.array([200.0]),
        collateral_coverage=np.array([0.5]),
        economics=ECONOMICS,
    )
    by_hand = [
        0.2 * (1 - 0.5 * 0.22) - 0.02 * 0.315 * 10 - 0.20 * 0.2 * 2 - (0.01 + 0.0005 * 10),
        0.2 * (1 - 0.5 * 0.135) - 0.015 * 0.315 * 10 - 0.12 * 0.2 * 2 - (0.03 + 0.001 * 10),
        0.2 * (1 - 0.5 * 0.07) - 0.01 * 0.2835 * 10 - 0.06 * 0.2 * 2 - (0.08 + 0.002 * 10),
    ]
    np.testing.assert_allclose(parts.values()[0], by_hand, rtol=1e-12)
    reason = recommendation_reasons(parts, np.array([2]), np.array([0]))[0]
    # loss 0.063 - 0.02835; margin at risk 0.102 - 0.031; cost 0.1 - 0.015
    assert reason == (
        "responsible over basic: saves 0.03m expected loss and saves 0.07m margin at risk "
        "on 10.0m exposure; costs 0.09m a year more"
    )


def test_an_amount_shown_as_zero_takes_no_direction_from_rounding_noise():
    # basic and reactive with the same PD effect: their expected losses differ by float noise only
    tiny = 1e-17
    reasons = []
    for noise in (tiny, -tiny):
        parts = value_parts(
            np.array([[0.02, 0.02 + noise, 0.01]]),
            np.array([[0.20, 0.12, 0.06]]),
            exposure=np.array([1.0]),
            margin_bps=np.array([200.0]),
            collateral_coverage=np.array([0.5]),
            economics=ECONOMICS,
        )
        reasons.append(recommendation_reasons(parts, np.array([0]), np.array([1]))[0])
    assert reasons[0] == reasons[1]
    assert "saves 0.00m expected loss" in reasons[0]


def test_a_row_just_below_the_switching_threshold_keeps_its_mode():
    switching = 0.01
    values = np.array(
        [
            [1.0, 1.0 + switching - 1e-9, 0.5],  # reactive gains just under the switching cost
            [1.0, 1.0 + switching + 1e-6, 0.5],  # ... just over it
            [1.0, 1.0 + switching - 1e-9, 0.5],  # mode today unknown: no switch to pay
        ]
    )
    today = np.array([0, 0, -1])
    chosen = choose_modes(values, today, switching)
    assert chosen.tolist() == [0, 1, 1]
    np.testing.assert_allclose(
        policy_value(values, chosen, today, switching), [1.0, 1.0 + 1e-6, 1.0 + switching - 1e-9]
    )


def test_economics_file_errors_name_the_entry(tmp_path):
    bad = tmp_path / "economics.yaml"
    bad.write_text(
        (Path(__file__).resolve().parents[2] / "configs" / "economics.yaml")
        .read_text()
        .replace("  responsible:", "  proactive:", 1)
    )
    with pytest.raises(ValueError, match=r"economics\.yaml: .*servicing_cost.*basic.*proactive"):
        load_economics(bad)


@pytest.fixture(scope="module")
def rows():
    book = validate(generate_book(3_000, seed=33)).valid
    return book.drop(columns=[c for c in book.columns if c.startswith("oracle_")])


def test_counterfactual_scoring_equals_scoring_with_the_mode_replaced(fitted_advisor, rows):
    """PD: the row with its mode replaced; churn: the same, with the mode-driven readings moved."""
    assert fitted_advisor.readings.models == ("churn",)
    predicted = fitted_advisor.counterfactual(rows)
    for index, mode in enumerate(MODES):
        replaced = rows.assign(assigned_mode=pd.Categorical([mode] * len(rows), categories=list(MODES)))
        moved = fitted_advisor.readings.in_mode(rows, mode)
        np.testing.assert_allclose(
            predicted.churn[:, index], fitted_advisor.churn.predict_proba(moved)[:, 1], rtol=1e-12
        )
        np.testing.assert_allclose(
            predicted.default[:, index], fitted_advisor.default.predict_proba(replaced)[:, 1], rtol=1e-12
        )
    advice = fitted_advisor.advise(rows)
    today = pd.Index(MODES).get_indexer(rows["assigned_mode"].astype(str))
    np.testing.assert_allclose(advice["churn_probability"], predicted.churn[np.arange(len(rows)), today])


def test_moving_the_readings_adds_the_mode_effect_through_the_clients_contacts(fitted_advisor, rows):
    """Where this facility sets the client's mode, responsible mode also brings responsible-mode
    contacts and complaints: a larger churn effect than the mode's direct one; where another
    facility already holds the client in responsible mode, exactly the direct effect."""
    direct = Advisor(
        **{name: getattr(fitted_advisor, name) for name in ("mode", "churn", "default")},
        policy=fitted_advisor.policy,
        economics=ECONOMICS,
    )
    churn = {
        name: advisor.counterfactual(rows).churn
        for name, advisor in (("moved", fitted_advisor), ("direct", direct))
    }
    effect = {name: values[:, 2] - values[:, 0] for name, values in churn.items()}
    alone = (rows["other_facilities_mode"] == "none").to_numpy()
    held = (rows["other_facilities_mode"] == "responsible").to_numpy()
    assert alone.sum() > 100
    assert held.sum() > 100
    assert effect["moved"][alone].mean() < effect["direct"][alone].mean() < 0
    np.testing.assert_allclose(effect["moved"][held], effect["direct"][held], rtol=1e-12)


def test_the_value_policy_recommends_the_mode_of_highest_value(fitted_advisor, rows):
    advice = fitted_advisor.advise(rows)
    values = advice[[f"value_{mode}" for mode in MODES]].to_numpy()
    today = pd.Index(MODES).get_indexer(rows["assigned_mode"].astype(str))
    expected = choose_modes(values, today, ECONOMICS.switching_cost)
    assert (advice["recommended_mode"].to_numpy() == np.asarray(MODES, dtype=object)[expected]).all()
    moved = expected != today
    assert moved.any()
    assert (~moved).any()
    assert advice.loc[moved, "mode_change"].str.contains(" -> ").all()
    assert (advice.loc[~moved, "mode_change"] == "").all()
    assert advice["recommendation_reason"].str.match(r"^(basic|reactive|responsible) over ").all()
    assert set(advice["committee_mode"]) <= set(MODES)


def test_doubling_the_responsible_cost_lowers_the_share_recommended_responsible(fitted_advisor, rows):
    costs = dict(ECONOMICS.servicing_cost)
    responsible = costs["responsible"]
    costs["responsible"] = responsible.model_copy(
        update={"fixed": 2 * responsible.fixed, "exposure_share": 2 * responsible.exposure_share}
    )
    dearer = Advisor(
        mode=fitted_advisor.mode,
        churn=fitted_advisor.churn,
        default=fitted_advisor.default,
        policy=fitted_advisor.policy,
        economics=_economics(servicing_cost=costs),
    )
    share = (fitted_advisor.advise(rows)["recommended_mode"] == "responsible").mean()
    dearer_share = (dearer.advise(rows)["recommended_mode"] == "responsible").mean()
    assert share > 0.01
    assert dearer_share < share
