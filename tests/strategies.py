"""Hypothesis strategies derived from the schema: any row the gate accepts."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from hypothesis import strategies as st

from crm_modes.data.schema import SCHEMA, Column, Kind, input_names


def value_of(column: Column) -> st.SearchStrategy:
    if column.kind is Kind.CATEGORY:
        strategy = st.sampled_from(column.categories)
    elif column.kind is Kind.INT:
        strategy = st.integers(int(column.minimum), int(column.maximum))
    elif column.kind is Kind.FLOAT:
        strategy = st.floats(column.minimum, column.maximum, allow_nan=False, allow_infinity=False)
    elif column.kind is Kind.BINARY:
        strategy = st.sampled_from([0, 1])
    elif column.kind is Kind.DATE:
        strategy = st.dates(dt.date(2000, 1, 1), dt.date(2040, 12, 31)).map(pd.Timestamp)
    else:
        strategy = st.text("ABCDEF0123456789", min_size=1, max_size=10)
    return st.one_of(st.none(), strategy) if column.nullable else strategy


def valid_rows(columns: list[str] | None = None) -> st.SearchStrategy[dict]:
    """One scoring-input row (identifiers, date, attributes, assigned mode) as a dict."""
    wanted = set(columns or input_names())
    return st.fixed_dictionaries({c.name: value_of(c) for c in SCHEMA if c.name in wanted})
