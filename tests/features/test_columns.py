"""The rows converted once: labels as an encoder reads them, copies with columns replaced, shared work."""

import numpy as np
import pandas as pd
import pytest

from crm_modes.features.columns import FEW_ROWS, MISSING, Columns, Labels, codes_in, label_text, labels_of


def test_labels_of_each_kind_of_column_read_as_the_encoder_learnt_them():
    frame = pd.DataFrame(
        {
            "category": pd.Categorical(["a", None, "b", "a"], categories=["a", "b", "unused"]),
            "text": ["a", None, "b", "a"],
            "number": [1.0, np.nan, 2.5, 1.0],
            "flag": [True, False, True, True],
        }
    )
    columns = Columns(frame)
    for name in frame.columns:
        labels = columns.labels(name)
        assert list(labels.labels[labels.codes]) == list(label_text(frame[name])), name


@pytest.mark.parametrize("rows", [1, 2, FEW_ROWS, FEW_ROWS + 1, 500])
def test_text_of_few_rows_or_many_has_the_codes_and_labels_pandas_factorizes(rows):
    pool = np.array(["basic", None, "reactive", 1, 1.0, True, "1", np.nan, "ré", ""], dtype=object)
    values = pool[np.random.default_rng(rows).integers(0, len(pool), rows)]
    labels = labels_of(pd.Series(values, dtype=object))
    codes, uniques = pd.factorize(np.where(pd.isna(values), MISSING, values))
    np.testing.assert_array_equal(labels.codes, codes)
    assert labels.codes.dtype == np.intp
    assert [(type(label), label) for label in labels.labels] == [(type(label), label) for label in uniques]


def test_a_frame_of_few_rows_reads_what_a_large_frame_reads_for_the_same_rows():
    rows = 3 * FEW_ROWS
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "count": rng.integers(-5, 2**62, rows),
            "amount": np.where(rng.random(rows) < 0.2, np.nan, rng.normal(size=rows)) * -0.0,
            "flag": rng.random(rows) < 0.5,
            "small": rng.integers(0, 255, rows).astype(np.uint8),
            "single": rng.normal(size=rows).astype(np.float32),
            "text": np.array(["a", None, "b", np.nan, 1, "1"], dtype=object)[rng.integers(0, 6, rows)],
            "numbers_as_text": np.array(["1.5", "x", None, 2, "3"], dtype=object)[rng.integers(0, 5, rows)],
            "category": pd.Categorical(rng.choice(["p", "q", None], rows)),
            "nullable": pd.array(
                np.where(rng.random(rows) < 0.3, None, rng.integers(0, 9, rows)), dtype="Int64"
            ),
            "date": pd.to_datetime("2024-01-31") + pd.to_timedelta(rng.integers(0, 90, rows), unit="D"),
        }
    )
    large = Columns(frame)
    for start in (0, FEW_ROWS, rows - 1):
        few = Columns(frame.iloc[start : start + FEW_ROWS])
        assert few._few_rows() is not None  # read in one pass
        for name in frame.columns:
            if name != "date":
                expected = large.number(name)[start : start + FEW_ROWS]
                np.testing.assert_array_equal(few.number(name), expected, strict=True)
                assert np.array_equal(np.signbit(few.number(name)), np.signbit(expected))
            labels, expected = few.labels(name), large.labels(name)
            assert list(labels.labels[labels.codes]) == list(
                expected.labels[expected.codes][start : start + FEW_ROWS]
            )
    assert Columns(frame)._few_rows() is None  # a large frame is read column by column


def test_codes_into_kept_categories_put_unseen_values_last():
    known = {"a": 0, MISSING: 1}
    column = Labels(np.array([0, 1, 2, 0]), np.array(["a", "zzz", MISSING], dtype=object))
    np.testing.assert_array_equal(codes_in(column, known), [0, 2, 1, 0])


def test_a_replaced_copy_reads_its_own_columns_and_shares_the_rest():
    frame = pd.DataFrame({"x": [1.0, 2.0], "mode": ["basic", "reactive"]})
    columns = Columns(frame)
    copy = columns.replaced(x=np.array([5.0, 6.0]), mode=Labels.constant("responsible", 2))
    np.testing.assert_array_equal(copy.number("x"), [5.0, 6.0])
    np.testing.assert_array_equal(columns.number("x"), [1.0, 2.0])
    assert list(copy.to_frame()["mode"]) == ["responsible", "responsible"]
    assert list(frame["mode"]) == ["basic", "reactive"]  # the original rows are untouched


def test_a_column_replaced_by_a_series_reads_as_the_frame_column_would():
    """A shuffled column (permutation importance) keeps its type: booleans stay True/False labels,
    categories their labels, whatever index the Series carries."""
    frame = pd.DataFrame(
        {
            "flag": [True, False, True],
            "grade": pd.Categorical(["a", None, "b"]),
            "x": [1.0, np.nan, 3.0],
        }
    )
    columns = Columns(frame)
    order = [2, 0, 1]
    copy = columns.replaced(**{name: frame[name].take(order) for name in frame.columns})
    shuffled = Columns(frame.take(order).reset_index(drop=True))
    for name in frame.columns:
        assert copy.is_numeric(name) == shuffled.is_numeric(name)
        expected, found = shuffled.labels(name), copy.labels(name)
        np.testing.assert_array_equal(found.labels[found.codes], expected.labels[expected.codes])
    np.testing.assert_array_equal(copy.number("x"), [3.0, 1.0, np.nan])
    pd.testing.assert_frame_equal(copy.to_frame(), frame.take(order).reset_index(drop=True))


def test_a_derived_value_is_computed_once_for_the_copies_that_share_its_inputs():
    columns = Columns(pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0]}))
    calls = []

    def twice_x(rows):
        return lambda: calls.append(1) or rows.number("x") * 2

    same_x = [columns.replaced(y=np.array([0.0, 0.0])) for _ in range(3)]
    for rows in [columns, *same_x]:
        np.testing.assert_array_equal(rows.derived("2x", ["x"], twice_x(rows)), [2.0, 4.0])
    assert len(calls) == 1
    other_x = columns.replaced(x=np.array([10.0, 20.0]))
    np.testing.assert_array_equal(other_x.derived("2x", ["x"], twice_x(other_x)), [20.0, 40.0])
    assert len(calls) == 2


def test_a_columns_objects_are_the_values_its_frame_would_hold():
    """What a reason reads of the few columns it names, without building the frame."""
    frame = pd.DataFrame(
        {
            "x": [1.5, np.nan, 3.0],
            "n": [1, 2, 3],
            "mode": ["basic", None, "reactive"],
            "grade": pd.Categorical(["a", None, "b"]),
        }
    )
    columns = Columns(frame)
    copy = columns.replaced(
        mode=Labels(np.array([2, 0, 1]), np.asarray(["basic", "reactive", "responsible"], dtype=object)),
        x=np.array([7.0, 8.0, np.nan]),
        grade=frame["grade"].take([2, 0, 1]),
        added=Labels.constant("new", 3),
    )
    for rows in (columns, copy, copy.replaced(n=np.array([0.0, 1.0, 2.0]))):
        expected = rows.to_frame()
        for name in expected.columns:
            found = rows.objects(name)
            assert found.dtype == object
            assert [type(value) for value in found] == [
                type(value) for value in expected[name].to_numpy(object)
            ]
            pd.testing.assert_series_equal(pd.Series(found), pd.Series(expected[name].to_numpy(object)))
