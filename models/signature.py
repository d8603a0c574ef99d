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


def input_schema(columns: list[str], example: pd.DataFrame) -> Schema:
    """Column specs for ``columns``: the schema's kind where declared, else the example's dtype.

    Nullable schema columns are optional: a request may leave them out entirely.
    """
    declared = {column.name: column for column in SCHEMA}
    specs = []
    for name in columns:
        if name in declared:
            spec = declared[name]
            specs.append(ColSpec(_MLFLOW_TYPE[spec.kind], name, required=not spec.nullable))
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


def signature(columns: list[str], example: pd.DataFrame, outputs: Schema) -> ModelSignature:
    return ModelSignature(inputs=input_schema(columns, example), outputs=outputs)
