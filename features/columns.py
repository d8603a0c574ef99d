"""The rows to score, converted once: numbers as float64 arrays, text as codes into its labels.

Scoring one batch reads the same input columns many times: the committee model's features,
the PD model's, and the churn model's in each of the three modes, then the reasons. Read
from a DataFrame each time, every categorical column is hashed again per read (the largest
cost of scoring) and every numeric column is converted again. :class:`Columns` reads each
column once, on first use, and keeps the result:

- :meth:`Columns.number`: the column as float64 (text that is not a number becomes NaN, as
  ``pd.to_numeric(errors="coerce")`` does);
- :meth:`Columns.labels`: the column factorized into codes and their labels as text (a
  missing value is the label ``__missing__``, whole numbers print without a decimal point),
  the same labels a :class:`~crm_modes.features.categorical.CategoryEncoder` learnt at fit;
- :meth:`Columns.codes`: codes into one encoder's kept categories, computed once per column
  and category list (the committee and churn models usually share it).

:meth:`Columns.replaced` gives the same rows with some columns replaced (the mode set, the
readings the mode moves), sharing everything else already read: this is how the three
counterfactual copies of a batch cost one read of the input. :meth:`Columns.to_frame` gives
the rows back as a DataFrame, for the pipelines that take the plain scikit-learn path.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm_modes.data.category_text import number_labels

#: The label of a missing value (a category of its own).
MISSING = "__missing__"
#: A frame of up to this many rows is read in one pass (:meth:`Columns._few_rows`), and its text
#: factorized with a dictionary, faster than pandas' hash table for a few rows
#: (docs/decisions/015-fast-scoring-path.md).
FEW_ROWS = 64


@dataclass(frozen=True)
class Labels:
    """A text column as ``labels[codes]``: codes index into labels (each label at most once)."""

    codes: np.ndarray
    labels: np.ndarray

    @classmethod
    def constant(cls, label: str, n: int) -> Labels:
        """``n`` rows all holding ``label``."""
        return cls(np.zeros(n, dtype=np.intp), np.asarray([label], dtype=object))

    def values(self) -> np.ndarray:
        """The column as an object array (missing values as None)."""
        labels = np.where(self.labels == MISSING, None, self.labels).astype(object)
        return labels[self.codes]


class Columns:
    """The rows of ``frame``, each column converted when first read (see the module)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.n = len(frame)
        self._parent: Columns | None = None
        self._replaced: dict[str, np.ndarray | Labels] = {}
        self._numbers: dict[str, np.ndarray] = {}
        self._labels: dict[str, Labels] = {}
        self._codes: dict[tuple[str, int], np.ndarray] = {}
        self._derived: dict[Hashable, np.ndarray] = {}
        self._names = list(map(str, frame.columns))
        self._kinds = {str(name): dtype.kind for name, dtype in frame.dtypes.items()}
        self._few: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None

    @classmethod
    def of(cls, rows: pd.DataFrame | Columns) -> Columns:
        return rows if isinstance(rows, Columns) else cls(rows)

    def __len__(self) -> int:
        return self.n

    def __contains__(self, name: object) -> bool:
        return (
            name in self._replaced
            or (self._parent is not None and name in self._parent)
            or (self._parent is None and name in self.frame.columns)
        )

    @property
    def columns(self) -> list[str]:
        """The column names, in the frame's order; replaced columns the frame lacked come last."""
        return self._names

    def is_numeric(self, name: str) -> bool:
        """Whether the column holds numbers (booleans count), as its dtype says."""
        if name in self._replaced:
            value = self._replaced[name]
            return (
                value.dtype.kind in "biuf" if isinstance(value, pd.Series) else isinstance(value, np.ndarray)
            )
        if self._parent is not None:
            return self._parent.is_numeric(name)
        return self._kinds[name] in "biuf"

    def number(self, name: str) -> np.ndarray:
        """The column as float64; text that is not a number and missing values are NaN."""
        return self._read(name, "_numbers", np.ndarray, _numbers_of_labels, _number_of)

    def labels(self, name: str) -> Labels:
        """The column as codes into text labels, missing values under :data:`MISSING`."""
        return self._read(name, "_labels", Labels, _labels_of_numbers, labels_of)

    def _read(
        self, name: str, store: str, kind: type, convert: Callable, read: Callable
    ) -> np.ndarray | Labels:
        """Column ``name`` as ``kind``: replaced here (converted when given as the other kind), or
        read from the frame by the original rows; kept in ``store`` once computed."""
        if name not in self._replaced and self._parent is not None:
            return self._parent._read(name, store, kind, convert, read)
        kept = getattr(self, store)
        found = kept.get(name)
        if found is None:
            if name in self._replaced:
                value = self._replaced[name]
                if isinstance(value, pd.Series):  # a column as the frame would hold it: read as one
                    found = read(value)
                else:
                    found = value if isinstance(value, kind) else convert(value)
            else:
                found = self._read_frame(name, store, read)
            kept[name] = found
        return found

    def _read_frame(self, name: str, store: str, read: Callable) -> np.ndarray | Labels:
        """Column ``name`` of the frame: from :meth:`_few_rows` when it has it (the same values),
        else as ``read`` reads the frame's own column."""
        few = self._few_rows()
        if few is not None:
            numbers, text = few
            if store == "_numbers" and name in numbers:
                return numbers[name]
            if store == "_labels" and name in text:
                return _text_labels(text[name])
        return read(self.frame[name])

    def _few_rows(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
        """For a frame of at most :data:`FEW_ROWS` rows, its numeric columns as float64 and its text
        columns as object arrays, read in one pass; None for a larger frame.

        A frame's column costs pandas a fixed time to hand out the first time (a Series built
        around it), whatever its length: for one record, most of reading it. Converted from one
        object matrix, as ``astype`` converts them, the values are the same (tested); only columns
        of NumPy's own numeric and object dtypes are read this way."""
        if self._few is None and self.n <= FEW_ROWS:
            matrix = self.frame.to_numpy(dtype=object)
            numbers, text = {}, {}
            for index, (name, dtype) in enumerate(self.frame.dtypes.items()):
                if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
                    numbers[str(name)] = matrix[:, index].astype(np.float64)
                elif isinstance(dtype, np.dtype) and dtype.kind == "O":
                    text[str(name)] = matrix[:, index]
            self._few = (numbers, text)
        return self._few

    def codes(self, name: str, known: dict[str, int]) -> np.ndarray:
        """Position of each row's label in ``known`` (label -> position); ``len(known)`` where it
        is not there."""
        if name not in self._replaced and self._parent is not None:
            return self._parent.codes(name, known)
        key = (name, id(known))  # ``known`` is held by a cache for the model's life
        found = self._codes.get(key)
        if found is None:
            found = self._codes[key] = codes_in(self.labels(name), known)
        return found

    def derived(self, key: Hashable, inputs: Iterable[str], compute: Callable[[], np.ndarray]) -> np.ndarray:
        """A value computed from the columns ``inputs`` alone, computed once for every copy of
        the rows that shares them: kept by the nearest copy in the chain that replaced one of
        them (the original rows when none did). ``key`` names the value and its parameters."""
        inputs = tuple(inputs)
        owner = self
        while owner._parent is not None and not any(name in owner._replaced for name in inputs):
            owner = owner._parent
        found = owner._derived.get(key)
        if found is None:
            found = owner._derived[key] = compute()
        return found

    def replaced_anywhere(self) -> set[str]:
        """The columns this copy, or any copy it was made from, replaced."""
        names: set[str] = set()
        rows: Columns | None = self
        while rows is not None:
            names |= rows._replaced.keys()
            rows = rows._parent
        return names

    def original(self) -> Columns:
        """The rows this copy was made from, before any column was replaced."""
        return self if self._parent is None else self._parent.original()

    def replaced(self, **columns: np.ndarray | Labels | pd.Series) -> Columns:
        """The same rows with ``columns`` replaced, or added: float64 arrays, :class:`Labels`, or
        a Series read exactly as a column of the frame is (its dtype decides, its index is ignored)."""
        child = Columns.__new__(Columns)
        child.frame, child.n, child._parent = self.frame, self.n, self
        child._replaced = dict(columns)
        child._kinds = self._kinds
        child._numbers, child._labels, child._codes, child._derived = {}, {}, {}, {}
        child._names = self._names + [name for name in columns if name not in self]
        for name, value in columns.items():
            if len(value.codes if isinstance(value, Labels) else value) != self.n:
                raise ValueError(f"replacing column {name!r}: {self.n} rows expected")
        return child

    def objects(self, name: str) -> np.ndarray:
        """Column ``name`` as an object array of the values :meth:`to_frame` would hold, without
        building the frame (a reason reads the few columns it names)."""
        if name in self._replaced:
            value = self._replaced[name]
            if isinstance(value, Labels):
                return value.values()
            if isinstance(value, pd.Series):
                return value.to_numpy(dtype=object)
            return np.asarray(value).astype(object)
        if self._parent is not None:
            return self._parent.objects(name)
        return self.frame[name].to_numpy(dtype=object)

    def to_frame(self) -> pd.DataFrame:
        """The rows as a DataFrame (replaced columns as numbers or text), index as the frame's."""
        if self._parent is None:
            return self.frame
        frame = self._parent.to_frame().copy(deep=False)
        for name, value in self._replaced.items():
            if isinstance(value, Labels):
                frame[name] = value.values()
            elif isinstance(value, pd.Series):
                frame[name] = pd.Series(value.array, index=frame.index, name=name)
            else:
                frame[name] = value
        return frame


def codes_in(column: Labels, known: dict[str, int]) -> np.ndarray:
    """Position of each row's label in ``known`` (label -> position); ``len(known)`` where it is
    not there. One dictionary lookup per distinct label, then one gather."""
    other = len(known)
    lookup = np.fromiter((known.get(label, other) for label in column.labels), np.intp, len(column.labels))
    return lookup[column.codes]


def _number_of(column: pd.Series) -> np.ndarray:
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "biuf":  # no missing marker to map
        return column.to_numpy().astype(np.float64, copy=False)
    if column.dtype.kind in "biuf":  # a nullable extension type
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    return _parse_numbers(column)


def _numbers_of_labels(column: Labels) -> np.ndarray:
    return _parse_numbers(column.values())


def _labels_of_numbers(values: np.ndarray) -> Labels:
    return labels_of(pd.Series(values))


def _parse_numbers(values: object) -> np.ndarray:
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def labels_of(column: pd.Series) -> Labels:
    """Factorize once; the labels as a CategoryEncoder reads them (see :func:`label_text`)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = column.cat.categories
        labels = np.append(np.asarray(categories.astype(str), dtype=object), MISSING)
        codes = column.cat.codes.to_numpy().astype(np.intp)
        return Labels(np.where(codes < 0, len(categories), codes), labels)
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        labels = np.append(np.asarray(label_text(pd.Series(uniques)), dtype=object), MISSING)
        return Labels(np.where(codes < 0, len(uniques), codes).astype(np.intp), labels)
    if pd.api.types.is_bool_dtype(column):
        values = column.astype(object).to_numpy(dtype=object, na_value=MISSING)
        codes, uniques = pd.factorize(values)
        return Labels(codes.astype(np.intp), np.asarray([str(value) for value in uniques], dtype=object))
    # Text (object or string dtype): the values as they are, a missing value as MISSING.
    return _text_labels(column.to_numpy(dtype=object))


def _text_labels(values: np.ndarray) -> Labels:
    """:func:`labels_of` of a text column given as an object array."""
    missing = pd.isna(values)
    if missing.any():
        values = np.where(missing, MISSING, values)
    if len(values) <= FEW_ROWS:
        return _factorized_few(values)
    codes, uniques = pd.factorize(values)
    return Labels(codes.astype(np.intp), np.asarray(uniques, dtype=object))


def _factorized_few(values: np.ndarray) -> Labels:
    """``pd.factorize`` of a few values, with a dictionary: the same codes and labels (both number
    the distinct values in order of first appearance and compare them as Python does)."""
    positions: dict[object, int] = {}
    codes = [positions.setdefault(value, len(positions)) for value in values]
    return Labels(np.array(codes, dtype=np.intp), np.fromiter(positions, dtype=object, count=len(positions)))


def label_text(column: pd.Series) -> pd.Series:
    """Category labels as text; whole numbers print without a decimal point; null is MISSING."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.astype(object).where(column.notna(), MISSING).astype(str)
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        text = number_labels(column.to_numpy(dtype=np.float64, na_value=np.nan))
        return pd.Series(np.where(pd.isna(text), MISSING, text), index=column.index, dtype=object)
    # Text (object or string dtype): compared as it is; a missing value is a category of its own.
    return pd.Series(
        column.to_numpy(dtype=object, na_value=MISSING), index=column.index, dtype=object
    ).astype(str)
