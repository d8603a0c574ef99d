"""Numeric handling: log transform, clipping at training quantiles, median imputation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted, validate_data

from crm_modes.features._input import input_feature_names
from crm_modes.shared.errors import InputError

MISSING_SUFFIX = "__missing"


class NumericCleaner(TransformerMixin, BaseEstimator):
    """Make numeric columns model-ready.

    In order: ``log1p`` of the heavy-tailed columns named in ``log_columns`` (negative
    values are floored at 0 first), clipping at the training quantiles, median imputation
    (``impute``; boosted trees take missing values as they are: each split learns where they
    go). A column that had missing values at fit gets a 0/1 indicator ``<name>__missing``
    (``add_indicator``).

    Parameters:
        log_columns: columns to log-transform (money amounts).
        clip_quantiles: lower and upper training quantiles to clip at; ``None`` disables.
        unclipped_columns: columns never clipped, whose values beyond the training range
            must reach the model (a macro figure in a recession deeper than any at fit).
        add_indicator: add missing-value indicators for columns with nulls at fit.
        impute: replace a missing value by the column's training median (False: leave it missing).

    Raises (at fit):
        ValueError naming the column when a column holds values that are not numbers.
    """

    _parameter_constraints: ClassVar[dict] = {
        "log_columns": [list, tuple],
        "clip_quantiles": [tuple, list, None],
        "unclipped_columns": [list, tuple],
        "add_indicator": ["boolean"],
        "impute": ["boolean"],
    }

    def __init__(
        self,
        *,
        log_columns: Sequence[str] = (),
        clip_quantiles: tuple[float, float] | None = (0.001, 0.999),
        unclipped_columns: Sequence[str] = (),
        add_indicator: bool = True,
        impute: bool = True,
    ) -> None:
        self.log_columns = log_columns
        self.clip_quantiles = clip_quantiles
        self.unclipped_columns = unclipped_columns
        self.add_indicator = add_indicator
        self.impute = impute

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: pd.DataFrame | np.ndarray, y: object = None) -> NumericCleaner:
        if self.clip_quantiles is not None:
            low, high = self.clip_quantiles
            if not 0 <= low < high <= 1:
                raise InputError(
                    "clip_quantiles must be (low, high) with 0 <= low < high <= 1; "
                    f"got {self.clip_quantiles!r}"
                )
        _check_numeric(X)
        values = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=True)
        names = self._names()
        for parameter in ("log_columns", "unclipped_columns"):
            unknown = [name for name in getattr(self, parameter) if name not in set(names)]
            if unknown:
                raise InputError(f"{parameter} {unknown} are not among the numeric input columns {names}")
        self.log_mask_ = np.isin(names, list(self.log_columns))
        values = self._log(values)
        all_missing = np.isnan(values).all(axis=0)
        if all_missing.any():
            empty = [names[i] for i in np.flatnonzero(all_missing)]
            raise InputError(f"numeric columns {empty} have no values at fit; nothing to learn from")
        if self.clip_quantiles is None:
            self.lower_ = np.full(values.shape[1], -np.inf)
            self.upper_ = np.full(values.shape[1], np.inf)
        else:
            self.lower_, self.upper_ = np.nanquantile(values, self.clip_quantiles, axis=0)
            free = np.isin(names, list(self.unclipped_columns))
            self.lower_[free], self.upper_[free] = -np.inf, np.inf
        self.medians_ = np.nanmedian(np.clip(values, self.lower_, self.upper_), axis=0)
        has_missing = np.isnan(values).any(axis=0)
        self.indicator_columns_ = (
            np.flatnonzero(has_missing) if self.add_indicator else np.empty(0, dtype=int)
        )
        return self

    def transform(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        check_is_fitted(self)
        _check_numeric(X)
        values = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        return self.transform_values(values)

    def transform_values(self, values: np.ndarray) -> np.ndarray:
        """:meth:`transform` of a float64 matrix already checked (columns as at fit).

        Each step writes into the output's own columns (no intermediate copy of the matrix): a
        third less time on a 50,000 x 43 block than clip, where and hstack of copies, same values.
        """
        width = values.shape[1]
        out = np.empty((len(values), width + len(self.indicator_columns_)))
        cleaned = out[:, :width]
        values = self._log(values, out=cleaned)
        missing = np.isnan(values)
        np.clip(values, self.lower_, self.upper_, out=cleaned)
        if self.impute:
            np.copyto(cleaned, np.broadcast_to(self.medians_, cleaned.shape), where=missing)
        out[:, width:] = missing[:, self.indicator_columns_]
        return out

    def transform_column(self, j: int, values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Input column ``j`` of :meth:`transform_values`, alone: its cleaned values and its
        missing-value indicator (None when it has none); the same arithmetic."""
        if self.log_mask_[j]:
            values = np.log1p(np.maximum(values, 0.0))
        missing = np.isnan(values)
        cleaned = np.clip(values, self.lower_[j], self.upper_[j])
        if self.impute:
            cleaned = np.where(missing, self.medians_[j], cleaned)
        has_indicator = j in self.indicator_columns_
        return cleaned, missing.astype(np.float64) if has_indicator else None

    def _log(self, values: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
        """``values`` with the log columns as ``log1p`` of their non-negative part: ``values``
        itself when there are none, else a copy (into ``out`` when given)."""
        if not self.log_mask_.any():
            return values
        if out is None:
            out = values.copy()
        else:
            np.copyto(out, values)
        out[:, self.log_mask_] = np.log1p(np.maximum(values[:, self.log_mask_], 0.0))
        return out

    def _names(self) -> list[str]:
        return input_feature_names(self)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self)
        names = self._names()
        indicators = [f"{names[i]}{MISSING_SUFFIX}" for i in self.indicator_columns_]
        return np.asarray(names + indicators, dtype=object)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _check_numeric(X: object) -> None:
    """Name the first column of a DataFrame that holds text where numbers are expected."""
    if not isinstance(X, pd.DataFrame):
        return
    for name, dtype in X.dtypes.items():
        if dtype.kind in "biuf":  # booleans and numbers, numpy or pandas nullable
            continue
        column = X[name]
        parsed = pd.to_numeric(column, errors="coerce")
        bad = column.notna() & parsed.isna()
        if bad.any():
            raise InputError(
                f"column {name!r} is declared numeric but holds values that are not numbers "
                f"(first: {column[bad].iloc[0]!r}); declare it categorical in the feature configuration"
            )
