"""The categorical remap installed on loaded boosting models changes nothing but speed."""

import copy

import numpy as np
import pytest

from crm_modes.data.generator import generate_book
from crm_modes.data.validation import validate
from crm_modes.models.fast_paths import CategoryRemap, gradient_boosting_models, install


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


def test_calibrated_logistic_equals_scikit_learn_and_hands_over_what_it_cannot_score(fitted_advisor, rows):
    from crm_modes.models.fast_paths import CalibratedLogistic

    pipeline = fitted_advisor.churn  # the configured model: logistic regression, sigmoid calibration
    model = pipeline["model"]
    assert CalibratedLogistic.applies_to(model)
    matrix = pipeline["features"].transform(rows)
    fast = CalibratedLogistic(model)
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
    from crm_modes.models.fast_paths import supported

    assert supported("1.7.0")
    assert supported("1.9.1")
    assert not supported("1.6.1")
    assert not supported("1.10.0")
    assert not supported("2.0.0")
    assert not supported("nightly")


def test_with_an_unchecked_release_the_models_score_through_scikit_learn(fitted_advisor, monkeypatch):
    from crm_modes.models import fast_paths

    pipeline = copy.deepcopy(fitted_advisor.churn)
    monkeypatch.setattr(fast_paths.sklearn, "__version__", "2.0.0")
    fast_paths.install(pipeline)
    assert "predict_proba" not in vars(pipeline["model"])
    monkeypatch.setattr(fast_paths.sklearn, "__version__", "1.9.1")
    fast_paths.install(pipeline)
    assert "predict_proba" in vars(pipeline["model"])
