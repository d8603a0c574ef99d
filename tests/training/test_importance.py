"""Permutation importance through the fast paths equals scikit-learn's on the pipeline itself."""

import numpy as np
import pytest
from sklearn.inspection import permutation_importance

from crm_modes.data.gate import validate
from crm_modes.data.generator import generate_book
from crm_modes.training.importance import permutation_scores


@pytest.fixture(scope="module")
def rows():
    return validate(generate_book(3_000, seed=23)).valid


@pytest.mark.parametrize("name", ["mode", "default"])
def test_same_figures_as_the_pipeline(fitted_advisor, rows, name):
    pipeline = getattr(fitted_advisor, name)
    inputs = list(pipeline["features"]["entrance"].feature_names_in_)
    known = rows[rows["default_12m"].notna()].head(1_500)
    if name == "default":
        y, scoring = known["default_12m"].to_numpy(dtype=float), "roc_auc"
    else:
        y, scoring = known["assigned_mode"].astype(str).to_numpy(), "accuracy"
    expected = permutation_importance(
        pipeline, known[inputs], y, scoring=scoring, n_repeats=2, random_state=0, n_jobs=1
    ).importances_mean
    found = permutation_scores(pipeline, known, y, scoring=scoring)
    assert list(found) == inputs
    np.testing.assert_allclose(list(found.values()), expected, rtol=1e-9, atol=1e-12)
    assert max(found.values()) > 0  # something matters


def test_the_pipeline_is_left_as_it_is_and_an_unknown_scoring_is_named(fitted_advisor, rows):
    """The fast paths are installed on a copy: the pipeline passed in can still be saved."""
    known = rows[rows["default_12m"].notna()].head(500)
    permutation_scores(
        fitted_advisor.default, known, known["default_12m"].to_numpy(dtype=float), scoring="roc_auc"
    )
    assert "predict_proba" not in vars(fitted_advisor.default["model"])
    with pytest.raises(ValueError, match="scoring 'f1'"):
        permutation_scores(fitted_advisor.default, known, np.arange(len(known)) % 2, scoring="f1")


def test_one_class_gives_zeros(fitted_advisor, rows):
    found = permutation_scores(fitted_advisor.default, rows.head(50), np.zeros(50), scoring="roc_auc")
    assert set(found.values()) == {0.0}
