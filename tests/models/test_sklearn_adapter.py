"""The categorical remap installed on loaded boosting models changes nothing but speed."""

import copy

import numpy as np
import pandas as pd
import pytest

from crm_modes.data.gate import validate
from crm_modes.data.generator import generate_book
from crm_modes.models.sklearn_adapter import CategoryRemap, gradient_boosting_models, install


@pytest.fixture(scope="module")
def rows():
    return validate(generate_book(2_000, seed=5)).valid


def test_remap_equals_the_fitted_preprocessor_with_unseen_and_missing_codes(tree_models, rows):
    pipeline = tree_models["default"]
    matrix = pipeline["features"].transform(rows)
    for model in gradient_boosting_models(pipeline):
        original = (
            model._preprocessor.original
            if isinstance(model._preprocessor, CategoryRemap)
            else model._preprocessor
        )
        remap = CategoryRemap(original)
        awkward = matrix.copy()
        first = awkward.columns[remap.categorical[0]]
        awkward.loc[awkward.index[:30], first] = 99.0  # a code never seen at fit
        awkward.loc[awkward.index[30:60], first] = np.nan
        np.testing.assert_array_equal(remap.transform(awkward), original.transform(awkward))
        np.testing.assert_array_equal(
            remap.transform(awkward.to_numpy()), original.transform(awkward.to_numpy())
        )


def test_installed_remap_leaves_probabilities_unchanged(tree_models, rows):
    pipeline = copy.deepcopy(tree_models["churn"])
    before = pipeline.predict_proba(rows)
    install(pipeline)
    assert all(isinstance(model._preprocessor, CategoryRemap) for model in gradient_boosting_models(pipeline))
    np.testing.assert_array_equal(pipeline.predict_proba(rows), before)


def test_a_pipeline_with_the_remap_is_never_saved(tree_models, tmp_path):
    from crm_modes.models.serialization import UntrustedModelError, save_pipeline

    with pytest.raises(UntrustedModelError, match="CategoryRemap"):
        save_pipeline(install(copy.deepcopy(tree_models["default"])), tmp_path / "pd.skops")


def test_remap_hands_inputs_it_was_not_built_for_to_the_original(tree_models, rows):
    pipeline = install(copy.deepcopy(tree_models["default"]))
    remap = gradient_boosting_models(pipeline)[0]._preprocessor
    assert isinstance(remap, CategoryRemap)
    matrix = pipeline["features"].transform(rows.head(3))
    shuffled = matrix.iloc[:, ::-1]  # columns in another order: the original selects them by name
    np.testing.assert_array_equal(remap.transform(shuffled), remap.original.transform(shuffled))
    with pytest.raises(ValueError, match="columns are missing"):
        remap.transform(matrix.drop(columns=matrix.columns[0]))


def test_linear_logistic_equals_scikit_learn_and_hands_over_what_it_cannot_score(fitted_advisor, rows):
    from crm_modes.models.sklearn_adapter import LinearLogistic

    pipeline = fitted_advisor.churn  # the configured model: logistic regression, sigmoid calibration
    model = pipeline["model"]
    assert LinearLogistic.applies_to(model)
    matrix = pipeline["features"].transform(rows)
    fast = LinearLogistic(model)
    expected = type(model).predict_proba(model, matrix)
    np.testing.assert_allclose(fast.predict_proba(matrix), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(fast.predict_proba(matrix.to_numpy()), expected, rtol=1e-12, atol=1e-15)
    broken = matrix.copy()
    broken.iloc[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):  # scikit-learn's own message
        fast.predict_proba(broken)
    with pytest.raises(ValueError, match="feature"):
        fast.predict_proba(matrix.iloc[:, :-1])


def test_fast_paths_only_for_the_scikit_learn_releases_they_were_checked_against():
    from crm_modes.models.sklearn_adapter import supported

    assert supported("1.7.0")
    assert supported("1.9.1")
    assert not supported("1.6.1")
    assert not supported("1.10.0")
    assert not supported("2.0.0")
    assert not supported("nightly")


def test_with_an_unchecked_release_the_models_score_through_scikit_learn(fitted_advisor, monkeypatch):
    from crm_modes.models import sklearn_adapter

    pipeline = copy.deepcopy(fitted_advisor.churn)
    monkeypatch.setattr(sklearn_adapter.sklearn, "__version__", "2.0.0")
    sklearn_adapter.install(pipeline)
    assert "predict_proba" not in vars(pipeline["model"])
    monkeypatch.setattr(sklearn_adapter.sklearn, "__version__", "1.9.1")
    sklearn_adapter.install(pipeline)
    assert "predict_proba" in vars(pipeline["model"])


def test_with_an_unchecked_release_the_advice_is_the_plain_one(fitted_advisor, monkeypatch):
    """The adapter off (a release it was not checked against): no fast path is installed and
    the advice, reasons included, is exactly what scikit-learn itself gives."""
    from crm_modes.models import sklearn_adapter

    rows = validate(generate_book(3_000, seed=5)).valid
    rows = rows.drop(
        columns=[c for c in rows.columns if c.startswith("oracle_") or c in ("default_12m", "churn_12m")]
    )
    plain = fitted_advisor.advise(rows)
    disabled = copy.deepcopy(fitted_advisor)
    monkeypatch.setattr(sklearn_adapter.sklearn, "__version__", "2.0.0")
    for name in ("mode", "churn", "default"):
        sklearn_adapter.install(getattr(disabled, name))
    assert sklearn_adapter.linear_logistic(disabled.churn["model"]) is None
    pd.testing.assert_frame_equal(disabled.advise(rows), plain)
    assert plain["alert_reasons"].str.contains("because").any()


def test_with_an_unchecked_release_tree_reasons_say_why_they_are_missing(tree_models, monkeypatch):
    from crm_modes.models import sklearn_adapter
    from crm_modes.models.reasons import top_reasons

    rows = validate(generate_book(300, seed=9)).valid.head(5)
    assert not top_reasons(tree_models["default"], rows, 3)[0].startswith("reasons unavailable")
    monkeypatch.setattr(sklearn_adapter.sklearn, "__version__", "2.0.0")
    reasons = top_reasons(tree_models["default"], rows, 3)
    assert reasons == [reasons[0]] * 5
    assert reasons[0].startswith("reasons unavailable: tree reasons of HistGradientBoosting read")
    assert "scikit-learn 2.0.0 is installed" in reasons[0]


def test_the_tree_check_refuses_trees_it_does_not_recognise(tree_models):
    from crm_modes.models import sklearn_adapter
    from crm_modes.models.reasons import base_estimator

    model = copy.deepcopy(base_estimator(tree_models["default"]))
    assert list(sklearn_adapter.hist_gradient_boosting_problems(model)) == []
    del model._predictors  # as a release that keeps its trees elsewhere would
    (problem,) = sklearn_adapter.hist_gradient_boosting_problems(model)
    assert "its trees are not laid out as this check knows" in problem
