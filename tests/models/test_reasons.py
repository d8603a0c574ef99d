import numpy as np
import pandas as pd
import pytest

from crm_modes.data.gate import validate
from crm_modes.data.generator import generate_book
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
        baseline=False,
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


def test_contributions_are_the_sums_of_each_source_columns_outputs(tree_models, fitted_advisor, rows):
    """Grouped by source column as pandas groups them (first appearance, every output counted once),
    each row's sums its own whatever the other rows."""
    from crm_modes.features import fast
    from crm_modes.models.reasons import source_column

    sample = rows.head(200)
    for pipeline in (tree_models["default"], fitted_advisor.default, fitted_advisor.churn):
        estimator = base_estimator(pipeline)
        matrix = fast.transform(pipeline["features"], sample)
        if hasattr(estimator, "coef_"):
            per_output = matrix * estimator.coef_[0]
        else:
            internal, names = internal_matrix(estimator, matrix)
            per_output = pd.DataFrame(
                tree_contributions(estimator, internal), columns=names, index=sample.index
            )
        expected = per_output.T.groupby(per_output.columns.map(source_column), sort=False).sum().T
        grouped = contributions(pipeline, sample)
        assert list(grouped.columns) == list(expected.columns)
        np.testing.assert_allclose(grouped.to_numpy(), expected.to_numpy(), rtol=1e-12, atol=1e-12)
        alone = pd.concat([contributions(pipeline, sample.iloc[[i]]) for i in (0, 17, 199)])
        pd.testing.assert_frame_equal(alone, grouped.iloc[[0, 17, 199]], check_exact=True)


def test_reasons_of_rows_already_read_equal_those_of_the_frame(tree_models, fitted_advisor, rows):
    """The advisor explains the rows it has read (:class:`Columns`, the mode set as labels): the same
    texts as from the frame with the mode column assigned."""
    from crm_modes.data.schema import MODES
    from crm_modes.features.columns import Columns, Labels

    sample = rows.head(60).reset_index(drop=True)
    modes = np.arange(len(sample)) % len(MODES)
    read = Columns(sample).replaced(assigned_mode=Labels(modes, np.asarray(MODES, dtype=object)))
    assigned = sample.assign(assigned_mode=np.asarray(MODES, dtype=object)[modes])
    for pipeline in (
        tree_models["default"],
        tree_models["churn"],
        fitted_advisor.default,
        fitted_advisor.churn,
    ):
        pd.testing.assert_frame_equal(
            contributions(pipeline, read), contributions(pipeline, assigned), check_exact=True
        )
        assert top_reasons(pipeline, read, 3) == top_reasons(pipeline, assigned, 3)
