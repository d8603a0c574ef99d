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
from crm_modes.features.columns import codes_in, label_text, labels_of

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
            counts = label_text(frame[name]).value_counts()
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
        return self.encode_codes(
            [codes_in(labels_of(column), self.known(i)) for i, column in enumerate(columns)], rows
        )

    def known(self, i: int) -> dict[str, int]:
        """Column ``i``'s kept categories and their codes (built once per category list); a
        value not there gets ``len(known)`` (``__other__``)."""
        return _positions(tuple(self.categories_[i]))

    def encode_codes(self, codes: list[np.ndarray], rows: int) -> np.ndarray:
        """The encoding of ``rows`` rows given each column's codes into :meth:`known`."""
        if self.encoding == "ordinal":
            return np.column_stack(codes).astype(np.float64) if codes else np.empty((rows, 0))
        blocks = []
        for i, column_codes in enumerate(codes):
            block = np.zeros((rows, len(self.categories_[i]) + 1))
            block[np.arange(rows), column_codes] = 1.0
            blocks.append(block)
        return np.hstack(blocks) if blocks else np.empty((rows, 0))

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


@lru_cache(maxsize=256)
def _positions(categories: tuple[str, ...]) -> dict[str, int]:
    """Each category's position, built once per category list and reused by every call."""
    return {category: position for position, category in enumerate(categories)}


def _as_frame(X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    return pd.DataFrame(np.asarray(X, dtype=object))
