"""Mode effects kept in the domain's order (training/mode_effects.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from crm_modes.shared.errors import InputError
from crm_modes.training.mode_effects import order_mode_effects

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


def test_effects_out_of_order_are_pooled_and_the_model_refit():
    X, y = book({"basic": 0.3, "reactive": -0.2, "responsible": 0.1})  # responsible estimated above reactive
    model = LogisticRegression(C=1.0, max_iter=1000).fit(X, y)
    unconstrained = log_loss(y, model.predict_proba(X)[:, 1])
    effects = order_mode_effects(model, X, y, ORDER)
    assert effects.fitted["responsible"] > effects.fitted["reactive"]
    assert effects.pooled == ["reactive+responsible"]
    kept = effects.kept
    assert kept["basic"] >= kept["reactive"] == kept["responsible"]
    # against basic, the pooled effect lies between the two it replaces
    fitted = {mode: value - effects.fitted["basic"] for mode, value in effects.fitted.items()}
    assert fitted["reactive"] <= kept["reactive"] - kept["basic"] <= fitted["responsible"]
    assert model.coef_[0, 0] == pytest.approx(0.8, abs=0.1)
    # the constrained fit is a fit: no better than the unconstrained one, and close to it
    constrained = log_loss(y, model.predict_proba(X)[:, 1])
    assert unconstrained <= constrained < unconstrained + 0.01


def test_on_standardized_columns_the_effects_are_ordered_on_the_log_odds_scale():
    # a mode's column scaled by 1 / std (as the linear features do): its effect is coefficient x step
    X, y = book({"basic": 0.3, "reactive": -0.2, "responsible": 0.1})
    scaled = X.copy()
    for name in ORDER:
        column = f"assigned_mode={name}"
        scaled[column] = (X[column] - X[column].mean()) / X[column].std()
    model = LogisticRegression(C=1.0, max_iter=1000).fit(scaled, y)
    effects = order_mode_effects(model, scaled, y, ORDER)
    assert effects.pooled == ["reactive+responsible"]
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
    # a row's chance is the same in the pooled modes, and higher in basic
    np.testing.assert_allclose(chances["reactive"], chances["responsible"], rtol=1e-12)
    assert (chances["basic"] > chances["reactive"]).all()
    assert effects.kept["reactive"] == pytest.approx(effects.kept["responsible"])


def test_effects_already_in_order_are_left_as_fitted():
    X, y = book({"basic": 0.4, "reactive": 0.0, "responsible": -0.5})
    model = LogisticRegression(C=1.0, max_iter=1000).fit(X, y)
    before = model.coef_.copy()
    effects = order_mode_effects(model, X, y, ORDER)
    assert effects.pooled == []
    assert effects.kept == effects.fitted
    np.testing.assert_array_equal(model.coef_, before)


def test_a_wholly_reversed_order_pools_every_mode():
    X, y = book({"basic": -0.4, "reactive": 0.0, "responsible": 0.5})
    model = LogisticRegression(C=1.0, max_iter=1000).fit(X, y)
    effects = order_mode_effects(model, X, y, ORDER)
    assert effects.pooled == ["basic+reactive+responsible"]
    assert len(set(effects.kept.values())) == 1


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
        assert kept["basic"] >= kept["reactive"] >= kept["responsible"], (name, fitted.mode_effects)
        # every row's chance, in each mode: never higher for more attention
        rows = table[split.evaluation].head(500)
        chances = [fitted.pipeline.predict_proba(rows.assign(assigned_mode=mode))[:, 1] for mode in ORDER]
        assert (chances[0] >= chances[1] - 1e-12).all(), name
        assert (chances[1] >= chances[2] - 1e-12).all(), name
