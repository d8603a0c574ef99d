"""The validation gate: every table enters the system through here.

The gate checks a table against column declarations (by default the project's schema,
:data:`crm_modes.data.schema.SCHEMA`; for a table of one's own, the declarations of its reviewed
profile, :mod:`crm_modes.data.profile`) and collects every problem before reporting:

- **table-level** problems stop the job with one :class:`TableSchemaError` that lists them
  all: required columns missing (shown as a difference between expected and received), or
  a column none of whose values can be read as its dtype;
- **row-level** problems (a value that does not parse, is out of range, is not an allowed
  category, is missing where it may not be, or repeats a key already seen) send the row to
  quarantine with one reason per problem; the valid rows go on.

Extra columns are reported and ignored. Nothing is lost: rows in = valid + quarantined. Each
row-level problem is kept as a record (:class:`Problem`: row, column, message), so counts per
column never depend on what a message says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crm_modes.data.category_text import number_labels
from crm_modes.data.schema import KEY, SCHEMA, Column, Kind, required_names
from crm_modes.shared.errors import InputError

REASON = "quarantine_reason"
SOURCE_ROW = "source_row"
#: The column name a repeated key's problem is counted under.
DUPLICATE_KEY = "duplicate key"
_MAX_LISTED_CATEGORIES = 6


class TableSchemaError(InputError):
    """The table as a whole does not fit the schema; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("table rejected:\n" + "\n".join(f"  - {problem}" for problem in problems))


@dataclass(frozen=True)
class Problem:
    """One reason one row was quarantined: the 0-based row of its chunk, the column, the message."""

    row: int
    column: str
    message: str


@dataclass(frozen=True)
class ValidationResult:
    """What the gate let through, what it quarantined and why.

    Attributes:
        valid: rows that passed, typed per the declarations, declared columns only, in their order.
        quarantine: rejected rows as received, plus ``source_row`` (1-based data row in the
            input) and ``quarantine_reason`` (every problem of the row, joined by "; ").
        extra_columns: received columns the declarations do not know (ignored).
        problems: every row-level problem, one record each.
    """

    valid: pd.DataFrame
    quarantine: pd.DataFrame
    extra_columns: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()

    @property
    def rows_in(self) -> int:
        return len(self.valid) + len(self.quarantine)


def column_difference(expected: Iterable[str], received: Iterable[str]) -> str:
    """Readable difference between two column lists: what is missing, what is unexpected."""
    expected, received = list(expected), list(received)
    missing = [name for name in expected if name not in set(received)]
    unexpected = [name for name in received if name not in set(expected)]
    parts = [f"missing {missing}" if missing else "", f"unexpected {unexpected}" if unexpected else ""]
    return "; ".join(part for part in parts if part) or "no difference"


@dataclass
class Gate:
    """Stateful gate for a table that arrives in chunks.

    It remembers the keys it has seen, so a key repeated in a later chunk is caught, and
    numbers rows across chunks.

    Args:
        required: columns that must be present; default: every column whose role is
            required by the schema (identifiers, date, client, facility, behaviour, economy).
        columns: the declarations to check against (default: the schema).
        key: columns whose values may appear together only once (default: the schema's
            facility and snapshot date; empty: no check).
    """

    required: tuple[str, ...] = field(default_factory=lambda: tuple(required_names()))
    columns: tuple[Column, ...] = SCHEMA
    key: tuple[str, ...] = KEY
    _rows_seen: int = 0
    _seen_keys: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))

    def check(self, frame: pd.DataFrame, *, repeated: np.ndarray | None = None) -> ValidationResult:
        """Validate one chunk; raise :class:`TableSchemaError` on a table-level problem.

        ``repeated``: which rows repeat a key seen before, when that was found across the whole
        table elsewhere (the Spark engine, from :func:`key_hashes`); the gate's own memory of
        keys is then neither read nor extended.
        """
        known = {spec.name: spec for spec in self.columns}
        received = [str(name) for name in frame.columns]
        problems: list[str] = []
        missing = [name for name in self.required if name not in received]
        extra = [name for name in received if name not in known]
        if missing:
            problems.append(
                f"missing required columns {missing} (received {len(received)} columns; "
                f"unexpected {extra if extra else 'none'})"
            )
        duplicated = sorted({name for name in received if received.count(name) > 1})
        if duplicated:
            problems.append(f"columns appear more than once: {duplicated}")

        present = [spec for spec in self.columns if spec.name in received]
        frame = frame.reset_index(drop=True)
        typed: dict[str, pd.Series] = {}
        found: list[Problem] = []
        for spec in present:
            values, unreadable, row_problems = _coerce(spec, frame[spec.name])
            if unreadable:
                problems.append(unreadable)
                continue
            typed[spec.name] = values
            found += row_problems
        if problems:
            raise TableSchemaError(problems)

        if self.key and all(name in typed for name in self.key):
            found += self._duplicate_keys(typed, repeated)

        reasons: dict[int, list[str]] = {}
        for problem in found:
            reasons.setdefault(problem.row, []).append(problem.message)
        bad_rows = np.fromiter(sorted(reasons), dtype=np.int64, count=len(reasons))
        # The rows that failed are dropped; when none did (the usual case), the columns are used
        # as they are instead of being copied through a mask.
        if bad_rows.size:
            is_good = np.ones(len(frame), dtype=bool)
            is_good[bad_rows] = False
            typed = {name: values[is_good].reset_index(drop=True) for name, values in typed.items()}
        valid = pd.DataFrame({spec.name: _final_dtype(spec, typed[spec.name]) for spec in present})
        quarantine = frame.iloc[bad_rows].copy()
        quarantine.insert(0, SOURCE_ROW, bad_rows + self._rows_seen + 1)
        quarantine[REASON] = ["; ".join(reasons[row]) for row in bad_rows]
        self._rows_seen += len(frame)
        return ValidationResult(
            valid=valid,
            quarantine=quarantine.reset_index(drop=True),
            extra_columns=tuple(extra),
            problems=tuple(found),
        )

    def _duplicate_keys(self, typed: dict[str, pd.Series], repeated: np.ndarray | None) -> list[Problem]:
        key_frame = pd.DataFrame({name: typed[name] for name in self.key})
        if repeated is None:
            hashes, nulls = key_hashes(key_frame)
            seen = self._seen_keys  # sorted
            at = np.minimum(np.searchsorted(seen, hashes), max(len(seen) - 1, 0))
            earlier = seen[at] == hashes if len(seen) else np.zeros(len(hashes), dtype=bool)
            repeated = (pd.Series(hashes).duplicated().to_numpy() | earlier) & ~nulls
            # Two sorted runs: a stable sort (timsort) merges them in linear time.
            self._seen_keys = np.sort(np.concatenate([seen, np.sort(hashes[~nulls])]), kind="stable")
        found = []
        for row in np.flatnonzero(repeated):
            shown = ", ".join(f"{name}={_show(key_frame.at[row, name])}" for name in self.key)
            found.append(Problem(int(row), DUPLICATE_KEY, f"duplicate key ({shown}) already seen"))
        return found


def key_hashes(key_frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """One 64-bit hash per row of typed key columns, and which rows miss a key value (never
    repeats). Equal hashes are taken as equal keys, by the gate and by the Spark engine alike."""
    hashes = pd.util.hash_pandas_object(key_frame, index=False).to_numpy()
    return hashes, key_frame.isna().any(axis=1).to_numpy()


def typed_key(
    frame: pd.DataFrame, key: tuple[str, ...] = KEY, columns: tuple[Column, ...] = SCHEMA
) -> pd.DataFrame | None:
    """The key columns of ``frame`` typed as the gate types them (a value that does not parse is
    missing), for finding repeated keys before the rows are checked; ``None`` when a key column
    cannot be read at all (the gate then rejects the table)."""
    declared = {spec.name: spec for spec in columns}
    typed = {}
    for name in key:
        values, unreadable, _ = _coerce(declared[name], frame[name].reset_index(drop=True))
        if unreadable:
            return None
        typed[name] = values
    return pd.DataFrame(typed)


def validate(frame: pd.DataFrame, *, required: Iterable[str] | None = None) -> ValidationResult:
    """Validate a whole table in one go (see :class:`Gate`)."""
    gate = Gate() if required is None else Gate(required=tuple(required))
    return gate.check(frame)


_EXPECTED = {
    Kind.INT: "a whole number",
    Kind.FLOAT: "a finite number",
    Kind.BINARY: "0 or 1",
    Kind.DATE: "a date (YYYY-MM-DD)",
}


def _coerce(spec: Column, raw: pd.Series) -> tuple[pd.Series, str | None, list[Problem]]:
    """Type one column; return (typed values, table-level problem or None, row problems)."""
    text = None
    missing = raw.isna().to_numpy()
    if (
        spec.kind is Kind.CATEGORY
        and pd.api.types.is_numeric_dtype(raw)
        and not pd.api.types.is_bool_dtype(raw)
    ):
        # a category coded as numbers: 1.0 and 1 are the label "1", as the feature pipeline reads them
        text = pd.Series(
            number_labels(raw.to_numpy(dtype=np.float64, na_value=np.nan)), index=raw.index, dtype="string"
        )
    elif isinstance(raw.dtype, pd.CategoricalDtype):
        text, blank = _categorical_text(raw)
        missing = missing | blank
    elif not pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_datetime64_any_dtype(raw):
        text = (raw if isinstance(raw.dtype, pd.StringDtype) else raw.astype("string")).str.strip()
        missing = missing | (text == "").fillna(False).to_numpy(dtype=bool)
    present = ~missing

    if spec.numeric:
        parsed = pd.to_numeric(raw, errors="coerce").astype("float64")
        numbers = parsed.to_numpy()
        unparsed = present & ~np.isfinite(np.nan_to_num(numbers, nan=np.inf))
    elif spec.kind is Kind.DATE:
        parsed = (
            _datetimes(raw)
            if pd.api.types.is_datetime64_any_dtype(raw)
            else pd.to_datetime(raw, errors="coerce", format="ISO8601")
        )
        if parsed.dt.tz is not None:
            parsed = parsed.dt.tz_localize(None)
        unparsed = present & parsed.isna().to_numpy()
    elif spec.kind is Kind.CATEGORY:
        # Straight to the schema's categories: a value outside them gets code -1.
        parsed = _as_categories(text if text is not None else raw.astype("string"), spec.categories)
        unparsed = np.zeros(len(raw), dtype=bool)
    else:
        parsed = (text if text is not None else raw.astype("string")).mask(missing)
        unparsed = np.zeros(len(raw), dtype=bool)

    if spec.kind in _EXPECTED and present.any() and unparsed[present].all():
        return (
            raw,
            (
                f"column {spec.name!r} cannot be read as {_EXPECTED[spec.kind]}: "
                f"no value parses (first: {_show(raw[present].iloc[0])})"
            ),
            [],
        )

    checks: list[tuple[np.ndarray, str]] = [(unparsed, f"is not {_EXPECTED.get(spec.kind, '')}")]
    ok = present & ~unparsed
    if spec.kind in (Kind.INT, Kind.BINARY):
        fractional = ok & (np.floor(np.nan_to_num(numbers)) != np.nan_to_num(numbers))
        checks.append((fractional, f"is not {_EXPECTED[spec.kind]}"))
        ok = ok & ~fractional
    if spec.kind is Kind.BINARY:
        checks.append((ok & ~np.isin(numbers, (0.0, 1.0)), "is not 0 or 1"))
    if spec.numeric and spec.minimum is not None:
        checks.append((ok & (numbers < spec.minimum), f"is below the minimum {spec.minimum:g}"))
    if spec.numeric and spec.maximum is not None:
        checks.append((ok & (numbers > spec.maximum), f"is above the maximum {spec.maximum:g}"))
    if spec.kind is Kind.CATEGORY:
        allowed = ", ".join(spec.categories[:_MAX_LISTED_CATEGORIES])
        allowed += ", ..." if len(spec.categories) > _MAX_LISTED_CATEGORIES else ""
        unknown = ok & (parsed.cat.codes.to_numpy() < 0)
        checks.append((unknown, f"is not one of {allowed}"))

    row_problems = [
        Problem(int(row), spec.name, f"{spec.name}: {_show(raw.iat[row])} {message}")
        for mask, message in checks
        for row in np.flatnonzero(mask)
    ]
    if not spec.nullable:
        row_problems += [
            Problem(int(row), spec.name, f"{spec.name}: missing, but the column may not be null")
            for row in np.flatnonzero(missing)
        ]
    return parsed.reset_index(drop=True).rename(spec.name), None, row_problems


#: Whole days within what nanosecond timestamps hold (pandas' unit for dates): a stored timestamp
#: outside them is refused as its text would be, not turned into an overflow.
_FIRST_DAY, _LAST_DAY = np.datetime64("1677-09-22"), np.datetime64("2262-04-10")


def _datetimes(raw: pd.Series) -> pd.Series:
    """A column stored as timestamps, as nanoseconds like a parsed text column; a value outside
    :data:`_FIRST_DAY` .. :data:`_LAST_DAY` becomes missing (so its row is quarantined).

    ``pd.to_datetime`` would make an object of every value first (slow), and raises on such a
    value instead of coercing it.
    """
    if raw.dt.unit == "ns":
        return raw
    zone = raw.dt.tz
    values = (raw.dt.tz_convert("UTC").dt.tz_localize(None) if zone is not None else raw).to_numpy()
    outside = ~np.isnat(values) & ((values < _FIRST_DAY) | (values > _LAST_DAY))  # in the stored unit
    if outside.any():
        values = values.copy()
        values[outside] = np.datetime64("NaT")
    typed = pd.Series(values.astype("datetime64[ns]"), index=raw.index, name=raw.name)
    return typed.dt.tz_localize("UTC").dt.tz_convert(zone) if zone is not None else typed


def _categorical_text(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """A categorical column's labels stripped of spaces (still categorical), and which are blank.

    Only the categories are touched, not every row: a chunk read from Parquet carries a few
    labels for many rows.
    """
    labels = raw.cat.categories.astype(str).str.strip()
    codes = raw.cat.codes.to_numpy()
    blank = np.append(np.asarray(labels == ""), False)[codes]  # code -1 (null) is not blank
    unique = pd.Index(labels).unique()
    stripped = pd.Categorical.from_codes(
        np.where(codes < 0, -1, unique.get_indexer(labels)[codes]), categories=unique
    )
    return pd.Series(stripped, index=raw.index), blank


def _as_categories(text: pd.Series, categories: tuple[str, ...]) -> pd.Series:
    """``text`` as a categorical of exactly ``categories``; other values and nulls get code -1."""
    known = pd.Index(list(categories))
    if isinstance(text.dtype, pd.CategoricalDtype):
        codes = np.append(known.get_indexer(text.cat.categories), -1)[text.cat.codes.to_numpy()]
    else:
        codes = known.get_indexer(text)
    return pd.Series(pd.Categorical.from_codes(codes, categories=known), index=text.index)


def _final_dtype(spec: Column, values: pd.Series) -> pd.Series:
    """Cast a column of rows that passed the gate to its schema dtype."""
    if spec.kind is Kind.INT:
        return values.astype("Int64" if spec.nullable else "int64")
    if spec.kind is Kind.BINARY:
        return values.astype("Int8")
    if spec.kind is Kind.CATEGORY:
        return values.astype(pd.CategoricalDtype(list(spec.categories)))
    if spec.kind is Kind.DATE:
        return values.astype("datetime64[ns]")
    if spec.kind is Kind.STRING:
        return values.astype(object).where(values.notna(), None).astype(object)
    return values


def _show(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class FileReport:
    """Reconciled counts of one pass of a file through the gate."""

    rows_in: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    extra_columns: tuple[str, ...] = ()
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.rows_valid + self.rows_quarantined

    def add(self, result: ValidationResult) -> None:
        self.rows_in += result.rows_in
        self.rows_valid += len(result.valid)
        self.rows_quarantined += len(result.quarantine)
        self.extra_columns = result.extra_columns
        for problem in result.problems:
            self.reasons[problem.column] = self.reasons.get(problem.column, 0) + 1
