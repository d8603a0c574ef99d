"""A table's profile: what every configured column of a table of one's own may hold, reviewed and committed.

The project's own book is checked against its schema. A table of one's own (a public credit
table, a bank's extract) is checked against its profile: for every column a configuration
uses (features, identifiers, the target, the hold-out marker), its kind, whether it may be
missing, its range (numbers) or its categories (text, and a target's classes). A profile is
inferred from a reference table (:func:`infer_profile`, ``crm-modes profile``) into YAML that
a person reviews and commits; the feature configuration may also declare constraints by hand
(``features.constraints``), which win over the inferred ones. Every row of the table then
passes through the same gate as the book (:class:`crm_modes.data.gate.Gate`, with the
profile's declarations): a row that breaks it goes to quarantine with one reason per problem,
the rest goes on.

Ranges get a margin: the observed range widened by ``margin`` times its width on each side,
never below 0 for a column that was never negative. A text column with more than
``max_categories`` distinct values gets no category list (any text passes). A few junk rows in
the reference table do not widen a range or add a class: values far outside a column's bulk,
description rows and categories seen once are left out or listed for review (:func:`infer_profile`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from crm_modes.data.category_text import number_labels
from crm_modes.data.gate import Gate, UnseenInputs
from crm_modes.data.schema import Column, Kind, Role, Unseen
from crm_modes.shared.errors import InputError

Use = Literal["feature", "identifier", "target", "split"]
PROFILE_FORMAT = 1
DEFAULT_MARGIN = 0.1
MAX_CATEGORIES = 100
_ROLE = {"feature": Role.CLIENT, "identifier": Role.ID, "target": Role.LABEL, "split": Role.CONTEXT}


@dataclass(frozen=True)
class ColumnProfile:
    """What one column may hold.

    Attributes:
        name: the column.
        use: what the configuration uses it for (feature, identifier, target, split).
        kind: ``numeric`` or ``categorical``.
        nullable: whether a missing value is allowed.
        minimum, maximum: inclusive bounds of a numeric column (None: unbounded).
        integer: a numeric column of whole numbers only.
        categories: the allowed labels of a categorical column (empty: any text).
        unseen: what the gate does with a label outside ``categories`` (default: a feature's is
            scored as the model's unknown category with a warning; a target's or a split marker's
            row is quarantined; see :attr:`crm_modes.data.schema.Column.unseen_policy`).
    """

    name: str
    use: Use
    kind: Literal["numeric", "categorical"]
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    categories: tuple[str, ...] = ()
    unseen: Unseen | None = None

    def declaration(self) -> Column:
        """The column as the gate checks it."""
        if self.kind == "numeric":
            kind = Kind.INT if self.integer else Kind.FLOAT
        else:
            kind = Kind.CATEGORY if self.categories else Kind.STRING
        return Column(
            name=self.name,
            kind=kind,
            role=_ROLE[self.use],
            description=f"{self.use} column of a configured table",
            nullable=self.nullable,
            minimum=self.minimum,
            maximum=self.maximum,
            categories=self.categories,
            unseen=self.unseen,
        )

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"use": self.use, "kind": self.kind, "nullable": self.nullable}
        if self.kind == "numeric":
            entry |= {"minimum": self.minimum, "maximum": self.maximum, "integer": self.integer}
        elif self.categories:
            entry["categories"] = list(self.categories)
        if self.unseen is not None:
            entry["unseen"] = self.unseen
        return entry


@dataclass(frozen=True)
class TableProfile:
    """Every profiled column of one table, in the table's order."""

    columns: tuple[ColumnProfile, ...]
    source: str = ""
    rows: int = 0
    margin: float = DEFAULT_MARGIN
    notes: tuple[str, ...] = field(default_factory=tuple)

    def declarations(self) -> tuple[Column, ...]:
        return tuple(column.declaration() for column in self.columns)

    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    def for_scoring(self) -> TableProfile:
        """The columns a row needs to be scored: its features and identifiers (no target, no split marker)."""
        return replace(self, columns=tuple(c for c in self.columns if c.use in ("feature", "identifier")))

    def gate(self, unseen_inputs: UnseenInputs = "score") -> Gate:
        """The gate of a table of one's own: the profile's declarations, every one required, no key."""
        return Gate(
            required=tuple(self.names()), columns=self.declarations(), key=(), unseen_inputs=unseen_inputs
        )

    def codes_as_numbers(self, table: pd.DataFrame) -> pd.DataFrame:
        """Categories coded as whole numbers (a flag 0/1, a code 1/2) back as numbers, as in the table.

        The gate reads them as labels ("1"); as numbers they reach the model the same way (its encoder
        reads 1 as "1"), and its signature and input example say integers, which MLflow's JSON round
        trip of the example keeps (it reads "1" back as 1).
        """
        table = table.copy()
        for column in self.columns:
            if column.kind != "categorical" or column.nullable or not column.categories:
                continue
            if all(label.lstrip("-").isdigit() for label in column.categories) and column.name in table:
                table[column.name] = pd.to_numeric(table[column.name].astype(str)).astype("int64")
        return table

    def tightening(self, columns: tuple[Column, ...]) -> tuple[Column, ...]:
        """``columns`` (the schema's declarations) narrowed to this profile of a bank's book: ranges
        within both, categories the bank has used (others are scored with a warning or quarantined,
        by the column's policy), nulls only where both allow them. Columns it lacks are unchanged."""
        profiled = {column.name: column for column in self.columns}
        narrowed = []
        for column in columns:
            seen = profiled.get(column.name)
            if seen is None:
                narrowed.append(column)
                continue
            change: dict[str, Any] = {"nullable": column.nullable and seen.nullable}
            if seen.kind == "numeric":
                change["minimum"] = _tighter(column.minimum, seen.minimum, max)
                change["maximum"] = _tighter(column.maximum, seen.maximum, min)
            elif seen.categories and column.categories:
                change["categories"] = tuple(c for c in column.categories if c in seen.categories)
            narrowed.append(replace(column, **change))
        return tuple(narrowed)

    def constrained(self, constraints: dict[str, dict[str, Any]]) -> TableProfile:
        """The profile with hand-declared ``constraints`` (column -> fields) over the inferred ones.

        Raises:
            InputError: a constraint names a column the profile does not have, or a field it does not know.
        """
        by_name = {column.name: column for column in self.columns}
        unknown = sorted(set(constraints) - set(by_name))
        if unknown:
            raise InputError(f"features.constraints names columns the table profile lacks: {unknown}")
        allowed = {"nullable", "minimum", "maximum", "integer", "categories", "unseen"}
        updated = []
        for column in self.columns:
            given = dict(constraints.get(column.name, {}))
            wrong = sorted(set(given) - allowed)
            if wrong:
                raise InputError(
                    f"features.constraints.{column.name}: unknown fields {wrong}; use {sorted(allowed)}"
                )
            if "categories" in given:
                given["categories"] = tuple(str(label) for label in given["categories"])
            updated.append(replace(column, **given))
        return replace(self, columns=tuple(updated))

    def to_yaml(self) -> str:
        header = [
            "# Table profile: what each column the configuration uses may hold. Inferred by",
            f"# `crm-modes profile` from {self.source} ({self.rows:,} rows), ranges widened by",
            f"# {self.margin:.0%} of their width on each side. Review it, edit what the data cannot",
            "# know (a range a column may never leave, a category that has not occurred yet), commit it.",
            *(f"# note: {note}" for note in self.notes),
        ]
        body = {
            "format": PROFILE_FORMAT,
            "source": self.source,
            "rows": self.rows,
            "margin": self.margin,
            "columns": {column.name: column.to_dict() for column in self.columns},
        }
        return "\n".join(header) + "\n" + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.write_text(self.to_yaml())
        return path


def _tighter(declared: float | None, seen: float | None, pick: Any) -> float | None:
    """The narrower of two bounds (None: no bound)."""
    bounds = [bound for bound in (declared, seen) if bound is not None]
    return pick(bounds) if bounds else None


def load_profile(path: str | os.PathLike[str]) -> TableProfile:
    """Read a profile written by :meth:`TableProfile.save` (and perhaps edited by hand).

    Raises:
        InputError: naming the file and what is wrong in it.
    """
    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text())
    except OSError as error:
        raise InputError(f"{path}: cannot read the table profile: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise InputError(f"{path}: not YAML: {error}") from None
    if not isinstance(content, dict) or content.get("format") != PROFILE_FORMAT:
        raise InputError(f"{path}: not a table profile of format {PROFILE_FORMAT} (see `crm-modes profile`)")
    columns = []
    for name, entry in (content.get("columns") or {}).items():
        try:
            columns.append(
                ColumnProfile(
                    name=str(name),
                    use=entry["use"],
                    kind=entry["kind"],
                    nullable=bool(entry.get("nullable", False)),
                    minimum=_number(entry.get("minimum")),
                    maximum=_number(entry.get("maximum")),
                    integer=bool(entry.get("integer", False)),
                    categories=tuple(str(label) for label in entry.get("categories", ())),
                    unseen=entry.get("unseen"),
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(f"{path}: column {name!r}: {error}") from None
        if columns[-1].use not in _ROLE or columns[-1].kind not in ("numeric", "categorical"):
            raise InputError(
                f"{path}: column {name!r}: use must be one of {sorted(_ROLE)}, kind numeric or categorical"
            )
        if columns[-1].unseen not in (None, "quarantine", "score", "count"):
            raise InputError(f"{path}: column {name!r}: unseen must be quarantine, score or count")
    return TableProfile(
        tuple(columns),
        source=str(content.get("source", "")),
        rows=int(content.get("rows", 0)),
        margin=float(content.get("margin", DEFAULT_MARGIN)),
    )


def _number(value: object) -> float | None:
    return None if value is None else float(value)


#: Quantiles that bound a numeric column's bulk, and how many bulk widths beyond them a value is far
#: outside (listed for review instead of widening the range).
BULK_QUANTILES = (0.01, 0.99)
FAR_OUTSIDE = 3.0
#: A row where at least this share of the numeric columns holds text that is no number is taken for a
#: description row (a second header, a line of labels) and left out of the profile.
DESCRIPTION_ROW_SHARE = 0.5


def infer_profile(
    frame: pd.DataFrame,
    uses: dict[str, Use],
    *,
    numeric: set[str],
    source: str = "",
    margin: float = DEFAULT_MARGIN,
    max_categories: int = MAX_CATEGORIES,
    binary_targets: set[str] = frozenset(),
) -> TableProfile:
    """The profile of ``frame``'s columns named in ``uses`` (column -> use), resisting junk rows.

    ``numeric``: the columns the configuration reads as numbers (its ``numeric`` features);
    every other column is profiled as categorical (a target as its classes). ``binary_targets``:
    targets of binary models without a ``positive_label``, which must hold exactly two classes.

    A few junk rows do not become the profile: a row where most numeric columns hold text is taken
    for a description row and left out; a numeric range is the span of the values within
    :data:`FAR_OUTSIDE` bulk widths of the bulk (:data:`BULK_QUANTILES`), widened by ``margin``,
    and the values beyond are listed for review; categories seen once are listed for review.
    Every such finding is a note (printed, and written at the top of the YAML).

    Raises:
        InputError: a column is missing, a numeric column holds no numbers, or a binary target
            without a positive label holds other than two classes.
    """
    missing = [name for name in uses if name not in frame.columns]
    if missing:
        raise InputError(f"{source or 'the table'}: the configuration uses columns it lacks: {missing}")
    frame, notes = _without_description_rows(frame, [name for name in uses if name in numeric])
    columns = []
    for name, use in uses.items():
        values = frame[name]
        nullable = bool(values.isna().any())
        if name in numeric:
            profiled, found = _numeric_profile(name, use, values, nullable, margin, source)
            columns.append(profiled)
            notes += found
            continue
        labels = _labels(values)
        counts = labels.value_counts()
        distinct = sorted(counts.index)
        if name in binary_targets and len(distinct) != 2:
            shown = ", ".join(f"{label!r} ({count:,} rows)" for label, count in counts.items())
            raise InputError(
                f"{source}: target {name!r} of a binary model holds {len(distinct)} classes ({shown}): "
                "clean the table, or set the model's positive_label"
            )
        if use == "target" or len(distinct) <= max_categories:
            categories = tuple(distinct)
            once = sorted(label for label, count in counts.items() if count == 1)
            if once and len(frame) >= 100:
                notes.append(f"{name}: categories seen once, to review: {_listed(once)}")
        else:
            categories = ()
            notes.append(
                f"{name}: {len(distinct):,} distinct values, more than {max_categories}: any text passes"
            )
        columns.append(ColumnProfile(name, use, "categorical", nullable, categories=categories))
    return TableProfile(tuple(columns), source=source, rows=len(frame), margin=margin, notes=tuple(notes))


def _without_description_rows(frame: pd.DataFrame, numeric: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` without the rows where most numeric columns hold text, and a note naming them."""
    if not numeric:
        return frame, []
    text = np.zeros(len(frame), dtype=np.int64)
    for name in numeric:
        values = frame[name]
        text += (pd.to_numeric(values, errors="coerce").isna() & values.notna()).to_numpy(dtype=np.int64)
    described = text >= DESCRIPTION_ROW_SHARE * len(numeric)
    if not described.any():
        return frame, []
    rows = [int(row) + 1 for row in np.flatnonzero(described)]  # data rows, counted from 1
    note = (
        f"data row{'s' if len(rows) > 1 else ''} {_listed(rows)}: most numeric columns hold text "
        "(a description row?): left out of the profile"
    )
    return frame[~described], [note]


def _numeric_profile(
    name: str, use: Use, values: pd.Series, nullable: bool, margin: float, source: str
) -> tuple[ColumnProfile, list[str]]:
    """A numeric column's profile from the values within the fences of its bulk, and notes."""
    notes = []
    numbers = pd.to_numeric(values, errors="coerce")
    unread = int((numbers.isna() & values.notna()).sum())
    finite = numbers.dropna().to_numpy(dtype=np.float64)
    if finite.size == 0:
        raise InputError(f"{source}: column {name!r} is configured numeric but holds no numbers")
    if unread:
        notes.append(f"{name}: {unread:,} values that are not numbers were left out of its range")
    low_bulk, high_bulk = np.quantile(finite, BULK_QUANTILES)
    width = (high_bulk - low_bulk) or max(abs(high_bulk), 1.0)  # a bulk of one value: its own scale
    fences = (low_bulk - FAR_OUTSIDE * width, high_bulk + FAR_OUTSIDE * width)
    outside = (finite < fences[0]) | (finite > fences[1])
    if outside.any():
        far = np.unique(finite[outside])
        notes.append(
            f"{name}: {int(outside.sum()):,} values far outside the bulk ({low_bulk:g} to {high_bulk:g}) "
            f"left out of its range, to review: {_listed([f'{value:g}' for value in far])}"
        )
    kept = finite[~outside]
    low, high = float(kept.min()), float(kept.max())
    spread = high - low
    minimum, maximum = low - margin * spread, high + margin * spread
    if low >= 0:
        minimum = max(minimum, 0.0)
    integer = bool(np.all(np.floor(kept) == kept))
    if integer:
        minimum, maximum = float(np.floor(minimum)), float(np.ceil(maximum))
    return ColumnProfile(name, use, "numeric", nullable, minimum, maximum, integer), notes


def _listed(items: list, most: int = 10) -> str:
    shown = ", ".join(str(item) for item in items[:most])
    return shown + (f" and {len(items) - most:,} more" if len(items) > most else "")


def _labels(values: pd.Series) -> pd.Series:
    """Values as the labels the gate and the feature pipeline read: whole numbers without a point."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        return pd.Series(number_labels(numbers), index=values.index, dtype=object)
    return values.astype(object).where(values.notna(), None).map(lambda v: v if v is None else str(v).strip())
