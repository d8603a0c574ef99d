"""Every alert rule: a row built to trigger it does; one just under the threshold does not."""

from pathlib import Path

import numpy as np
import pytest

from crm_modes.models.alerts import Signals, actions, evaluate_alerts, load_policy, risk_grades
from crm_modes.models.economics import expected_loss, load_economics

POLICY = load_policy("configs/alert_policy.yaml")
MODE = {"basic": 0, "reactive": 1, "responsible": 2}


def alerts_for(
    mode="responsible",
    *,
    recommended=None,
    given=True,
    pd=0.001,
    previous=np.nan,
    churn=0.01,
    dpd=0,
    delay=np.nan,
    breaches=0,
):
    """(codes, level name) of one row."""
    signals = Signals(
        mode_today=np.array([MODE[mode]]),
        recommended_mode=np.array([MODE[recommended or mode]]),
        mode_given=np.array([given]),
        default_probability=np.array([pd]),
        previous_default_probability=np.array([previous]),
        churn_probability=np.array([churn]),
        days_past_due=np.array([float(dpd)]),
        project_delay_months=np.array([delay]),
        covenant_breaches_12m=np.array([float(breaches)]),
    )
    result = evaluate_alerts(signals, POLICY)
    return [code for code in result.codes[0].split(",") if code], POLICY.levels[result.level[0]]


def test_a_quiet_row_raises_nothing():
    assert alerts_for() == ([], "none")


@pytest.mark.parametrize(
    ("pd", "expected"),
    [
        (0.0199, ([], "none")),
        (0.02, (["PD_WATCH"], "watch")),
        (0.0499, (["PD_WATCH"], "watch")),
        (0.05, (["PD_WARNING"], "warning")),
        (0.1499, (["PD_WARNING"], "warning")),
        (0.15, (["PD_CRITICAL"], "critical")),
    ],
)
def test_pd_levels_in_responsible_mode(pd, expected):
    assert alerts_for(pd=pd) == expected


@pytest.mark.parametrize("mode", ["reactive", "basic"])
def test_predicted_risk_alone_raises_nothing_outside_responsible_mode(mode):
    assert alerts_for(mode, pd=0.5, churn=0.9, previous=0.01) == ([], "none")


@pytest.mark.parametrize(
    ("previous", "pd", "fires"),
    [
        (0.0300, 0.0500, True),  # absolute rise 0.02
        (0.0301, 0.0500, False),  # rise 0.0199, ratio 1.66
        (0.0100, 0.0200, True),  # ratio 2.0 at the watch level
        (0.0101, 0.0200, False),  # ratio 1.98
        (0.0050, 0.0150, False),  # ratio 3, but below the watch level and a rise of only 0.01
    ],
)
def test_sharp_pd_rise_against_the_previous_score(previous, pd, fires):
    assert ("PD_RISE" in alerts_for(pd=pd, previous=previous)[0]) == fires


def test_no_rise_without_a_previous_score():
    assert "PD_RISE" not in alerts_for(pd=0.2)[0]


@pytest.mark.parametrize(
    ("churn", "expected"),
    [
        (0.2499, ([], "none")),
        (0.25, (["CHURN_WATCH"], "watch")),
        (0.3999, (["CHURN_WATCH"], "watch")),
        (0.40, (["CHURN_WARNING"], "warning")),
    ],
)
def test_churn_levels_in_responsible_mode(churn, expected):
    assert alerts_for(churn=churn) == expected


@pytest.mark.parametrize("mode", ["reactive", "responsible"])
@pytest.mark.parametrize(
    ("dpd", "expected"),
    [
        (0, ([], "none")),
        (1, (["DPD_1"], "watch")),
        (29, (["DPD_1"], "watch")),
        (30, (["DPD_30"], "warning")),
        (89, (["DPD_30"], "warning")),
        (90, (["DPD_90"], "critical")),
    ],
)
def test_days_past_due_events_in_reactive_and_responsible_mode(mode, dpd, expected):
    assert alerts_for(mode, dpd=dpd) == expected


@pytest.mark.parametrize("mode", ["reactive", "responsible"])
def test_project_delay_and_covenant_breach_events(mode):
    assert alerts_for(mode, delay=5.99) == ([], "none")
    assert alerts_for(mode, delay=6.0) == (["PROJECT_DELAY"], "warning")
    assert alerts_for(mode, breaches=0) == ([], "none")
    assert alerts_for(mode, breaches=1) == (["COVENANT_BREACH"], "warning")


def test_basic_mode_raises_only_hard_events():
    assert alerts_for("basic", dpd=89, delay=20, breaches=3) == ([], "none")
    assert alerts_for("basic", dpd=90) == (["DPD_90"], "critical")


def test_mode_upgrade_signal():
    assert alerts_for("basic", recommended="responsible") == (["MODE_UPGRADE"], "watch")
    assert alerts_for("reactive", recommended="responsible") == (["MODE_UPGRADE"], "watch")
    assert alerts_for("responsible", recommended="basic") == ([], "none")  # a downgrade is no alert
    assert alerts_for("basic", recommended="responsible", given=False) == ([], "none")


def test_codes_are_ordered_by_severity_and_the_action_follows_the_worst():
    signals = Signals(
        mode_today=np.array([2]),
        recommended_mode=np.array([2]),
        mode_given=np.array([True]),
        default_probability=np.array([0.06]),
        previous_default_probability=np.array([np.nan]),
        churn_probability=np.array([0.3]),
        days_past_due=np.array([95.0]),
        project_delay_months=np.array([np.nan]),
        covenant_breaches_12m=np.array([1.0]),
    )
    result = evaluate_alerts(signals, POLICY)
    assert result.codes[0] == "DPD_90,PD_WARNING,COVENANT_BREACH,CHURN_WATCH"
    assert result.first[0] == "DPD_90"
    assert actions(result, POLICY) == ["hand over to collections and restructuring"]


def test_master_scale_and_expected_loss():
    grades = risk_grades(np.array([0.0004, 0.0005, 0.009, 0.01, 0.3, 1.0]), POLICY)
    assert grades.tolist() == ["1", "2", "5", "6", "10", "10"]
    pd, exposure = np.full(3, 0.1), np.full(3, 10.0)
    economics = load_economics("configs/economics.yaml")
    loss = expected_loss(pd, exposure, np.array([0.0, 1.0, 1.0]), np.array([0, 0, 2]), economics)
    np.testing.assert_allclose(loss, [0.45, 0.18, 0.162])


def test_a_policy_naming_an_unknown_level_is_refused(tmp_path):
    text = Path("configs/alert_policy.yaml").read_text().replace("{1: watch,", "{1: alarm,")
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"levels \['alarm'\] are not among"):
        load_policy(path)
