"""The scoring request and answer, derived from the schema, and the records as a scoring frame.

Every field of a record is a schema column the models read, with the schema's own rules as
constraints (ranges, categories, nullability), so a bad field is a 422 that names the field
and the problem. Identifiers are optional and echoed back when given.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from crm_modes.data.schema import KEY, SCHEMA, Column, Kind, input_names
from crm_modes.serve.rest.limits import IDENTIFIER_LENGTH, MAX_RECORDS, excerpt

#: Request fields that may be left out: identifiers are echoed back when given.
OPTIONAL_FIELDS = ("client_id", "facility_id", "snapshot_date")
#: Dates a request may carry: within what pandas' nanosecond timestamps can hold.
EARLIEST_DATE, LATEST_DATE = dt.date(1900, 1, 1), dt.date(2261, 12, 31)


def integral(value: object) -> object:
    """JSON writers may send 3.0 for 3; booleans and text are not integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _date_text(value: object) -> object:
    """A date is ``YYYY-MM-DD`` text: a number is not a date (pydantic would read 0 as 1970-01-01)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("a date is text, YYYY-MM-DD, not a number")
    return value


def _field(column: Column) -> tuple[Any, Any]:
    """(annotation, default) of one request field, with the schema's rules as constraints."""
    if column.kind is Kind.CATEGORY:
        annotation: Any = Literal[column.categories]  # type: ignore[valid-type]
    elif column.kind is Kind.INT:
        annotation = Annotated[
            int, Field(ge=column.minimum, le=column.maximum, strict=True), BeforeValidator(integral)
        ]
    elif column.kind in (Kind.FLOAT, Kind.BINARY):
        annotation = Annotated[
            float, Field(ge=column.minimum, le=column.maximum, allow_inf_nan=False, strict=True)
        ]
    elif column.kind is Kind.DATE:
        annotation = Annotated[dt.date, Field(ge=EARLIEST_DATE, le=LATEST_DATE), BeforeValidator(_date_text)]
    else:
        annotation = Annotated[str, Field(min_length=1, max_length=IDENTIFIER_LENGTH)]
    optional = column.nullable or not column.required or column.name in OPTIONAL_FIELDS
    if optional:
        return annotation | None, Field(default=None, description=column.description)
    return annotation, Field(description=column.description)


@functools.cache
def scoring_record(missing: tuple[str, ...] = ()) -> type[BaseModel]:
    """The request record of the schema's inputs, less ``missing`` (the inputs a bank's book lacks)."""
    return create_model(
        "ScoringRecord",
        __config__=ConfigDict(extra="forbid"),
        __doc__="One client facility at a snapshot; fields and rules come from the schema.",
        **{
            column.name: _field(column)
            for column in SCHEMA
            if column.name in input_names() and column.name not in missing
        },
    )


ScoringRecord: type[BaseModel] = scoring_record()


class ScoreRequest(BaseModel):
    """The body of ``POST /v1/score``; a service may be configured to take fewer records."""

    model_config = ConfigDict(extra="forbid")
    # More than the service takes is a 413 before validation (the scoring route counts first).
    records: list[ScoringRecord] = Field(  # type: ignore[valid-type]
        min_length=1, json_schema_extra={"maxItems": MAX_RECORDS}
    )


class ScoreResponse(BaseModel):
    model_version: str
    scores: list[dict[str, Any]]


def json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as JSON-ready dicts: NaN and NaT as None, dates as ``YYYY-MM-DD``.

    Each column's kind is read from its dtype's ``kind`` ("M" dates, "f" floats), the same
    split as pandas' ``is_datetime64_any_dtype`` and ``is_float_dtype`` at a tenth of the cost.
    """
    columns = {}
    for name, values in frame.items():
        kind = values.dtype.kind
        if kind == "M":
            text = values.dt.strftime("%Y-%m-%d")
            columns[name] = [None if pd.isna(value) else value for value in text.tolist()]
        elif kind == "f":
            columns[name] = [None if value != value else value for value in values.to_numpy().tolist()]
        else:
            columns[name] = [None if pd.isna(value) else value for value in values.tolist()]
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


#: The dtype of a column of each kind when no record leaves it empty (pandas infers the same;
#: whole numbers only when the schema bounds them within int64).
_COMPLETE_DTYPES = {Kind.INT: np.int64, Kind.BINARY: np.float64, Kind.CATEGORY: object, Kind.STRING: object}
_INT64 = np.iinfo(np.int64)


def _complete_dtype(column: Column) -> Any:
    """The dtype pandas infers for ``column`` when every record gives it, or None (let it infer)."""
    if column.kind is Kind.INT and not (
        column.minimum is not None
        and column.maximum is not None
        and _INT64.min <= column.minimum
        and column.maximum <= _INT64.max
    ):
        return None
    return _COMPLETE_DTYPES.get(column.kind)


def records_frame(records: list[BaseModel]) -> pd.DataFrame:
    """The records as a DataFrame in the schema's types (numbers as float64, dates as dates).

    A column with an empty value is left to pandas' inference (float64 with NaN, object when
    every value is empty); a complete one is built in the dtype pandas would infer, which
    spares the inference (a third of the cost of one record's frame).
    """
    rows = [record.model_dump() for record in records]
    columns: dict[str, Any] = {}
    for column in SCHEMA:
        if column.name not in rows[0]:
            continue
        values = [row[column.name] for row in rows]
        complete = None not in values
        if not complete and column.name in OPTIONAL_FIELDS and all(value is None for value in values):
            continue  # an identifier nobody sent
        if column.kind is Kind.FLOAT:
            columns[column.name] = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
        elif column.kind is Kind.DATE:  # dates (validated within EARLIEST_DATE..LATEST_DATE) or None
            columns[column.name] = np.array(values, dtype="datetime64[ns]")
        elif complete and (dtype := _complete_dtype(column)) is not None:
            columns[column.name] = np.array(values, dtype=dtype)
        else:
            columns[column.name] = values
    return pd.DataFrame(columns, copy=False)  # the columns are this call's own


def duplicate_keys(records: list[BaseModel]) -> str | None:
    """Why the records are refused when one facility-month appears twice, else None."""
    seen: dict[tuple[object, ...], int] = {}
    for index, record in enumerate(records):
        key = tuple(getattr(record, name) for name in KEY)
        if any(part is None for part in key):
            continue
        if key in seen:
            shown = ", ".join(f"{name} {excerpt(str(part), 40)}" for name, part in zip(KEY, key, strict=True))
            return (
                f"records {seen[key]} and {index} are the same facility-month ({shown}): "
                "each may be scored once per request (the batch gate quarantines repeats)"
            )
        seen[key] = index
    return None
