"""A gain's standard error: the coefficients' covariance, its delta method, and moves that must beat it."""

import copy
from dataclasses import replace

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from crm_modes.data.gate import validate
from crm_modes.data.generator import generate_book
from crm_modes.data.schema import MODES
from crm_modes.models.economics import choose_modes
from crm_modes.models.gain_uncertainty import COVARIANCE, coefficient_covariance, covariance_of
from crm_modes.models.scored_values import mode_index


def test_the_covariance_is_the_spread_of_coefficients_fitted_on_fresh_samples():
    rng = np.random.default_rng(0)
    truth = np.array([-1.0, 0.8, -0.5, 0.3])  # intercept, then three coefficients
    fits, formulas = [], []
    for _ in range(200):
        X = rng.normal(size=(2_000, 3))
        y = rng.random(2_000) < 1 / (1 + np.exp(-(truth[0] + X @ truth[1:])))
        model = LogisticRegression(C=1e6, max_iter=1_000).fit(X, y)
        fits.append(np.concatenate([model.intercept_, model.coef_[0]]))
        formulas.append(coefficient_covariance(X, model.predict_proba(X)[:, 1], model.C))
    ratio = np.diag(np.cov(np.array(fits).T)) / np.diag(np.mean(formulas, axis=0))
    assert ((ratio > 0.8) & (ratio < 1.25)).all(), ratio


def test_a_stronger_penalty_leaves_less_uncertainty():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 2))
    p = np.full(500, 0.3)
    loose = coefficient_covariance(X, p, 1e6)
    tight = coefficient_covariance(X, p, 1e-3)
    assert (np.diag(tight)[1:] < np.diag(loose)[1:] / 2).all()
    assert np.diag(tight)[1:].max() <= 1e-3 + 1e-12  # never above the prior's C


def test_modes_kept_in_order_differ_by_an_uncertain_positive_effect(fitted_advisor):
    from crm_modes.models.estimators import fitted_estimators

    matrix = None
    for pipeline in (fitted_advisor.churn, fitted_advisor.default):
        covariance = covariance_of(pipeline)
        (logistic,) = fitted_estimators(pipeline)
        names = list(logistic.feature_names_in_)
        if matrix is None:
            matrix = pipeline["features"].transform(validate(generate_book(3_000, seed=5)).valid)
        column = {mode: 1 + names.index(f"assigned_mode={mode}") for mode in MODES}  # the intercept is first
        step = {mode: float(np.ptp(matrix[f"assigned_mode={mode}"])) for mode in MODES}
        coefficient = np.concatenate([logistic.intercept_, logistic.coef_[0]])
        for first, second in (("basic", "reactive"), ("reactive", "responsible")):
            direction = np.zeros(len(coefficient))  # the difference of the two modes' effects
            direction[column[first]], direction[column[second]] = step[first], -step[second]
            assert direction @ coefficient > 0  # more attention, lower log-odds
            assert float(direction @ covariance @ direction) > 0  # never certain


@pytest.fixture(scope="module")
def rows():
    book = validate(generate_book(2_000, seed=31)).valid
    return book.drop(
        columns=[c for c in book.columns if c.startswith("oracle_") or c in ("default_12m", "churn_12m")]
    )


def _perturbed(pipeline, rng, covariance):
    """A copy of ``pipeline`` whose logistic coefficients are one draw from their uncertainty."""
    from crm_modes.models.estimators import fitted_estimators

    changed = copy.deepcopy(pipeline)
    (logistic,) = fitted_estimators(changed)
    draw = rng.multivariate_normal(np.concatenate([logistic.intercept_, logistic.coef_[0]]), covariance)
    logistic.intercept_ = draw[:1]
    logistic.coef_ = draw[None, 1:]
    return changed


def test_the_standard_error_is_the_spread_of_the_gain_over_draws_of_the_coefficients(fitted_advisor, rows):
    sample = rows.iloc[:300].reset_index(drop=True)
    today = mode_index(sample["assigned_mode"])
    errors = fitted_advisor.gain_errors(sample, today)
    assert (errors[np.arange(len(sample)), today] == 0).all()  # staying has no uncertain gain
    rng = np.random.default_rng(7)
    covariances = {name: covariance_of(getattr(fitted_advisor, name)) for name in ("churn", "default")}
    gains = []
    for _ in range(150):
        drawn = replace(
            fitted_advisor,
            **{
                name: _perturbed(getattr(fitted_advisor, name), rng, covariances[name])
                for name in covariances
            },
        )
        values = drawn.advise(sample)[["value_basic", "value_reactive", "value_responsible"]].to_numpy()
        gains.append(values - values[np.arange(len(sample)), today][:, None])
    spread = np.std(gains, axis=0)
    moving = errors > 0
    ratio = np.median(spread[moving] / errors[moving])
    assert 0.85 < ratio < 1.15, ratio
    assert np.corrcoef(spread[moving], errors[moving])[0, 1] > 0.95


def test_a_move_within_its_uncertainty_is_not_recommended():
    values = np.array([[1.0, 1.05, 0.0], [1.0, 1.50, 0.0]])
    today = np.array([0, 0])
    errors = np.array([[0.0, 0.03, 0.1], [0.0, 0.03, 0.1]])
    assert choose_modes(values, today, 0.01).tolist() == [1, 1]
    assert choose_modes(values, today, 0.01, uncertainty=errors, confidence=2.0).tolist() == [0, 1]
    unknown = np.array([-1, -1])  # no mode today: no move, the best mode whatever the uncertainty
    assert choose_modes(values, unknown, 0.01, uncertainty=errors, confidence=2.0).tolist() == [1, 1]


def test_advice_moves_only_where_the_gain_beats_its_standard_errors(fitted_advisor, rows):
    bold = fitted_advisor.advise(rows)
    errors = [f"gain_error_{mode}" for mode in MODES]
    assert bold[errors].isna().all().all()  # not estimated without a confidence
    careful_advisor = replace(
        fitted_advisor, economics=fitted_advisor.economics.model_copy(update={"move_confidence": 2.0})
    )
    careful = careful_advisor.advise(rows)
    today = mode_index(rows["assigned_mode"])
    moved = {
        name: (mode_index(advice["recommended_mode"]) != today).sum()
        for name, advice in (("bold", bold), ("careful", careful))
    }
    assert 0 < moved["careful"] < moved["bold"]
    values = careful[[f"value_{mode}" for mode in MODES]].to_numpy()
    standard = careful[errors].to_numpy()
    rows_ = np.arange(len(rows))
    chosen = mode_index(careful["recommended_mode"])
    switching = fitted_advisor.economics.switching_cost
    gain = values[rows_, chosen] - values[rows_, today]
    moving = chosen != today
    assert (gain[moving] > switching + 2.0 * standard[rows_, chosen][moving]).all()
    assert (standard[rows_, today] == 0).all()
    assert np.isfinite(standard).all()


def test_a_confidence_without_logistic_models_is_refused_naming_it(fitted_advisor, tree_models, rows):
    trees = replace(
        fitted_advisor,
        churn=tree_models["churn"],
        default=tree_models["default"],
        economics=fitted_advisor.economics.model_copy(update={"move_confidence": 1.0}),
    )
    with pytest.raises(ValueError, match="move_confidence: a gain's standard error needs logistic"):
        trees.advise(rows.iloc[:50])


def test_the_covariance_travels_with_the_saved_model(fitted_advisor, tmp_path):
    from crm_modes.models.serialization import load_pipeline, save_pipeline

    path = tmp_path / "default.skops"
    save_pipeline(fitted_advisor.default, path)
    loaded = load_pipeline(path)
    np.testing.assert_array_equal(covariance_of(loaded), covariance_of(fitted_advisor.default))
    assert getattr(fitted_advisor.default["model"], COVARIANCE).shape[0] == 1 + len(
        fitted_advisor.default["model"].coef_[0]
    )
