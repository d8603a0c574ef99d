"""The service's two conversions in-process: records to the scoring frame, the advice to JSON rows."""

import math

import numpy as np
import pandas as pd
import pytest

from crm_modes.data.schema import SCHEMA
from crm_modes.serve.rest.records import OPTIONAL_FIELDS, ScoringRecord, json_rows, records_frame
from tests.serve.test_rest import records


def inferred(records: list) -> pd.DataFrame:
    """The frame pandas infers from the records' values (what ``records_frame`` must equal)."""
    rows = [record.model_dump() for record in records]
    columns = {}
    for column in SCHEMA:
        if column.name not in rows[0]:
            continue
        values = [row[column.name] for row in rows]
        if column.name in OPTIONAL_FIELDS and all(value is None for value in values):
            continue
        if column.kind == "float":
            values = [math.nan if value is None else value for value in values]
        columns[column.name] = np.array(values, dtype="datetime64[ns]") if column.kind == "date" else values
    return pd.DataFrame(columns)


@pytest.mark.parametrize(
    "change",
    [
        {},  # every field given
        {0: {"project_stage": None, "region": None, "assigned_mode": None}},  # one record leaves some out
        {0: {"project_stage": None}, 1: {"project_stage": None}},  # every record leaves one out
        {0: {"facility_id": None, "snapshot_date": None}},  # identifiers one record did not send
        {0: {"client_id": None}, 1: {"client_id": None}},  # an identifier nobody sent
    ],
)
def test_the_scoring_frame_has_the_dtypes_and_values_pandas_infers(change):
    rows = records(2)
    for index, fields in change.items():
        rows[index] |= fields
    parsed = [ScoringRecord(**row) for row in rows]
    frame = records_frame(parsed)
    pd.testing.assert_frame_equal(frame, inferred(parsed), check_exact=True)
    assert frame["internal_rating"].dtype == np.int64
    assert frame["segment"].dtype == object


def test_json_rows_give_dates_as_text_and_nothing_for_what_is_missing():
    frame = pd.DataFrame(
        {
            "snapshot_date": pd.to_datetime(["2024-03-31", None]),
            "value": [0.25, math.nan],
            "count": np.array([3, 4], dtype=np.int64),
            "mode": np.array(["basic", None], dtype=object),
            "nullable": pd.array([1.5, None], dtype="Float64"),
            "zone": pd.to_datetime(["2024-03-31", "2024-04-30"]).tz_localize("UTC"),
        }
    )
    assert json_rows(frame) == [
        {
            "snapshot_date": "2024-03-31",
            "value": 0.25,
            "count": 3,
            "mode": "basic",
            "nullable": 1.5,
            "zone": "2024-03-31",
        },
        {
            "snapshot_date": None,
            "value": None,
            "count": 4,
            "mode": None,
            "nullable": None,
            "zone": "2024-04-30",
        },
    ]
