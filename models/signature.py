"""MLflow model signatures derived from the schema (or, for other tables, the data)."""

from __future__ import annotations

import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from crm_modes.data.schema import SCHEMA, Kind

_MLFLOW_TYPE = {
    Kind.INT: "long",
    Kind.BINARY: "long",
    Kind.FLOAT: "double",
    Kind.CATEGORY: "string",
    Kind.STRING: "string",
    Kind.DATE: "datetime",
}


def input_schema(columns: list[str], example: pd.DataFrame, *, optional: tuple[str, ...] = ()) -> Schema:
    """Column specs for ``columns``: the schema's kind where declared, else the example's dtype.

    Nullable schema columns, and those named in ``optional``, may be left out of a request.
    """
    declared = {column.name: column for column in SCHEMA}
    specs = []
    for name in columns:
        if name in declared:
            spec = declared[name]
            required = not spec.nullable and name not in optional
            specs.append(ColSpec(_MLFLOW_TYPE[spec.kind], name, required=required))
        else:
            specs.append(ColSpec(_dtype_type(example[name]), name))
    return Schema(specs)


def _dtype_type(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values):
        return "boolean"
    if pd.api.types.is_integer_dtype(values):
        return "long"
    if pd.api.types.is_numeric_dtype(values):
        return "double"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "datetime"
    return "string"


def signature(
    columns: list[str], example: pd.DataFrame, outputs: Schema, **options: object
) -> ModelSignature:
    return ModelSignature(inputs=input_schema(columns, example), outputs=outputs, **options)
