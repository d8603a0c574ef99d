"""The validation gate: every table enters the system through here.

The gate checks a table against column declarations (by default the project's schema,
:data:`crm_modes.data.schema.SCHEMA`; for a table of one's own, the declarations of its reviewed
profile, :mod:`crm_modes.data.profile`) and collects every problem before reporting:

- **table-level** problems stop the job with one :class:`TableSchemaError` that lists them
  all: required columns missing (shown as a difference between expected and received), or
  a column none of whose values can be read as its dtype;
- **row-level** problems (a value that does not parse, is out of range, is missing where it may
  not be, or repeats a key already seen) send the row to quarantine with one reason per problem;
  the valid rows go on;
- a **category not declared** follows the column's policy (:attr:`Column.unseen_policy`): a model
  input is scored as the models' unknown category with a warning on the row
  (:attr:`ValidationResult.input_warnings`), a reporting column is scored and the new value
  counted, anything else is quarantined. A job may send a model input's new values to quarantine
  instead (``unseen_inputs="quarantine"``).

Extra columns are reported and ignored. Nothing is lost: rows in = valid + quarantined. Each
row-level problem is kept as a record (:class:`Problem`: row, column, message, the value), so
counts per column never depend on what a message says. A job whose input could (almost) not be
used stops (:func:`refuse_unusable`): a wrong file or a broken feed is not "cleaned" into nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from crm_modes.data.category_text import number_labels
from crm_modes.data.schema import KEY, SCHEMA, Column, Kind, Unseen, required_names
from crm_modes.shared.errors import InputError
from crm_modes.shared.text import unstorable_mask

REASON = "quarantine_reason"
SOURCE_ROW = "source_row"
#: The output column that carries each scored row's warnings (:attr:`ValidationResult.input_warnings`).
WARNINGS_COLUMN = "input_warnings"
#: The column name a repeated key's problem is counted under.
DUPLICATE_KEY = "duplicate key"
_MAX_LISTED_CATEGORIES = 6
#: The share of a table's rows that may be quarantined before a job stops (``--max-quarantined-share``).
DEFAULT_MAX_QUARANTINED_SHARE = 0.05
#: What a job may do with a model input's category it does not know.
UnseenInputs = Literal["score", "quarantine"]


class TableSchemaError(InputError):
    """The table as a whole does not fit the schema; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("table rejected:\n" + "\n".join(f"  - {problem}" for problem in problems))


@dataclass(frozen=True)
class Problem:
    """One reason one row was quarantined (or, for a warning, scored with a note): the 0-based row
    of its chunk, the column, the message, and the value as received (``missing`` for none)."""

    row: int
    column: str
    message: str
    value: str = ""


@dataclass(frozen=True)
class ValidationResult:
    """What the gate let through, what it quarantined and why.

    Attributes:
        valid: rows that passed, typed per the declarations, declared columns only, in their order.
        quarantine: rejected rows as received, plus ``source_row`` (1-based data row in the
            input) and ``quarantine_reason`` (every problem of the row, joined by "; ").
        extra_columns: received columns the declarations do not know (ignored).
        problems: every row-level problem, one record each.
        warnings: every value of a valid row scored with a note (a category the column does not
            declare), one record each (``row`` counts the chunk's rows, as for problems).
        input_warnings: per valid row, its warnings as one text ("" for none).
    """

    valid: pd.DataFrame
    quarantine: pd.DataFrame
    extra_columns: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    input_warnings: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))

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
        unseen_inputs: what becomes of a model input's category the column does not declare:
            ``score`` (the column's policy: scored with a warning) or ``quarantine``.
    """

    required: tuple[str, ...] = field(default_factory=lambda: tuple(required_names()))
    columns: tuple[Column, ...] = SCHEMA
    key: tuple[str, ...] = KEY
    unseen_inputs: UnseenInputs = "score"
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
        noted: list[Problem] = []
        for spec in present:
            policy = self._policy(spec)
            values, unreadable, row_problems, row_notes = _coerce(spec, frame[spec.name], policy)
            if unreadable:
                problems.append(unreadable)
                continue
            typed[spec.name] = values
            found += row_problems
            noted += row_notes
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
        kept_notes = tuple(note for note in noted if note.row not in reasons)
        warned = tuple(note for note in kept_notes if self._policy(known[note.column]) == "score")
        return ValidationResult(
            valid=valid,
            quarantine=quarantine.reset_index(drop=True),
            extra_columns=tuple(extra),
            problems=tuple(found),
            warnings=kept_notes,
            input_warnings=_per_valid_row(warned, bad_rows, len(valid)),
        )

    def _policy(self, spec: Column) -> Unseen:
        policy = spec.unseen_policy
        return "quarantine" if policy == "score" and self.unseen_inputs == "quarantine" else policy

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
            found.append(Problem(int(row), DUPLICATE_KEY, f"duplicate key ({shown}) already seen", shown))
        return found


def _per_valid_row(notes: tuple[Problem, ...], bad_rows: np.ndarray, rows: int) -> np.ndarray:
    """The notes of each valid row joined into one text, in the valid rows' order ("" for none)."""
    texts = np.full(rows, "", dtype=object)
    by_row: dict[int, list[str]] = {}
    for note in notes:
        by_row.setdefault(note.row, []).append(note.message)
    for row, messages in by_row.items():
        texts[row - int(np.searchsorted(bad_rows, row))] = "; ".join(messages)
    return texts


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
        values, unreadable, _, _ = _coerce(declared[name], frame[name].reset_index(drop=True))
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


def _coerce(
    spec: Column, raw: pd.Series, policy: Unseen = "quarantine"
) -> tuple[pd.Series, str | None, list[Problem], list[Problem]]:
    """Type one column; return (typed values, table-level problem or None, row problems, notes).

    ``policy``: what a category outside the declared ones is (:attr:`Column.unseen_policy`); unless
    ``quarantine``, it is kept as a category of its own and noted instead of being a problem.
    """
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
        # Straight to the declared categories (and, unless refused, the new ones after them): a value
        # outside them gets code -1.
        labels = text if text is not None else raw.astype("string")
        categories = spec.categories
        if policy != "quarantine":
            categories = (*categories, *_new_labels(labels, categories, present))
        parsed = _as_categories(labels, categories)
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
    if spec.kind is Kind.STRING:
        checks.append((ok & unstorable_mask(parsed), "holds a NUL or a lone surrogate: no store can"))
    if spec.numeric and spec.minimum is not None:
        checks.append((ok & (numbers < spec.minimum), f"is below the minimum {spec.minimum:g}"))
    if spec.numeric and spec.maximum is not None:
        checks.append((ok & (numbers > spec.maximum), f"is above the maximum {spec.maximum:g}"))
    notes: list[Problem] = []
    if spec.kind is Kind.CATEGORY:
        allowed = ", ".join(spec.categories[:_MAX_LISTED_CATEGORIES])
        allowed += ", ..." if len(spec.categories) > _MAX_LISTED_CATEGORIES else ""
        codes = parsed.cat.codes.to_numpy()
        checks.append((ok & (codes < 0), f"is not one of {allowed}"))
        outcome = "scored as the models' unknown category" if policy == "score" else "counted"
        notes = [
            Problem(
                int(row),
                spec.name,
                f"{spec.name}: {_show(raw.iat[row])} is not one of {allowed}: {outcome}",
                _show(raw.iat[row]),
            )
            for row in np.flatnonzero(ok & (codes >= len(spec.categories)))
        ]

    row_problems = [
        Problem(int(row), spec.name, f"{spec.name}: {_show(raw.iat[row])} {message}", _show(raw.iat[row]))
        for mask, message in checks
        for row in np.flatnonzero(mask)
    ]
    if not spec.nullable:
        row_problems += [
            Problem(int(row), spec.name, f"{spec.name}: missing, but the column may not be null", "missing")
            for row in np.flatnonzero(missing)
        ]
    return parsed.reset_index(drop=True).rename(spec.name), None, row_problems, notes


def _new_labels(labels: pd.Series, known: tuple[str, ...], present: np.ndarray) -> tuple[str, ...]:
    """The labels of present rows that are not among ``known``, sorted (a chunk has few)."""
    if isinstance(labels.dtype, pd.CategoricalDtype):
        codes = labels.cat.codes.to_numpy()
        used = labels.cat.categories[np.unique(codes[present & (codes >= 0)])]
    else:
        used = pd.unique(labels.to_numpy()[present])
    declared = set(known)
    return tuple(sorted({str(label) for label in used} - declared))


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
    if spec.kind is Kind.CATEGORY:  # the declared categories, then any new ones the policy kept
        return (
            values
            if isinstance(values.dtype, pd.CategoricalDtype)
            else values.astype(pd.CategoricalDtype(list(spec.categories)))
        )
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
    """Reconciled counts of one pass of a file through the gate, and what to tell about its problems.

    ``reasons`` counts the problems per column (a row with two problems counts in both), with one
    offending value per column in ``examples``; ``unseen`` counts, per column, the values scored or
    counted although the column does not declare them.
    """

    rows_in: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    extra_columns: tuple[str, ...] = ()
    reasons: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)
    unseen: dict[str, dict[str, int]] = field(default_factory=dict)
    rows_warned: int = 0

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.rows_valid + self.rows_quarantined

    @property
    def quarantined_share(self) -> float:
        return self.rows_quarantined / self.rows_in if self.rows_in else 0.0

    def add(self, result: ValidationResult) -> None:
        self.rows_in += result.rows_in
        self.rows_valid += len(result.valid)
        self.rows_quarantined += len(result.quarantine)
        self.extra_columns = result.extra_columns
        for problem in result.problems:
            self.reasons[problem.column] = self.reasons.get(problem.column, 0) + 1
            self.examples.setdefault(problem.column, problem.value)
        for note in result.warnings:
            values = self.unseen.setdefault(note.column, {})
            values[note.value] = values.get(note.value, 0) + 1
        self.rows_warned += int(np.count_nonzero(result.input_warnings != ""))

    def merge(self, other: FileReport) -> None:
        """Add another pass's counts (a chunk done by an earlier run of a resumed job)."""
        self.rows_in += other.rows_in
        self.rows_valid += other.rows_valid
        self.rows_quarantined += other.rows_quarantined
        self.extra_columns = other.extra_columns or self.extra_columns
        self.rows_warned += other.rows_warned
        for column, count in other.reasons.items():
            self.reasons[column] = self.reasons.get(column, 0) + count
            self.examples.setdefault(column, other.examples.get(column, ""))
        for column, values in other.unseen.items():
            mine = self.unseen.setdefault(column, {})
            for value, count in values.items():
                mine[value] = mine.get(value, 0) + count

    def worst(self, count: int = 5) -> list[tuple[str, int, str]]:
        """The columns with most problems: (column, problems, an offending value), most first."""
        ranked = sorted(self.reasons.items(), key=lambda item: (-item[1], item[0]))[:count]
        return [(column, problems, self.examples.get(column, "")) for column, problems in ranked]

    def worst_text(self, count: int = 5) -> str:
        return ", ".join(
            f"{column} {problems:,}" + (f" (e.g. {example})" if example else "")
            for column, problems, example in self.worst(count)
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "extra_columns": list(self.extra_columns)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileReport:
        return cls(**{**data, "extra_columns": tuple(data.get("extra_columns", ()))})


class QuarantineLimitError(InputError):
    """A job's input could (almost) not be used: nothing was written but the quarantine."""


def refuse_unusable(
    report: FileReport,
    limit: float,
    source: str,
    *,
    setting: str = "--max-quarantined-share",
    quarantine: str | Path | None = None,
) -> None:
    """Stop a job whose input could not be used: no row passed the gate, or more than ``limit`` of
    the rows were quarantined. The message names the worst columns with an offending value each.

    Raises:
        QuarantineLimitError: naming the share, the limit and its setting, and the worst columns.
    """
    if not report.rows_in:
        return
    bad, rows_in = report.rows_quarantined, report.rows_in
    where = f"; the rows and their reasons: {quarantine}" if quarantine is not None else ""
    where += f" (rows in = used + quarantined: {rows_in:,} = {report.rows_valid:,} + {bad:,})"
    if report.rows_valid == 0:
        raise QuarantineLimitError(
            f"{source}: none of the {rows_in:,} rows passed the gate, so nothing was used: is it the right "
            f"file, or a broken feed? Problems by column: {report.worst_text()}{where}"
        )
    if bad / rows_in > limit:
        raise QuarantineLimitError(
            f"{source}: {bad:,} of {rows_in:,} rows ({bad / rows_in:.1%}) were quarantined, more than the "
            f"{limit:.0%} allowed ({setting}): is it the right file, or a broken feed? Problems by column: "
            f"{report.worst_text()}{where}"
        )
