import numpy as np
import pandas as pd
import pytest

from crm_modes.data.generator import generate_book
from crm_modes.data.validation import validate
from crm_modes.models.reasons import base_estimator, contributions, top_reasons
from crm_modes.models.sklearn_adapter import expected_raw_score, internal_matrix, tree_contributions


@pytest.fixture(scope="module")
def rows():
    return validate(generate_book(3_000, seed=21)).valid


def test_tree_contributions_add_up_exactly_to_the_raw_score(tree_models, rows):
    for pipeline in (tree_models["default"], tree_models["churn"]):
        model = base_estimator(pipeline)
        matrix = pipeline["features"].transform(rows)
        internal, names = internal_matrix(model, matrix)
        phi = tree_contributions(model, internal)
        np.testing.assert_allclose(
            phi.sum(axis=1) + expected_raw_score(model), model.decision_function(matrix), atol=1e-9
        )
        assert sorted(names) == sorted(matrix.columns)


def test_contributions_are_grouped_by_input_column(tree_models, rows):
    grouped = contributions(tree_models["default"], rows.head(50))
    assert "segment" in grouped.columns
    assert not any("=" in name or name.endswith("__missing") for name in grouped.columns)


def test_reasons_come_from_the_fast_feature_matrix_and_equal_the_pipelines_own(
    tree_models, fitted_advisor, rows, monkeypatch
):
    """The matrix the reasons read is :func:`fast.transform`'s (4.6 ms less per explained record than
    ``Pipeline.transform``): the same contributions and texts as from the pipeline's own transform."""
    from sklearn.pipeline import Pipeline

    sample = rows.head(50)
    trees, linear = tree_models, fitted_advisor  # boosting, and the configured logistic models
    for pipeline in (trees["default"], trees["churn"], linear.default, linear.churn):
        plain = pipeline["features"].transform(sample)
        expected_grouped = contributions(pipeline, sample, matrix=plain)
        expected_texts = top_reasons(pipeline, sample, 3, matrix=plain)
        with monkeypatch.context() as patched:
            patched.setattr(Pipeline, "transform", lambda *_: pytest.fail("Pipeline.transform was called"))
            grouped, texts = contributions(pipeline, sample), top_reasons(pipeline, sample, 3)
        pd.testing.assert_frame_equal(grouped, expected_grouped, check_exact=True)
        assert texts == expected_texts


def test_a_pd_pushed_up_by_days_past_due_names_days_past_due(tree_models, rows):
    current = rows[(rows["days_past_due"] == 0) & (rows["worst_days_past_due_12m"] == 0)].head(20).copy()
    late = current.assign(days_past_due=75, worst_days_past_due_12m=75)
    before = tree_models["default"].predict_proba(current)[:, 1]
    after = tree_models["default"].predict_proba(late)[:, 1]
    assert (after > before).all()
    for reason in top_reasons(tree_models["default"], late, top=3):
        assert reason.split(";")[0].startswith(
            (
                "days past due at the snapshot: 75",
                "worst days past due in the last 12 months: 75",
                "payments were late",
            )
        )
        assert "days past due" in reason


def test_exact_on_deep_trees_too(rows):
    from crm_modes.features.config import load_feature_config
    from crm_modes.training.config import ModelConfig
    from crm_modes.training.fit import fit_model

    config = ModelConfig(
        kind="binary",
        target="default_12m",
        registered_name="x",
        benchmark=False,
        calibration="none",
        estimator={"params": {"max_iter": 15, "max_leaf_nodes": 31}},
    )
    known = rows[rows["default_12m"].notna()]
    pipeline = fit_model(
        "deep", config, load_feature_config("configs/features/synthetic.yaml"), known, known
    ).pipeline
    model = base_estimator(pipeline)
    matrix = pipeline["features"].transform(rows.head(300))
    phi = tree_contributions(model, internal_matrix(model, matrix)[0])
    assert max(int(p.nodes["depth"].max()) for (p,) in model._predictors) > 3
    np.testing.assert_allclose(
        phi.sum(axis=1) + expected_raw_score(model), model.decision_function(matrix), atol=1e-9
    )


def test_lookup_tables_give_the_same_values_as_walking_every_leaf(tree_models, rows, monkeypatch):
    from crm_modes.models import sklearn_adapter

    model = base_estimator(tree_models["default"])
    internal = internal_matrix(model, tree_models["default"]["features"].transform(rows.head(500)))[0]
    tabled = sklearn_adapter._Explainer(model)
    assert all(tree.table is not None for tree in tabled.trees)
    monkeypatch.setattr(sklearn_adapter, "MAX_TABLE_SPLITS", 0)
    walked = sklearn_adapter._Explainer(model)
    assert all(tree.table is None for tree in walked.trees)
    np.testing.assert_allclose(tabled.shap_values(internal), walked.shap_values(internal), atol=1e-12)
