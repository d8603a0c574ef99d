"""Categorical handling: unknown and infrequent categories never crash."""

from __future__ import annotations

from functools import lru_cache
from numbers import Integral
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from crm_modes.features._input import TableInputMixin, check_table, input_feature_names

MISSING = "__missing__"
OTHER = "__other__"


class CategoryEncoder(TableInputMixin, TransformerMixin, BaseEstimator):
    """Encode categorical columns for linear or tree models.

    At fit each column keeps its categories seen at least ``min_frequency`` times; a
    missing value is a category of its own (``__missing__``). At transform, infrequent and
    unseen values fall into one ``__other__`` bucket per column, so nothing crashes.

    Parameters:
        encoding: ``"onehot"`` (one 0/1 column per kept category plus ``__other__``, for
            linear models) or ``"ordinal"`` (one integer code per column, for tree models
            with native categorical support; ``__other__`` gets the last code).
        min_frequency: rows a category needs at fit to be kept.
    """

    _parameter_constraints: ClassVar[dict] = {
        "encoding": [StrOptions({"onehot", "ordinal"})],
        "min_frequency": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, encoding: str = "onehot", min_frequency: int = 10) -> None:
        self.encoding = encoding
        self.min_frequency = min_frequency

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: pd.DataFrame | np.ndarray, y: object = None) -> CategoryEncoder:
        frame = _as_frame(check_table(self, X, reset=True))
        self.n_features_in_ = frame.shape[1]
        self.categories_ = []
        for name in frame.columns:
            counts = _as_text(frame[name]).value_counts()
            kept = counts[counts >= self.min_frequency].index
            self.categories_.append(np.asarray(sorted(kept), dtype=object))
        return self

    def transform(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        check_is_fitted(self)
        frame = _as_frame(check_table(self, X, reset=False))
        return self.encode([frame.iloc[:, i] for i in range(frame.shape[1])])

    def encode(self, columns: list[pd.Series]) -> np.ndarray:
        """:meth:`transform` of the input columns, given one by one in fit order."""
        rows = len(columns[0]) if columns else 0
        codes = [self._codes(column, i) for i, column in enumerate(columns)]
        if self.encoding == "ordinal":
            return np.column_stack(codes).astype(np.float64) if codes else np.empty((rows, 0))
        blocks = []
        for i, column_codes in enumerate(codes):
            width = len(self.categories_[i]) + 1
            block = np.zeros((rows, width))
            block[np.arange(rows), column_codes] = 1.0
            blocks.append(block)
        return np.hstack(blocks) if blocks else np.empty((rows, 0))

    def _codes(self, column: pd.Series, i: int) -> np.ndarray:
        categories = self.categories_[i]
        other = len(categories)
        known = _index(tuple(categories))
        if isinstance(column.dtype, pd.CategoricalDtype):
            # Fast path: translate the column's own categories once, then index by code.
            own = known.get_indexer(column.cat.categories.astype(str))
            missing = np.flatnonzero(categories == MISSING)
            lookup = np.append(np.where(own < 0, other, own), missing[0] if missing.size else other)
            return lookup[column.cat.codes.to_numpy()]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            codes = known.get_indexer(_as_text(column))
        else:  # text: look the values up as they are
            values = column.to_numpy(dtype=object, na_value=MISSING)
            if len(values) <= _FEW:  # a hash lookup per value beats building an index
                positions = _positions(tuple(categories))
                codes = np.fromiter((positions.get(value, -1) for value in values), np.intp, len(values))
            else:
                codes = known.get_indexer(values)
        return np.where(codes < 0, other, codes)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self)
        names = input_feature_names(self)
        if self.encoding == "ordinal":
            return np.asarray(names, dtype=object)
        out = [
            f"{name}={value}"
            for name, kept in zip(names, self.categories_, strict=True)
            for value in [*kept, OTHER]
        ]
        return np.asarray(out, dtype=object)


#: Up to this many rows, text is looked up value by value.
_FEW = 64


@lru_cache(maxsize=256)
def _positions(categories: tuple[str, ...]) -> dict[str, int]:
    return {category: position for position, category in enumerate(categories)}


@lru_cache(maxsize=256)
def _index(categories: tuple[str, ...]) -> pd.Index:
    """The categories as an index, built once (its hash table too) and reused by every call."""
    return pd.Index(categories, dtype=object)


def _as_frame(X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    return pd.DataFrame(np.asarray(X, dtype=object))


def _as_text(column: pd.Series) -> pd.Series:
    """Category labels as text; whole numbers print without a decimal point; null is MISSING."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.astype(object).where(column.notna(), MISSING).astype(str)
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        whole = np.isfinite(values) & (np.floor(values) == values)
        text = np.where(
            whole, np.char.mod("%d", np.where(whole, values, 0).astype(np.int64)), values.astype(str)
        )
        return pd.Series(np.where(np.isnan(values), MISSING, text), index=column.index, dtype=object)
    # Text (object or string dtype): compared as it is; a missing value is a category of its own.
    return pd.Series(
        column.to_numpy(dtype=object, na_value=MISSING), index=column.index, dtype=object
    ).astype(str)
