"""The entrance check: the first step of every feature pipeline."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence, Set
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils.validation import check_is_fitted

from crm_modes.data.gate import column_difference
from crm_modes.features._input import TableInputMixin, check_table, input_feature_names
from crm_modes.shared.errors import InputError


class MissingColumnsError(InputError):
    """The table lacks columns the pipeline needs; the message shows the difference."""


class UnusedColumnsWarning(UserWarning):
    """The table carries columns the pipeline never saw; they are ignored."""


def warn_unused(columns: Iterable[object], expected: Set[str], *, stacklevel: int = 3) -> None:
    """Warn (:class:`UnusedColumnsWarning`) about the ``columns`` not in ``expected``, in order."""
    extra = [str(name) for name in columns if name not in expected]
    if extra:
        message = f"ignoring columns the pipeline does not use: {extra}"
        warnings.warn(message, UnusedColumnsWarning, stacklevel=stacklevel)


class EntranceCheck(TableInputMixin, TransformerMixin, BaseEstimator):
    """Select the pipeline's input columns by name and check them against fit time.

    At fit it learns which columns the pipeline needs: ``columns`` if given, else every
    column it saw. At transform, missing columns raise :class:`MissingColumnsError` showing
    the difference; columns it has never seen are dropped with a warning (those that came
    with the training table, such as identifiers and labels, silently); column order never
    matters.
    On arrays without column names it checks only the number of columns.

    Parameters:
        columns: names of the columns the pipeline needs, in output order; ``None`` keeps
            every column seen at fit.
    """

    _parameter_constraints: ClassVar[dict] = {"columns": [list, tuple, None]}

    def __init__(self, *, columns: Sequence[str] | None = None) -> None:
        self.columns = columns

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: pd.DataFrame | np.ndarray, y: object = None) -> EntranceCheck:
        self.ignored_at_fit_ = []
        if isinstance(X, pd.DataFrame) and self.columns is not None:
            self._check_present(X, "fit")
            self.ignored_at_fit_ = [str(name) for name in X.columns if name not in set(self.columns)]
            X = X[list(self.columns)]
        check_table(self, X, reset=True)
        return self

    def transform(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame | np.ndarray:
        check_is_fitted(self)
        names = getattr(self, "feature_names_in_", None)
        if names is None or not isinstance(X, pd.DataFrame):
            return check_table(self, X, reset=False)
        return X[self.selected(X)]

    def selected(self, X: pd.DataFrame) -> list[str]:
        """The input columns of ``X`` to keep, in order, after checking them (see the class)."""
        names = list(self.feature_names_in_)
        self._check_present(X, "transform", expected=names)
        # Columns that came with the training table (identifiers, labels) are expected.
        warn_unused(X.columns, set(names) | set(self.ignored_at_fit_), stacklevel=4)
        return names

    def _check_present(self, X: pd.DataFrame, stage: str, expected: Sequence[str] | None = None) -> None:
        expected = list(self.columns if expected is None else expected)
        received = [str(name) for name in X.columns]
        present = set(received)
        missing = [name for name in expected if name not in present]
        if missing:
            shown = column_difference(expected, received)
            raise MissingColumnsError(
                f"at {stage}: the table lacks columns the pipeline needs: {missing} ({shown})"
            )

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        return np.asarray(input_feature_names(self), dtype=object)
