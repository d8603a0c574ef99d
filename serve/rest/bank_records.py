"""Scoring requests in a bank's own names, codes, dates and units, for a bundle trained on its book.

A bundle trained on a bank's book ships the bank's book contract; the service it runs in takes
records as the bank writes its file: a field per column the bank has, under the bank's name
(``FACILITY_NO``, ``SERVICE_MODE``, ``AS_OF``), with the bank's codes (``B``, ``R``, ``P``), dates
in the contract's format and money in the bank's units. :class:`BankDialect` checks a record's
shape (names, JSON types, the bank's codes), maps the records onto the schema with the contract
(:func:`~crm_modes.data.bank_book.prepare_panel`: the same mapping as a scoring job's), and checks
the mapped records against the schema's own request model, so a value out of range is a 422 that
names the bank's field. The answer names the identifiers as the bank does. The inputs the bank
does not have are no fields at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from crm_modes.data.bank_book import prepare_panel
from crm_modes.data.book_contract import DERIVED, BookContract
from crm_modes.data.gate import REASON, SOURCE_ROW
from crm_modes.data.schema import SCHEMA, Column, Kind, input_names
from crm_modes.serve.rest.limits import IDENTIFIER_LENGTH, MAX_RECORDS
from crm_modes.serve.rest.records import OPTIONAL_FIELDS, integral, scoring_record
from crm_modes.shared.errors import InputError


def _bank_field(column: Column, contract: BookContract) -> tuple[Any, Any]:
    """(annotation, default) of the bank's field for ``column``: its shape only (ranges are checked
    once the value is in the schema's units)."""
    codes = contract.codes.get(column.name)
    if column.kind is Kind.CATEGORY:
        annotation: Any = Literal[tuple(codes) if codes else column.categories]  # type: ignore[valid-type]
    elif column.kind is Kind.INT:
        annotation = Annotated[int, Field(strict=True), BeforeValidator(integral)]
    elif column.kind in (Kind.FLOAT, Kind.BINARY):
        annotation = Annotated[float, Field(allow_inf_nan=False, strict=True)]
    elif column.kind is Kind.DATE:
        annotation = Annotated[str, Field(min_length=1, max_length=40)]
    else:
        annotation = Annotated[str, Field(min_length=1, max_length=IDENTIFIER_LENGTH)]
    description = f"{column.name}: {column.description}"
    optional = column.nullable or not column.required or column.name in (*OPTIONAL_FIELDS, *DERIVED)
    if optional:
        return annotation | None, Field(default=None, description=description)
    return annotation, Field(description=description)


@dataclass(frozen=True)
class BankDialect:
    """How a service whose bundle reads a bank's book takes its records (see the module)."""

    contract: BookContract
    macro: pd.DataFrame | None
    record: type[BaseModel]
    request: type[BaseModel]
    #: the bank's column -> the schema column
    schema_names: dict[str, str]
    #: the mapped records, checked as the schema's request records (less what the bank lacks)
    schema_records: TypeAdapter

    @classmethod
    def of(cls, contract: BookContract, macro: pd.DataFrame | None) -> BankDialect:
        bank = contract.bank_columns()
        requested = [name for name in input_names() if name in bank]
        columns = {column.name: column for column in SCHEMA}
        record = create_model(
            "BankScoringRecord",
            __config__=ConfigDict(extra="forbid"),
            __doc__="One client facility at a snapshot, as the bank writes it (its book contract).",
            **{bank[name]: _bank_field(columns[name], contract) for name in requested},
        )
        request = create_model(
            "ScoreRequest",
            __config__=ConfigDict(extra="forbid"),
            __doc__="The body of ``POST /v1/score`` for a bundle that reads a bank's book.",
            records=(
                list[record],  # type: ignore[valid-type]
                Field(min_length=1, json_schema_extra={"maxItems": MAX_RECORDS}),
            ),
        )
        schema_record = scoring_record(tuple(contract.missing_inputs()))
        return cls(
            contract,
            macro,
            record,
            request,
            {bank[name]: name for name in requested},
            TypeAdapter(list[schema_record]),  # type: ignore[valid-type]
        )

    @property
    def identifier_names(self) -> dict[str, str]:
        """Schema identifier -> the bank's name, for the answer."""
        return self.contract.identifier_names()

    def to_schema(self, records: list[BaseModel], first: int = 0) -> tuple[list[BaseModel], list[dict]]:
        """The bank's validated records as the schema's request records, and the problems of those
        that cannot be (each at ``("records", first + i, the bank's field)``)."""
        raw = pd.DataFrame([record.model_dump() for record in records], columns=list(self.schema_names))
        try:
            mapped = prepare_panel(raw.astype(object), self.contract, self.macro)
        except InputError as error:  # e.g. a snapshot the macro series does not reach yet
            return [], [_problem(first, None, str(error))]
        problems = [
            _problem(first + int(row[SOURCE_ROW]) - 1, None, str(row[REASON]))
            for row in mapped.quarantine[[SOURCE_ROW, REASON]].to_dict("records")
        ]
        rows = mapped.rows
        if rows.empty:
            return [], problems
        positions = rows.pop(SOURCE_ROW).to_numpy(dtype=np.int64) - 1
        for name in rows.columns:
            if rows[name].dtype.kind == "M":
                rows[name] = [None if pd.isna(value) else value.date() for value in rows[name]]
        values = rows.astype(object).where(rows.notna(), None).to_dict("records")
        try:
            return self.schema_records.validate_python(values), problems
        except ValidationError as error:
            for found in error.errors(include_url=False):
                index, *rest = found["loc"]
                field = self.contract.columns.get(str(rest[0]), rest[0]) if rest else None
                problems.append(
                    {
                        **found,
                        "loc": ("records", first + int(positions[int(index)]), *([field] if field else [])),
                    }
                )
            return [], sorted(problems, key=lambda problem: problem["loc"][1])

    def named(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Answer rows with the identifiers under the bank's names."""
        names = self.identifier_names
        return [{names.get(key, key): value for key, value in row.items()} for row in rows]


def _problem(index: int, field: str | None, message: str) -> dict:
    return {
        "type": "value_error",
        "loc": ("records", index, *([field] if field else [])),
        "msg": message,
        "input": None,
    }
