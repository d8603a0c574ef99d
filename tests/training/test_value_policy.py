"""The doubly robust estimate on hand-worked values; the policy report and the value gate end to end."""

import json
import subprocess

import numpy as np
import pytest
import yaml

from crm_modes.training.config import ValueGateConfig
from crm_modes.training.off_policy import (
    DoublyRobust,
    calibrate_out_of_fold,
    cluster_bootstrap,
    doubly_robust,
    gain_concentration,
    mode_weights,
)
from crm_modes.training.policy_report import gate_failures


def test_doubly_robust_parts_worked_by_hand():
    outcome = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [5.0, 4.0, 0.0]])
    logged = np.array([2, 0, 1])
    realised = np.array([4.0, 0.5, 3.0])
    propensity = np.array([[0.1, 0.1, 0.8], [0.5, 0.25, 0.25], [0.3, 0.005, 0.695]])
    policy = np.array([2, 1, 1])
    parts = doubly_robust(
        outcome, logged, realised, propensity, policy, switching_cost=0.5, propensity_floor=0.01
    )
    # row 0 follows the log: 3, weight 1 / 0.8, residual (4 - 3) / 0.8; row 1 switches: 2 - 0.5;
    # row 2 follows with propensity 0.005 clipped to 0.01: 4, weight 100, residual (3 - 4) * 100
    np.testing.assert_allclose(parts.direct, [3.0, 1.5, 4.0])
    np.testing.assert_allclose(parts.weight, [1.25, 0.0, 100.0])
    np.testing.assert_allclose(parts.residual, [1.25, 0.0, -100.0])
    assert parts.clipped == 1
    # self-normalized: the residuals' sum scaled by rows / sum of weights
    assert parts.value == pytest.approx(8.5 + (1.25 - 100.0) * 3 / 101.25)
    assert parts.mean_weight == pytest.approx(101.25 / 3)


def test_self_normalization_does_not_care_how_the_propensities_are_scaled():
    """Propensities all off by the same factor (a committee model under- or over-confident
    about deviations) move the plain estimate, not the self-normalized one."""
    rng = np.random.default_rng(0)
    n = 1_000
    outcome = rng.normal(1.0, 0.2, (n, 3))
    logged = rng.integers(0, 3, n)
    realised = outcome[np.arange(n), logged] + rng.normal(0.3, 0.1, n)
    propensity = np.full((n, 3), 1 / 3)
    policy = rng.integers(0, 3, n)
    right, halved = (
        doubly_robust(outcome, logged, realised, p, policy, switching_cost=0.0, propensity_floor=0.01)
        for p in (propensity, propensity / 2)
    )
    assert halved.value == pytest.approx(right.value)
    assert halved.mean_weight == pytest.approx(2 * right.mean_weight)


def test_cluster_bootstrap_resamples_whole_groups_and_pairs_the_draws():
    values = np.array([1.0, 1.0, 5.0, 5.0])
    groups = np.array(["a", "a", "b", "b"])
    nothing = np.zeros(4)

    def direct_only(direct):
        return DoublyRobust(direct=direct, residual=nothing, weight=nothing, clipped=0)

    estimates = cluster_bootstrap(
        {"x": direct_only(values), "twice": direct_only(2 * values)},
        groups,
        resamples=400,
        confidence=0.9,
        seed=0,
        differences={"gap": ("twice", "x")},
    )
    assert estimates["x"].value == 12.0
    # two groups of totals 2 and 10: a resample holds 2 of them, so totals are 4, 12 or 20
    assert estimates["x"].lower == 4.0
    assert estimates["x"].upper == 20.0
    assert estimates["twice"].upper == 40.0
    # paired: the gap is the x total itself in every resample
    assert (estimates["gap"].value, estimates["gap"].lower, estimates["gap"].upper) == (12.0, 4.0, 20.0)


@pytest.mark.integration
def test_mean_weight_per_mode_is_one_for_right_propensities_and_not_for_wrong_ones():
    rng = np.random.default_rng(0)
    n = 200_000
    truth = rng.dirichlet([4.0, 2.0, 1.0], size=n)  # each row's real chances of each mode
    logged = (rng.random(n)[:, None] > truth.cumsum(axis=1)).sum(axis=1)
    right = mode_weights(logged, truth, floor=0.001)
    assert set(right) == {"basic", "reactive", "responsible"}
    assert all(abs(weight - 1.0) < 0.03 for weight in right.values())
    sharpened = truth**3 / (truth**3).sum(axis=1, keepdims=True)  # overconfident, as an imitator is
    overconfident = mode_weights(logged, sharpened, floor=0.001)
    assert overconfident["responsible"] > 5  # its deviations declared near impossible: huge weights
    flattened = truth**0.3 / (truth**0.3).sum(axis=1, keepdims=True)  # too unsure
    unsure = mode_weights(logged, flattened, floor=0.001)
    assert unsure["basic"] > 1.2
    assert unsure["responsible"] < 0.6


@pytest.mark.integration
def test_out_of_fold_isotonic_calibration_brings_every_mode_weight_to_one():
    rng = np.random.default_rng(1)
    n = 120_000
    truth = rng.dirichlet([4.0, 2.0, 1.0], size=n)
    logged = (rng.random(n)[:, None] > truth.cumsum(axis=1)).sum(axis=1)
    sharpened = truth**3 / (truth**3).sum(axis=1, keepdims=True)  # an imitator's overconfidence
    folds = rng.integers(0, 5, n)
    calibrated = calibrate_out_of_fold(sharpened, logged, folds)
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    assert (calibrated > 0).all()
    before = mode_weights(logged, sharpened, floor=0.001)
    after = mode_weights(logged, calibrated, floor=0.001)
    assert before["responsible"] > 5
    assert all(0.9 <= weight <= 1.1 for weight in after.values()), after
    # out of fold: a row's own mode never calibrates its probability (one fold: nothing to learn from)
    alone = calibrate_out_of_fold(sharpened, logged, np.zeros(n, dtype=int))
    np.testing.assert_allclose(alone, sharpened, atol=1e-5)


def test_gain_concentration_finds_the_few_clients_that_decide_a_gain():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(1_000), 4)  # 1,000 clients of 4 rows
    n = groups.size
    realised, outcome = rng.normal(0.0, 1.0, n), np.zeros((n, 3))
    logged, propensity = rng.integers(0, 3, n), np.full((n, 3), 1 / 3)
    policy = np.where(np.arange(n) % 2 == 0, logged, (logged + 1) % 3)  # half the rows follow the log

    def concentration(first, second, clients):
        first, second = (
            doubly_robust(
                outcome, logged, realised, propensity, chosen, switching_cost=0.0, propensity_floor=0.01
            )
            for chosen in (first, second)
        )
        return gain_concentration(first, second, groups, clients=clients)

    # outcomes of one size: the largest 1% of normal terms carry about 8% of their variance
    assert concentration(policy, logged, 10) < 0.15
    # a default of a large facility, in the first client, on a row both policies follow
    realised[2] = -5_000.0
    assert concentration(policy, logged, 1) > 0.99
    assert concentration(policy, policy, 10) == 0.0  # no difference, no variance to split


@pytest.mark.parametrize(
    ("lower", "share", "refused"),
    [(5.0, 0.1, []), (-1.0, 0.1, ["its lower bound is below"]), (5.0, 0.9, ["cannot be trusted"])],
)
def test_the_gate_refuses_a_gain_that_may_be_negative_or_rests_on_a_few_clients(lower, share, refused):
    report = {
        "rows": 1_000,
        "dr_gain": {"value": 10.0, "lower": lower, "upper": 20.0},
        "dr_gain_concentration": {"clients": 10, "share_of_variance": share},
    }
    failures = gate_failures(report, ValueGateConfig())
    assert len(failures) == len(refused)
    for failure, words in zip(failures, refused, strict=True):
        assert words in failure
    assert gate_failures(report, ValueGateConfig(enabled=False)) == []
    assert len(gate_failures(report, ValueGateConfig(max_concentration=1.0))) == int(lower < 0)


def test_policy_report_prints_logs_and_writes_every_figure(cli, advisor_store):
    folder = advisor_store["folder"]
    capped = folder / "capped.yaml"  # the trained configuration, and the bank's capacity
    capped.write_text(
        f"base: {advisor_store['config'].name}\nadvisor:\n  capacity:\n    responsible_share: 0.15\n"
    )
    result = subprocess.run(
        [cli, "policy-report", "--config", str(capped), "--json", "report.json"],
        cwd=folder,
        env=advisor_store["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "value captured" in result.stdout
    report = json.loads((folder / "report.json").read_text())
    assert {"value_captured", "policies", "dr_estimate", "dr_true_value", "dr_gain"} <= set(report)
    policies = report["policies"]
    assert set(policies) == {
        "committee",
        "assigned",
        "all_basic",
        "all_reactive",
        "all_responsible",
        "imitation_model",
        "value_policy",
        "oracle_best",
    }
    assert policies["oracle_best"] >= max(policies.values()) - 1e-6
    captured = (policies["value_policy"] - policies["committee"]) / (
        policies["oracle_best"] - policies["committee"]
    )
    assert report["value_captured"] == pytest.approx(captured)
    assert report["dr_true_value"] == policies["value_policy"]
    assert report["dr_outcome_model"] == "cross-fitted on the evaluation rows"
    assert "within responsible slots" in result.stdout
    assert "one more is worth" in result.stdout
    capacity = report["capacity"]
    assert capacity["mix"]["responsible"] <= 0.15
    assert capacity["responsible_slots"] == int(0.15 * report["rows"])
    assert capacity["policies"]["oracle_best"] >= capacity["policies"]["value_policy"] - 1e-6
    low, high = report["dr_interval"]
    assert low <= report["dr_estimate"] <= high
    assert sum(sum(row.values()) for row in report["switch_matrix"].values()) == report["rows"]
    assert set(report["mean_weight_by_mode"]) == {"basic", "reactive", "responsible"}
    assert "mean weight per mode applied" in result.stdout
    concentration = report["dr_gain_concentration"]
    assert concentration["clients"] == 10
    assert 0.0 < concentration["share_of_variance"] <= 1.0
    assert "its variance carried by 10 clients" in result.stdout
    # the propensity the bundle records with its decisions, judged on the same rows
    assert set(report["recorded_weight_by_mode"]) == {"basic", "reactive", "responsible"}
    assert "by the propensity recorded" in result.stdout
    from mlflow import MlflowClient

    run_id = result.stdout.split("logged to MLflow run")[-1].split()[0]
    logged = MlflowClient(tracking_uri=advisor_store["uri"]).get_run(run_id).data.metrics
    assert {
        "mean_weight_basic",
        "recorded_weight_basic",
        "capacity_responsible_price",
        "capacity_value_captured",
        "dr_gain_concentration",
    } <= set(logged)


@pytest.mark.integration
def test_promote_refuses_a_bundle_whose_value_policy_may_lose(cli, advisor_store, tmp_path):
    from tests.conftest import quiet_mlflow_env, write_training_config

    env = quiet_mlflow_env(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    config = write_training_config(tmp_path, rows=20_000, advisor=True)
    strict = yaml.safe_load(config.read_text())
    strict["advisor"]["value_gate"] = {"enabled": True, "bootstrap": 50, "min_gain_lower_bound": 1e9}
    config.write_text(yaml.safe_dump(strict))

    def run(*args):
        return subprocess.run(
            [cli, *args, "--config", str(config)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    assert run("train").returncode == 0
    refused = run("promote")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "crm-advisor v1: refused" in refused.stderr
    assert "doubly robust gain over the committee policy" in refused.stderr
    assert "below the minimum 1000000000.00m" in refused.stderr
    # nothing moved: no champion anywhere
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    for name in ("crm-mode", "crm-churn", "crm-pd", "crm-advisor"):
        with pytest.raises(MlflowException):
            client.get_model_version_by_alias(name, "champion")


def test_cross_fitted_propensities_do_not_recognise_deviating_assignments(book_50k):
    """A committee model that saw a facility 'knows' its deviating mode; the cross-fitted one must not."""
    from crm_modes.data.gate import validate
    from crm_modes.data.schema import MODES
    from crm_modes.training.config import load_training_config
    from crm_modes.training.fit import fit_model
    from crm_modes.training.policy_report import cross_fitted_propensity, evaluation_rows
    from tests.conftest import REPO

    config = load_training_config(REPO / "configs" / "train.yaml")
    rows = evaluation_rows(config, validate(book_50k).valid)
    assigned = rows["assigned_mode"].astype(str).map(MODES.index).to_numpy()
    deviating = (
        rows["assigned_mode"].astype(str).to_numpy() != rows["oracle_policy_mode"].astype(str).to_numpy()
    )
    assert deviating.sum() > 100

    propensity = cross_fitted_propensity(config, rows)
    np.testing.assert_allclose(propensity.sum(axis=1), 1.0)
    honest = propensity[np.arange(len(rows)), assigned]
    seen_all = fit_model(
        "mode",
        config.models["mode"].model_copy(update={"baseline": False}),
        config.features,
        rows,
        rows.iloc[:0],
    )
    probabilities = seen_all.pipeline.predict_proba(rows)
    classes = [str(c) for c in seen_all.pipeline.classes_]
    recognised = probabilities[np.arange(len(rows)), [classes.index(MODES[a]) for a in assigned]]
    # 7% of assignments deviate at random: an honest propensity gives them little weight
    assert honest[deviating].mean() < 0.3
    assert recognised[deviating].mean() > 0.6
    # calibrated out of fold: every mode's weight nearer one than the model's own probabilities give
    # (within [0.9, 1.1] on the default book's 60,000 evaluation rows: benchmarks/bench_value_policy.py;
    # this book's 7,000 rows leave more noise)
    gate = config.advisor.value_gate
    uncalibrated = config.model_copy(
        update={
            "advisor": config.advisor.model_copy(
                update={"value_gate": gate.model_copy(update={"propensity_calibration": "none"})}
            )
        }
    )
    calibrated = mode_weights(assigned, propensity, floor=gate.propensity_floor)
    raw = mode_weights(assigned, cross_fitted_propensity(uncalibrated, rows), floor=gate.propensity_floor)
    worst = max(abs(weight - 1.0) for weight in calibrated.values())
    assert worst < 0.3, calibrated
    assert worst < max(abs(weight - 1.0) for weight in raw.values()) / 2, (calibrated, raw)


def test_cross_fitted_values_of_a_row_never_come_from_a_model_that_saw_its_outcome(book_50k, fitted_advisor):
    from crm_modes.data.gate import validate
    from crm_modes.training.config import load_training_config
    from crm_modes.training.policy_report import cross_fitted_values, evaluation_rows
    from tests.conftest import REPO

    config = load_training_config(REPO / "configs" / "train.yaml")
    rows = evaluation_rows(config, validate(book_50k).valid)
    values = cross_fitted_values(config, fitted_advisor, rows, folds=3)
    assert values.shape == (len(rows), 3)
    assert np.isfinite(values).all()
    # every outcome of one client flipped: that client's values stay (its models never saw them),
    # the other folds' values move (their models did)
    client = rows["client_id"].iloc[0]
    own = (rows["client_id"] == client).to_numpy()
    flipped = rows.copy()
    for label in ("default_12m", "churn_12m"):
        flipped.loc[own, label] = 1.0 - flipped.loc[own, label]
    again = cross_fitted_values(config, fitted_advisor, flipped, folds=3)
    np.testing.assert_allclose(again[own], values[own])
    assert not np.allclose(again[~own], values[~own])
    bundle = fitted_advisor.advise(rows)[["value_basic", "value_reactive", "value_responsible"]]
    assert not np.allclose(values, bundle.to_numpy())


def test_capacity_figures_allocate_within_the_bounds_and_judge_against_the_best_within_them():
    import pandas as pd

    from crm_modes.training.config import CapacityConfig
    from crm_modes.training.policy_report import capacity_figures

    rng = np.random.default_rng(3)
    n = 400
    truth = rng.normal(10.0, 1.0, size=(n, 3))
    truth[:, 2] += rng.normal(0.5, 1.0, n)  # responsible often worth more: the cap binds
    estimate = truth + rng.normal(0.0, 0.5, size=(n, 3))
    logged = rng.integers(0, 3, n)
    committee = logged.copy()
    rows = pd.DataFrame(
        {
            "facility_id": [f"F{row // 4}" for row in range(n)],  # four monthly rows per facility
            "region": rng.choice(["north", "south"], n),
        }
    )
    capped = capacity_figures(
        estimate, truth, logged, committee, 0.1, CapacityConfig(responsible_share=0.25), rows
    )
    assert capped["responsible_slots"] == 100
    assert capped["mix"]["responsible"] <= 0.25
    assert capped["responsible_price"] > 0  # the bound binds: one more slot is worth something
    assert len(capped["first_moves"]) == len(set(capped["first_moves"])) == 10
    assert 0 < capped["value_captured"] <= 1
    exact = capacity_figures(
        truth, truth, logged, committee, 0.1, CapacityConfig(responsible_share=0.25), rows
    )
    assert exact["value_captured"] == pytest.approx(1.0)  # the truth allocated is the best within the cap
    none = capacity_figures(
        estimate, truth, logged, committee, 0.1, CapacityConfig(responsible_share=0.0), rows
    )
    assert none["mix"]["responsible"] == 0.0
    above = capacity_figures(
        estimate, truth, logged, committee, 0.1, CapacityConfig(responsible_share=1.0), rows
    )
    assert above["responsible_price"] == 0.0  # a cap above the book does not bind
    assert CapacityConfig(responsible_share=0.3, moves_share=0.1).bounds(1_001) == (300, 100)
    assert CapacityConfig().bounds(50) == (None, None)
    # each region its own team: its share of its own facilities, priced on its own
    north = (rows["region"] == "north").to_numpy()
    regional = CapacityConfig(per="region", responsible_share=0.25, responsible_shares={"north": 0.1})
    split = capacity_figures(estimate, truth, logged, committee, 0.1, regional, rows)
    assert split["bounds"]["responsible"] == {
        "north": float(int(0.1 * north.sum())),
        "south": float(int(0.25 * (~north).sum())),
    }
    assert set(split["prices"]["responsible"]) == {"north", "south"}
    assert split["prices"]["responsible"]["north"] > 0
    assert split["value_captured"] <= 1 + 1e-9
    # RM hours: the modes' hours within the hours a month, and the exact best within them for the truth
    hours = CapacityConfig(
        rm_hours_per_facility=2.0, hours_by_mode={"basic": 0.5, "reactive": 2.0, "responsible": 6.0}
    )
    timed = capacity_figures(truth, truth, logged, committee, 0.1, hours, rows)
    shares = timed["mix"]
    assert 0.5 * shares["basic"] + 2.0 * shares["reactive"] + 6.0 * shares["responsible"] <= 2.0 + 1e-9
    assert timed["hours_price"] > 0
    assert timed["bounds"]["rm_hours"] == {"book": 2.0 * n}
    assert timed["value_captured"] >= 1 - timed["gap"] / (
        timed["policies"]["oracle_best"] - timed["policies"]["committee"]
    )
    # a move must beat two standard errors of its gain: fewer moves, none within its uncertainty
    errors = np.full((n, 3), 0.4)
    errors[np.arange(n), logged] = 0.0
    careful = capacity_figures(
        estimate, truth, logged, committee, 0.1, CapacityConfig(), rows, uncertainty=errors, confidence=2.0
    )
    bold = capacity_figures(estimate, truth, logged, committee, 0.1, CapacityConfig(), rows)
    assert 0 < careful["share_switched"] < bold["share_switched"]
    with pytest.raises(ValueError, match="no column 'segment'"):
        capacity_figures(estimate, truth, logged, committee, 0.1, CapacityConfig(per="segment"), rows)


@pytest.mark.parametrize(
    ("settings", "refused"),
    [
        ({"responsible_shares": {"north": 0.1}}, "needs per"),
        ({"per": "region", "responsible_shares": {"nord": 0.1}}, "names \\['nord'\\], not values of region"),
        ({"per": "region", "responsible_shares": {"north": 1.5}}, "must lie in \\[0, 1\\]"),
        ({"rm_hours_per_facility": 2.0}, "come together"),
        ({"rm_hours_per_facility": 2.0, "hours_by_mode": {"basic": 1.0}}, "needs every mode"),
        (
            {
                "rm_hours_per_facility": 2.0,
                "hours_by_mode": {"basic": -1.0, "reactive": 1.0, "responsible": 2.0},
            },
            "may not be negative",
        ),
    ],
)
def test_a_capacity_that_cannot_mean_anything_is_refused_naming_why(settings, refused):
    from pydantic import ValidationError

    from crm_modes.training.config import CapacityConfig

    with pytest.raises(ValidationError, match=refused):
        CapacityConfig(**settings)
