"""The fast transform gives exactly what the fitted pipeline's own transform gives."""

import warnings

import numpy as np
import pandas as pd
import pytest

from crm_modes.data.gate import validate
from crm_modes.features import fast
from crm_modes.features.builder import build_feature_pipeline
from crm_modes.features.columns import Columns
from crm_modes.features.config import load_feature_config
from crm_modes.features.entrance import MissingColumnsError, UnusedColumnsWarning

CONFIG = load_feature_config("configs/features/synthetic.yaml")
#: with configured ratios too; leverage and coverage are missing or zero in some rows
WITH_RATIOS = CONFIG.model_copy(
    update={
        "ratios": {
            "leverage_per_cover": ("leverage", "interest_coverage"),
            "cover_per_x": ("interest_coverage", "leverage"),
        }
    }
)


@pytest.fixture(scope="module")
def book(small_book):
    return validate(small_book).valid


@pytest.fixture(
    scope="module",
    params=[(CONFIG, "tree"), (CONFIG, "linear"), (WITH_RATIOS, "tree"), (WITH_RATIOS, "linear")],
    ids=["tree", "linear", "tree-ratios", "linear-ratios"],
)
def fitted(request, book):
    config, flavor = request.param
    return build_feature_pipeline(config, target="default_12m", flavor=flavor).fit(book)


def awkward(book: pd.DataFrame) -> pd.DataFrame:
    """Gate-typed rows with missing numbers, an unseen category and a missing category."""
    rows = book.head(400).copy()
    rows.loc[:50, "leverage"] = np.nan
    rows.loc[60:80, "interest_coverage"] = np.nan
    rows.loc[85:90, "interest_coverage"] = 0.0
    rows["segment"] = rows["segment"].cat.add_categories(["never seen"])
    rows.loc[100:120, "segment"] = "never seen"
    rows.loc[130:140, "segment"] = np.nan
    return rows


def as_text(rows: pd.DataFrame) -> pd.DataFrame:
    """The same rows as a service request builds them: categories as plain strings."""
    return rows.astype(
        {name: object for name in rows.columns if isinstance(rows[name].dtype, pd.CategoricalDtype)}
    )


@pytest.mark.parametrize("typed", [lambda rows: rows, as_text], ids=["categorical", "text"])
@pytest.mark.parametrize("size", [1, 3, 400])
def test_equals_the_pipeline_transform_exactly(fitted, book, typed, size):
    assert fast._plan(fitted) is not None  # the array path runs, not the fallback
    rows = typed(awkward(book)).sample(n=size, random_state=size)
    pd.testing.assert_frame_equal(fast.transform(fitted, rows), fitted.transform(rows), check_exact=True)


def test_a_missing_column_is_named_as_by_the_pipeline(fitted, book):
    with pytest.raises(MissingColumnsError, match="leverage"):
        fast.transform(fitted, book.head(5).drop(columns="leverage"))


def test_missing_and_unused_columns_are_met_as_by_the_pipeline_in_every_path(fitted, book):
    rows = book.head(5).assign(colour="red", shade="dark")
    weights = np.zeros(len(fast.feature_names(fitted)))
    with pytest.warns(UnusedColumnsWarning) as expected:
        fitted.transform(rows)
    for path in (
        lambda: fast.transform(fitted, rows),
        lambda: fast.matrix(fitted, Columns(rows)),
        lambda: fast.dot(fitted, Columns(rows), weights),
    ):
        with pytest.warns(UnusedColumnsWarning) as warned:
            path()
        assert [str(w.message) for w in warned] == [str(w.message) for w in expected]
        assert "['colour', 'shade']" in str(warned[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the columns it was fitted with warn of nothing
        fast.dot(fitted, Columns(book.head(5)), weights)
    with pytest.raises(MissingColumnsError, match="leverage"):
        fast.dot(fitted, Columns(book.head(5).drop(columns="leverage")), weights)


def test_dot_refuses_weights_of_another_width_every_time(fitted, book):
    wrong = np.zeros(len(fast.feature_names(fitted)) + 1)
    for _ in range(2):  # a layout that does not fit is never kept
        with pytest.raises(ValueError, match="weights for a feature matrix of"):
            fast.dot(fitted, Columns(book.head(5)), wrong)


def test_text_in_a_numeric_column_is_named_as_by_the_pipeline(fitted, book):
    rows = book.head(5).astype({"leverage": object})
    rows.loc[rows.index[0], "leverage"] = "high"
    with pytest.raises(
        ValueError, match=r"'leverage' (is declared numeric|holds values that are not numbers)"
    ):
        fast.transform(fitted, rows)


def test_text_in_a_ratio_input_is_named_as_by_the_pipeline(book):
    fitted = build_feature_pipeline(WITH_RATIOS, target="default_12m").fit(book)
    rows = book.head(5).astype({"interest_coverage": object})
    rows.loc[rows.index[0], "interest_coverage"] = "strong"
    with pytest.raises(ValueError, match="'interest_coverage'"):
        fast.transform(fitted, rows)


def test_a_pipeline_of_another_shape_runs_its_own_transform(book):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    other = Pipeline([("double", FunctionTransformer(lambda frame: frame[["leverage"]] * 2))]).fit(book)
    pd.testing.assert_frame_equal(fast.transform(other, book.head(3)), book.head(3)[["leverage"]] * 2)


def test_a_step_saved_before_ratios_existed_still_transforms(book):
    fitted = build_feature_pipeline(CONFIG, target="default_12m").fit(book)
    expected = fitted.transform(book.head(20))
    del fitted["domain"].__dict__["ratios"]  # as skops restores a step saved by an older version
    pd.testing.assert_frame_equal(fitted.transform(book.head(20)), expected, check_exact=True)
    pd.testing.assert_frame_equal(fast.transform(fitted, book.head(20)), expected, check_exact=True)


@pytest.mark.parametrize("typed", [lambda rows: rows, as_text], ids=["categorical", "text"])
@pytest.mark.parametrize("size", [1, 400])
def test_dot_equals_the_matrix_times_the_weights(fitted, book, typed, size):
    rows = typed(awkward(book)).sample(n=size, random_state=size)
    weights = np.random.default_rng(size).normal(size=len(fast.feature_names(fitted)))
    expected = fitted.transform(rows).to_numpy() @ weights
    np.testing.assert_allclose(fast.dot(fitted, Columns(rows), weights), expected, rtol=1e-12, atol=1e-12)


def test_dot_of_rows_with_a_column_replaced_equals_the_matrix_of_those_rows(fitted, book):
    rows = awkward(book)
    weights = np.random.default_rng(3).normal(size=len(fast.feature_names(fitted)))
    columns = Columns(rows)
    fast.dot(fitted, columns, weights)  # fills the caches of the original rows first
    doubled = rows["leverage"].to_numpy() * 2
    expected = fitted.transform(rows.assign(leverage=doubled)).to_numpy() @ weights
    np.testing.assert_allclose(
        fast.dot(fitted, columns.replaced(leverage=doubled), weights), expected, rtol=1e-12, atol=1e-12
    )
    np.testing.assert_array_equal(
        fast.matrix(fitted, columns.replaced(leverage=doubled)),
        fitted.transform(rows.assign(leverage=doubled)),
    )


def test_dot_leaves_text_in_a_numeric_column_to_the_plain_path(fitted, book):
    rows = book.head(5).astype({"leverage": object})
    rows.loc[rows.index[0], "leverage"] = "high"
    assert fast.dot(fitted, Columns(rows), np.zeros(len(fast.feature_names(fitted)))) is None
