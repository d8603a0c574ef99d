"""Properties of the synthetic-book feature pipeline that must hold for any valid row."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_modes.data.gate import validate
from crm_modes.data.schema import column
from crm_modes.features.builder import build_feature_pipeline
from crm_modes.features.config import load_feature_config
from tests.features.checks import assert_model_ready
from tests.strategies import valid_rows

# Scoring rows may carry the previous score, which no feature pipeline reads.
pytestmark = pytest.mark.filterwarnings("ignore::crm_modes.features.entrance.UnusedColumnsWarning")

CONFIG = load_feature_config("configs/features/synthetic.yaml")
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module", params=["tree", "linear"])
def fitted(request, small_book):
    pipeline = build_feature_pipeline(CONFIG, target="default_12m", flavor=request.param)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline.fit(validate(small_book).valid)
    pipeline.flavor = request.param
    return pipeline


def gated(rows: list[dict]) -> pd.DataFrame:
    result = validate(pd.DataFrame(rows))
    assert len(result.quarantine) == 0, result.quarantine["quarantine_reason"].tolist()
    return result.valid


@SETTINGS
@given(row=valid_rows())
def test_any_valid_row_transforms_to_a_model_ready_vector(fitted, row):
    vector = fitted.transform(gated([row]))
    assert vector.shape == (1, len(fitted.get_feature_names_out()))
    assert_model_ready(vector, fitted.flavor)


@SETTINGS
@given(rows=st.lists(valid_rows(), min_size=2, max_size=8, unique_by=lambda r: r["facility_id"]))
def test_one_row_alone_equals_the_same_row_in_a_batch(fitted, rows):
    batch = fitted.transform(gated(rows)).to_numpy()
    for i, row in enumerate(rows):
        alone = fitted.transform(gated([row])).to_numpy()
        np.testing.assert_array_equal(alone[0], batch[i])


@SETTINGS
@given(row=valid_rows(), order=st.randoms(use_true_random=False))
def test_column_order_never_matters(fitted, row, order):
    frame = gated([row])
    shuffled = list(frame.columns)
    order.shuffle(shuffled)
    pd.testing.assert_frame_equal(fitted.transform(frame), fitted.transform(frame[shuffled]))


@SETTINGS
@given(row=valid_rows(), unseen=st.text(min_size=1, max_size=12))
def test_unseen_categories_give_a_valid_vector(fitted, row, unseen):
    frame = gated([row])
    for name in ("industry", "product", "segment"):
        frame[name] = pd.Series([unseen], dtype=object)  # bypasses the gate on purpose
    vector = fitted.transform(frame)
    assert_model_ready(vector, fitted.flavor)
    assert len(vector) == 1


def test_category_absent_from_training_falls_into_other(small_book):
    book = validate(small_book).valid
    without_multinationals = book[book["segment"] != "multinational"]
    pipeline = build_feature_pipeline(CONFIG, target="churn_12m", flavor="linear").set_output(
        transform="pandas"
    )
    pipeline.fit(without_multinationals)
    multinational = book[book["segment"] == "multinational"].head(3)
    assert len(multinational) == 3
    scaled = pipeline[:-1].transform(multinational)
    assert (scaled["segment=__other__"] == 1.0).all()
    assert column("segment").categories[-1] == "multinational"
