"""A bank's book contract: how the bank's own panel, events and macro series map onto the schema.

A contract (a YAML file, e.g. ``configs/books/example_bank.yaml``) names, for each schema column,
the bank's column or that the bank does not have it (``null``); the codes the bank uses for
categories; its date format; its units (money in units, thousands or millions; margins in basis
points or percent); which events count as a default and which as the end of a relationship; and
where the macro series is. A small core is required: the keys, the mode applied, exposure, margin
and collateral coverage.

Everything here is a pure function of tables: :func:`map_panel` renames and recodes the bank's
panel and converts its units, sending each row it cannot map to the quarantine with its source row
number and the reason. Labels from events, derived context and the macro join are in
:mod:`crm_modes.data.book_labels`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from crm_modes.data.gate import REASON, SOURCE_ROW
from crm_modes.data.schema import FEATURE_ROLES, SCHEMA, Kind, Role
from crm_modes.shared.configuration import FrozenConfig
from crm_modes.shared.errors import InputError

#: Schema columns every contract must map to a bank column.
CORE = (
    "client_id",
    "facility_id",
    "snapshot_date",
    "assigned_mode",
    "exposure",
    "margin_bps",
    "collateral_coverage",
)
#: The columns that identify a row, echoed in outputs under the bank's names.
IDENTIFIERS = ("client_id", "facility_id", "snapshot_date")
#: Context a book is given where the bank does not supply it (derived from the panel).
DERIVED = ("other_facilities_mode",)
#: Columns in money (converted to millions).
MONEY = ("annual_revenue", "facility_amount", "exposure")
#: Columns a contract may map: every schema column but labels and the simulator's oracle.
MAPPABLE = tuple(column.name for column in SCHEMA if column.role not in (Role.LABEL, Role.ORACLE))
_BY_NAME = {column.name: column for column in SCHEMA}
_MONEY_FACTOR = {"units": 1e-6, "thousands": 1e-3, "millions": 1.0}


class Units(FrozenConfig):
    """The bank's units, converted to the schema's."""

    money: Literal["units", "thousands", "millions"] = "millions"
    """Money columns (annual revenue, facility amount, exposure) as the bank writes them."""
    margin: Literal["bps", "percent"] = "bps"
    """The credit margin: basis points, or percent (1.25 for 125 bps)."""


class EventsContract(FrozenConfig):
    """The bank's events table: one row per event of a facility."""

    facility: str
    """The bank's column with the facility identifier."""
    date: str
    """The bank's column with the event's date (in the contract's date format)."""
    type: str
    """The bank's column with the event's type."""
    default: tuple[str, ...] = Field(min_length=1)
    """Event types that are a default (e.g. 90+ days past due, distressed restructuring, write-off)."""
    churn: tuple[str, ...] = Field(min_length=1)
    """Event types that end the relationship (e.g. closed, last facility repaid and not renewed)."""
    observed_until: dt.date | None = None
    """The last date the bank has observed events on (default: the panel's last snapshot)."""

    @model_validator(mode="after")
    def _disjoint(self) -> EventsContract:
        both = set(self.default) & set(self.churn)
        if both:
            raise ValueError(f"event types {sorted(both)} are both a default and a churn")
        return self


class MacroContract(FrozenConfig):
    """A macro series published monthly with a lag (``--macro FILE``)."""

    column: Literal["gdp_growth"] = "gdp_growth"
    """The schema column the series fills."""
    change_column: Literal["gdp_growth_change_12m"] | None = "gdp_growth_change_12m"
    """The schema column the series' change over a year fills (the series must then start a year
    before the first snapshot); null: the book goes without it, and so do its models."""
    period: str = "period"
    """The file's column with the month the value describes."""
    value: str = "value"
    """The file's column with the value."""
    published: str = "published"
    """The file's column with the date the value was published."""
    max_age_months: int = Field(default=3, ge=0, le=24)
    """The oldest month a snapshot may take its value from (months before the snapshot's month): a
    series that ends earlier is an error, never a stale value carried forward."""

    def columns(self) -> tuple[str, ...]:
        """The schema columns the series fills."""
        return (self.column,) if self.change_column is None else (self.column, self.change_column)


class BookContract(FrozenConfig):
    """How a bank's book maps onto the schema (``crm-modes labels --contract FILE``)."""

    columns: dict[str, str | None]
    """Schema column -> the bank's column, or null where the bank does not have it."""
    codes: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Schema column -> {the bank's code: the schema's value}, for category columns."""
    date_format: str = "%Y-%m-%d"
    """How the bank writes dates (strftime codes, e.g. ``%d.%m.%Y``)."""
    units: Units = Units()
    """The bank's units."""
    events: EventsContract | None = None
    """The events table that gives the labels (``--events``)."""
    horizon_months: int = Field(default=12, ge=1, le=60)
    """The labels' horizon: an event in (snapshot, snapshot + horizon] sets the label."""
    macro: MacroContract | None = None
    """The macro series (``--macro``), joined by publication date."""

    @model_validator(mode="after")
    def _known_columns(self) -> BookContract:
        unknown = sorted(set(self.columns) - set(MAPPABLE))
        if unknown:
            raise ValueError(f"columns {unknown} are not schema columns a bank maps")
        missing = [name for name in CORE if not self.columns.get(name)]
        if missing:
            raise ValueError(f"the core columns {missing} must name the bank's column")
        for name, codes in self.codes.items():
            column = _BY_NAME.get(name)
            if column is None or column.kind is not Kind.CATEGORY:
                raise ValueError(f"codes for {name!r}: it is not a category column of the schema")
            wrong = sorted(set(codes.values()) - set(column.categories or ()))
            if wrong:
                raise ValueError(
                    f"codes for {name!r} map to {wrong}, not among {list(column.categories or ())}"
                )
        return self

    def bank_columns(self) -> dict[str, str]:
        """The bank's column of each schema column the bank has."""
        return {name: bank for name, bank in self.columns.items() if bank}

    def absent(self) -> list[str]:
        """Schema columns the bank does not have (mapped to null, or not named at all)."""
        return [name for name in MAPPABLE if not self.columns.get(name)]

    def missing_inputs(self) -> list[str]:
        """Schema columns a book built under this contract lacks: absent, and neither derived from the
        panel nor joined from the macro series. No model reads them, no request carries them."""
        filled = {*DERIVED, *(self.macro.columns() if self.macro is not None else ())}
        return [name for name in self.absent() if name not in filled]

    def required_columns(self) -> tuple[str, ...]:
        """The columns a book built under this contract must carry: the schema's, less what it lacks."""
        missing = set(self.missing_inputs())
        return tuple(column.name for column in SCHEMA if column.required and column.name not in missing)

    def profiled_inputs(self) -> tuple[list[str], list[str]]:
        """The model inputs a book built under this contract carries, to profile on the bank's own
        panel: (numeric, categorical) schema columns."""
        missing = set(self.missing_inputs())
        inputs = [c for c in SCHEMA if c.role in FEATURE_ROLES and c.name not in missing]
        numeric = [c.name for c in inputs if c.numeric]
        return numeric, [c.name for c in inputs if c.kind is Kind.CATEGORY]

    def identifier_names(self) -> dict[str, str]:
        """Schema identifier -> the bank's column, for outputs written with the bank's names."""
        return {name: self.columns[name] for name in IDENTIFIERS if self.columns.get(name)}


@dataclass
class Mapped:
    """A panel in the schema's names, codes, dates and units, and the rows that could not be mapped."""

    rows: pd.DataFrame
    quarantine: pd.DataFrame

    @property
    def rows_in(self) -> int:
        return len(self.rows) + len(self.quarantine)


def parse_dates(values: pd.Series, date_format: str) -> pd.Series:
    """Dates in ``date_format`` exactly; anything else (31.02.2024, another format) is NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype("datetime64[ns]")
    return pd.to_datetime(values.astype("string").str.strip(), format=date_format, errors="coerce")


def map_panel(panel: pd.DataFrame, contract: BookContract) -> Mapped:
    """The bank's panel as schema columns; rows with a value the contract cannot map are quarantined.

    Raises:
        InputError: a column the contract names is not in the panel.
    """
    columns = contract.bank_columns()
    missing = sorted({bank for bank in columns.values() if bank not in panel.columns})
    if missing:
        raise InputError(
            f"the panel has no column {missing} that the contract names (it has {list(panel.columns)[:20]})"
        )
    out = pd.DataFrame({name: panel[bank].to_numpy() for name, bank in columns.items()})
    problems: list[pd.Series] = []
    for name, codes in contract.codes.items():
        if name not in out:
            continue
        raw = out[name].astype("string").str.strip()
        mapped = raw.map(codes)
        unmapped = raw.notna() & mapped.isna()
        problems.append(
            _reasons(unmapped, raw, f"{columns[name]}: code {{}} is not in the contract's codes for {name}")
        )
        out[name] = mapped.astype(object)
    for name in [n for n in columns if _BY_NAME[n].kind is Kind.DATE]:
        raw = out[name]
        dates = parse_dates(raw, contract.date_format)
        problems.append(
            _reasons(
                dates.isna() & raw.notna(),
                raw.astype("string"),
                f"{columns[name]}: {{}} is not a date written {contract.date_format}",
            )
        )
        out[name] = dates
    factor = _MONEY_FACTOR[contract.units.money]
    for name in [n for n in MONEY if n in out and factor != 1.0]:
        out[name] = _scaled(out[name], factor)
    if "margin_bps" in out and contract.units.margin == "percent":
        out["margin_bps"] = _scaled(out["margin_bps"], 100.0)
    reasons = _joined(problems, len(out))
    bad = reasons.notna().to_numpy()
    out.insert(0, SOURCE_ROW, np.arange(1, len(out) + 1))  # as the gate counts: from 1
    quarantine = panel.loc[bad].astype("string").reset_index(drop=True)
    quarantine.insert(0, SOURCE_ROW, np.flatnonzero(bad) + 1)
    quarantine[REASON] = reasons[bad].to_numpy()
    return Mapped(out.loc[~bad].reset_index(drop=True), quarantine)


def _scaled(values: pd.Series, factor: float) -> pd.Series:
    """Numbers times ``factor``; text that is no number is left as it was (the gate names it)."""
    numbers = pd.to_numeric(values, errors="coerce")
    scaled = (numbers * factor).astype(object)
    return scaled.where(numbers.notna(), values.astype(object))


def _reasons(mask: pd.Series, raw: pd.Series, template: str) -> pd.Series:
    reasons = pd.Series(None, index=mask.index, dtype=object)
    flagged = mask.fillna(False).to_numpy(dtype=bool)
    reasons[flagged] = [template.format(repr(str(value))[:40]) for value in raw[flagged]]
    return reasons


def _joined(problems: list[pd.Series], rows: int) -> pd.Series:
    """One reason per row: the problems of each row joined by ``; `` (None where there are none)."""
    joined = pd.Series(None, index=range(rows), dtype=object)
    for reasons in problems:
        reasons = reasons.reset_index(drop=True)
        has = reasons.notna()
        joined[has] = [
            r if pd.isna(j) else f"{j}; {r}" for j, r in zip(joined[has], reasons[has], strict=True)
        ]
    return joined
