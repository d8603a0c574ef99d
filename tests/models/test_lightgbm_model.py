"""LightGBM behind the project's estimator contract: native categories and missing values,
the library's own contributions, a text model that loads without pickle and is checked first."""

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from crm_modes.models.lightgbm_model import LightGBMClassifier, text_problems
from crm_modes.models.serialization import UntrustedModelError, load_pipeline, save_pipeline


@parametrize_with_checks([LightGBMClassifier(n_estimators=5, min_child_samples=1, min_data_per_group=1)])
def test_sklearn_contract(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = 4_000
    code = rng.integers(0, 6, n).astype(float)
    amount = rng.lognormal(0, 1, n)
    amount[rng.random(n) < 0.1] = np.nan  # missing, left to LightGBM
    logit = -1.5 + 0.8 * (code == 3) - 0.6 * (code == 5) + 0.5 * np.nan_to_num(np.log(amount), nan=1.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"code": code, "amount": amount, "noise": rng.normal(size=n)}), y


def _fitted(table, **params):
    X, y = table
    return LightGBMClassifier(n_estimators=40, categorical_features=["code"], **params).fit(X, y)


def test_categories_split_natively_and_missing_values_are_kept(table):
    model = _fitted(table)
    assert model.categorical_indices_ == [0]
    assert "[categorical_feature: 0]" in model.model_text_
    X, _ = table
    assert np.isfinite(model.predict_proba(X)).all()
    assert model.predict_proba(X.iloc[:3]).shape == (3, 2)


def test_contributions_are_the_librarys_and_sum_to_the_raw_score(table):
    import lightgbm

    model = _fitted(table)
    X, _ = table
    contributions = model.contributions(X)
    library = lightgbm.Booster(model_str=model.model_text_).predict(X.to_numpy(), pred_contrib=True)
    np.testing.assert_allclose(contributions, library, rtol=0, atol=1e-12)
    np.testing.assert_allclose(contributions.sum(axis=1), model.decision_function(X), rtol=1e-9, atol=1e-9)


def test_a_saved_model_is_text_and_predicts_the_same_after_loading(table, tmp_path):
    model = _fitted(table)
    X, _ = table
    path = save_pipeline(model, tmp_path / "model.skops")
    loaded = load_pipeline(path)
    assert getattr(loaded, "_booster", None) is None  # nothing but the text came from the file
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert isinstance(loaded.model_text_, str)


def test_a_model_text_that_is_not_the_estimators_own_is_refused(table, tmp_path):
    model = _fitted(table)
    assert text_problems(model.model_text_, 3, 2) is None
    assert "max_feature_idx is 2" in text_problems(model.model_text_, 4, 2)
    assert "num_class is 1" in text_problems(model.model_text_, 3, 3)
    assert "header" in text_problems("import os\n", 3, 2)
    model.model_text_ = model.model_text_.replace("max_feature_idx=2", "max_feature_idx=7", 1)
    path = save_pipeline(model, tmp_path / "tampered.skops")
    with pytest.raises(UntrustedModelError, match="max_feature_idx is 7, the estimator has 3 features"):
        load_pipeline(path)


def test_multiclass_probabilities_and_labels(table):
    X, y = table
    labels = np.where(y == 1, "responsible", np.where(X["noise"] > 0, "basic", "reactive"))
    model = LightGBMClassifier(n_estimators=20).fit(X, labels)
    assert model.classes_.tolist() == ["basic", "reactive", "responsible"]
    probabilities = model.predict_proba(X)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert (model.predict(X) == model.classes_[probabilities.argmax(axis=1)]).all()
    with pytest.raises(TypeError, match="binary models only"):
        model.contributions(X)


def test_the_same_seed_gives_the_same_model(table):
    assert _fitted(table).model_text_ == _fitted(table).model_text_


def test_columns_that_differ_from_fit_are_named(table):
    model = _fitted(table)
    X, _ = table
    with pytest.raises(ValueError, match="feature names should match those that were passed during fit"):
        model.predict_proba(X[["amount", "code", "noise"]])
    with pytest.raises(ValueError, match=r"categorical_features \['grade'\] are not columns of X"):
        LightGBMClassifier(categorical_features=["grade"]).fit(*table)


@pytest.fixture(scope="module")
def pd_pipeline(book_50k):
    """A calibrated LightGBM PD model on the book's tree-flavored features, as training fits it."""
    from crm_modes.data.gate import validate
    from crm_modes.features.config import load_feature_config
    from crm_modes.training.config import ModelConfig
    from crm_modes.training.fit import fit_model

    config = ModelConfig(
        kind="binary",
        target="default_12m",
        registered_name="x",
        baseline=False,
        calibration="sigmoid",
        estimator={"type": "lightgbm", "params": {"n_estimators": 60, "num_leaves": 15}},
    )
    known = validate(book_50k).valid
    known = known[known["default_12m"].notna()]
    half = len(known) // 2
    features = load_feature_config("configs/features/synthetic.yaml")
    return fit_model("pd", config, features, known.iloc[:half], known.iloc[half:]).pipeline, known


def test_reasons_of_a_lightgbm_pipeline_are_the_librarys_contributions(pd_pipeline):
    from crm_modes.models.reasons import base_estimator, contributions, top_reasons

    pipeline, rows = pd_pipeline
    rows = rows.head(400)
    model = base_estimator(pipeline)
    assert isinstance(model, LightGBMClassifier)
    assert model.categorical_indices_  # segment, industry, ... split natively
    matrix = pipeline["features"].transform(rows)
    library = model.contributions(matrix)
    grouped = contributions(pipeline, rows)
    # grouped by input column, they still add up to the raw score less the library's bias term
    np.testing.assert_allclose(
        grouped.sum(axis=1), model.decision_function(matrix) - library[:, -1], atol=1e-9
    )
    np.testing.assert_allclose(
        grouped["segment"], library[:, list(matrix.columns).index("segment")], atol=1e-12
    )
    assert all(reason for reason in top_reasons(pipeline, rows.head(20), top=3))


def test_a_lightgbm_pipeline_saves_and_loads_with_the_reviewed_types_only(pd_pipeline, tmp_path):
    import skops.io as sio

    from crm_modes.models.serialization import TRUSTED_TYPES

    pipeline, rows = pd_pipeline
    path = save_pipeline(pipeline, tmp_path / "pd.skops")
    assert set(sio.get_untrusted_types(file=path)) <= set(TRUSTED_TYPES)
    loaded = load_pipeline(path)
    np.testing.assert_array_equal(
        loaded.predict_proba(rows.head(500)), pipeline.predict_proba(rows.head(500))
    )


def test_the_configured_thread_count_reaches_lightgbm(monkeypatch):
    from crm_modes.shared.threads import configured_threads

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert configured_threads() == 2
    assert LightGBMClassifier()._lightgbm_params()["num_threads"] == 2
    assert LightGBMClassifier(n_threads=1)._lightgbm_params()["num_threads"] == 1
