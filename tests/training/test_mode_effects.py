"""Mode effects kept in the domain's order (training/mode_effects.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from crm_modes.models.gain_uncertainty import coefficient_covariance
from crm_modes.shared.errors import InputError
from crm_modes.training.mode_effects import order_mode_effects, truncated_moments

ORDER = ["basic", "reactive", "responsible"]


def book(effects: dict[str, float], n: int = 20_000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A risk driver, one-hot modes and 0/1 outcomes drawn with the given log-odds effect of each mode."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    mode = rng.integers(0, 3, n)
    columns = {"risk": risk} | {
        f"assigned_mode={name}": (mode == index).astype(float) for index, name in enumerate(ORDER)
    }
    logit = -2.0 + 0.8 * risk + np.array([effects[name] for name in ORDER])[mode]
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(float)
    return pd.DataFrame(columns), y


def test_effects_out_of_order_take_their_posterior_mean_under_the_order():
    X, y = book({"basic": 0.3, "reactive": -0.2, "responsible": 0.1})  # responsible estimated above reactive
    model = LogisticRegression(C=1.0, max_iter=1000).fit(X, y)
    unconstrained = log_loss(y, model.predict_proba(X)[:, 1])
    effects = order_mode_effects(model, X, y, ORDER)
    assert effects.fitted["responsible"] > effects.fitted["reactive"]
    assert effects.constrained
    kept = effects.kept
    # strictly in order: each difference small and positive, not the data's sign nor exactly zero
    assert kept["basic"] > kept["reactive"] > kept["responsible"]
    assert kept["reactive"] - kept["responsible"] < 0.1
    # the risk driver the data know well barely moves
    assert model.coef_[0, 0] == pytest.approx(0.8, abs=0.1)
    # a fit near the unconstrained one: what the data leave room for
    constrained = log_loss(y, model.predict_proba(X)[:, 1])
    assert unconstrained <= constrained < unconstrained + 0.01
    # the covariance under the order: the broken difference's spread shrinks, but stays positive
    direction = np.zeros(1 + X.shape[1])
    direction[1 + list(X.columns).index("assigned_mode=reactive")] = 1.0
    direction[1 + list(X.columns).index("assigned_mode=responsible")] = -1.0
    full = coefficient_covariance(X.to_numpy(), model.predict_proba(X)[:, 1], 1.0)
    assert 0 < direction @ effects.covariance @ direction < direction @ full @ direction


def test_the_posterior_mean_of_a_difference_is_the_truncated_normals():
    from scipy.stats import norm

    # one difference: the mean of N(m, s^2) truncated at zero is m + s phi(m/s) / Phi(m/s)
    for centre, scale in ((-0.13, 0.09), (0.05, 0.1), (-0.5, 0.1)):
        mean, covariance = truncated_moments(np.array([centre]), np.array([[scale**2]]))
        ratio = centre / scale
        exact = centre + scale * norm.pdf(ratio) / norm.cdf(ratio)
        assert mean[0] == pytest.approx(exact, rel=0.02)
        assert covariance.shape == (1, 1)
    # two correlated differences, against rejection sampling
    spread = np.array([[0.076**2, -0.36 * 0.076 * 0.088], [-0.36 * 0.076 * 0.088, 0.088**2]])
    draws = np.random.default_rng(1).multivariate_normal([0.192, -0.134], spread, size=1_000_000)
    kept = draws[(draws >= 0).all(axis=1)]
    mean, covariance = truncated_moments(np.array([0.192, -0.134]), spread)
    np.testing.assert_allclose(mean, kept.mean(axis=0), atol=0.003)
    np.testing.assert_allclose(np.sqrt(np.diag(covariance)), kept.std(axis=0), atol=0.003)


def test_on_standardized_columns_the_effects_are_ordered_on_the_log_odds_scale():
    # a mode's column scaled by 1 / std (as the linear features do): its effect is coefficient x step
    X, y = book({"basic": 0.3, "reactive": -0.2, "responsible": 0.1})
    scaled = X.copy()
    for name in ORDER:
        column = f"assigned_mode={name}"
        scaled[column] = (X[column] - X[column].mean()) / X[column].std()
    model = LogisticRegression(C=1.0, max_iter=1000).fit(scaled, y)
    effects = order_mode_effects(model, scaled, y, ORDER)
    assert effects.constrained
    rows = scaled.iloc[:200]
    chances = {
        name: model.predict_proba(
            rows.assign(
                **{
                    f"assigned_mode={other}": scaled[f"assigned_mode={other}"].max()
                    if other == name
                    else scaled[f"assigned_mode={other}"].min()
                    for other in ORDER
                }
            )
        )[:, 1]
        for name in ORDER
    }
    # every row's chance falls with more attention, by the kept effects on the log-odds
    assert (chances["basic"] > chances["reactive"]).all()
    assert (chances["reactive"] > chances["responsible"]).all()
    logit = {name: np.log(chance / (1 - chance)) for name, chance in chances.items()}
    np.testing.assert_allclose(
        logit["reactive"] - logit["responsible"], effects.kept["reactive"] - effects.kept["responsible"]
    )


def test_effects_already_in_order_are_left_as_fitted():
    X, y = book({"basic": 0.4, "reactive": 0.0, "responsible": -0.5})
    model = LogisticRegression(C=1.0, max_iter=1000).fit(X, y)
    before = model.coef_.copy()
    effects = order_mode_effects(model, X, y, ORDER)
    assert not effects.constrained
    assert effects.covariance is None
    assert effects.kept == effects.fitted
    np.testing.assert_array_equal(model.coef_, before)


def test_a_client_seen_in_many_snapshots_counts_once():
    # each client's row repeated ten times, as a facility's monthly snapshots: counted per client,
    # the effects and their spread are those of a fit on one row per client with the same penalty
    X, y = book({"basic": 0.4, "reactive": 0.0, "responsible": -0.3}, n=6_000, seed=3)
    once = LogisticRegression(C=0.05, max_iter=1000).fit(X, y)
    expected = order_mode_effects(once, X, y, ORDER, groups=np.arange(len(y)))
    repeated, labels = pd.concat([X] * 10, ignore_index=True), np.tile(y, 10)
    clients = np.tile(np.arange(len(y)), 10)
    model = LogisticRegression(C=0.05, max_iter=1000).fit(repeated, labels)
    row_counted = {name: model.coef_[0, list(X.columns).index(f"assigned_mode={name}")] for name in ORDER}
    effects = order_mode_effects(model, repeated, labels, ORDER, groups=clients)
    assert effects.design_effect == pytest.approx(10.0, rel=0.1)
    assert expected.design_effect == pytest.approx(1.0, abs=0.1)
    for name in ORDER:  # one constant apart: compare differences against reactive
        kept = effects.kept[name] - effects.kept["reactive"]
        assert kept == pytest.approx(expected.kept[name] - expected.kept["reactive"], abs=0.03)
    # the repeated rows alone overstate what the data know: the penalty shrank them less
    assert abs(row_counted["basic"] - row_counted["reactive"]) > abs(
        effects.kept["basic"] - effects.kept["reactive"]
    )
    # and the stored covariance is the one-row-per-client spread, not a tenth of it
    direction = np.zeros(1 + X.shape[1])
    direction[1 + list(X.columns).index("assigned_mode=basic")] = 1.0
    direction[1 + list(X.columns).index("assigned_mode=reactive")] = -1.0
    assert direction @ effects.covariance @ direction == pytest.approx(
        direction @ expected.covariance @ direction, rel=0.15
    )


def test_independent_rows_keep_their_fitted_effects_when_counted_per_client():
    X, y = book({"basic": 0.4, "reactive": 0.0, "responsible": -0.5})
    model = LogisticRegression(C=1.0, max_iter=1000).fit(X, y)
    effects = order_mode_effects(model, X, y, ORDER, groups=np.arange(len(y)))
    assert effects.design_effect == pytest.approx(1.0, abs=0.1)
    assert not effects.constrained
    for name in ORDER:
        assert effects.kept[name] - effects.kept["reactive"] == pytest.approx(
            effects.fitted[name] - effects.fitted["reactive"], abs=0.02
        )


def test_a_wholly_reversed_order_keeps_every_mode_in_order_by_a_little():
    X, y = book({"basic": -0.4, "reactive": 0.0, "responsible": 0.5})
    model = LogisticRegression(C=1.0, max_iter=1000).fit(X, y)
    effects = order_mode_effects(model, X, y, ORDER)
    kept = effects.kept
    assert kept["basic"] > kept["reactive"] > kept["responsible"]
    assert kept["basic"] - kept["responsible"] < 0.15  # the data leave little room


def test_a_mode_the_model_does_not_read_is_named():
    X, y = book({"basic": 0.0, "reactive": 0.0, "responsible": 0.0})
    model = LogisticRegression().fit(X.drop(columns="assigned_mode=responsible"), y)
    with pytest.raises(InputError, match="responsible"):
        order_mode_effects(model, X.drop(columns="assigned_mode=responsible"), y, ORDER)


def test_the_configuration_takes_an_order_of_modes_for_a_logistic_binary_model_only():
    from pydantic import ValidationError

    from crm_modes.training.config import ModelConfig

    base = {"kind": "binary", "target": "default_12m", "registered_name": "x"}
    logistic = {"type": "logistic_regression"}
    assert ModelConfig(**base, estimator=logistic, mode_effect_order=ORDER).mode_effect_order == ORDER
    for wrong in (
        {"estimator": {"type": "lightgbm"}, "mode_effect_order": ORDER},
        {"estimator": logistic, "mode_effect_order": ["basic", "premium"]},
        {"estimator": logistic, "mode_effect_order": ["basic", "basic"]},
        {"estimator": logistic, "mode_effect_order": ORDER, "calibration": "sigmoid", "calibration_folds": 3},
    ):
        with pytest.raises(ValidationError, match="mode_effect_order"):
            ModelConfig(**base, **wrong)


def test_the_default_configuration_keeps_the_pd_and_churn_effects_in_order(book_50k):
    from crm_modes.data.gate import validate
    from crm_modes.training.config import load_training_config
    from crm_modes.training.fit import fit_model
    from crm_modes.training.trainer import model_split, training_rows
    from tests.conftest import REPO

    config = load_training_config(REPO / "configs" / "train.yaml")
    table = validate(book_50k).valid
    for name in ("churn", "default"):
        model = config.models[name].model_copy(update={"baseline": False})
        assert model.mode_effect_order == ORDER
        split, _ = model_split(table, config, model)
        fit_rows, calibration_rows = training_rows(split, model)
        fitted = fit_model(name, model, config.features, table[fit_rows], table[calibration_rows])
        kept = fitted.mode_effects.kept
        assert kept["basic"] > kept["reactive"] > kept["responsible"], (name, fitted.mode_effects)
        # a client's snapshots are not independent: counted per client, not per row
        assert fitted.mode_effects.design_effect > 2, (name, fitted.mode_effects.design_effect)
        # every row's chance, in each mode: lower for more attention
        rows = table[split.evaluation].head(500)
        chances = [fitted.pipeline.predict_proba(rows.assign(assigned_mode=mode))[:, 1] for mode in ORDER]
        assert (chances[0] > chances[1]).all(), name
        assert (chances[1] > chances[2]).all(), name
