"""Input checking shared by the transformers that accept mixed-type tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils import Tags
from sklearn.utils.validation import validate_data


def check_table(estimator: BaseEstimator, X: object, *, reset: bool) -> pd.DataFrame | np.ndarray:
    """Validate ``X`` for ``estimator`` without forcing one dtype on a DataFrame.

    DataFrames keep their columns' dtypes (names and widths are recorded or checked);
    anything else goes through scikit-learn's ``check_array`` (2-D, dense, any dtype,
    missing values allowed).
    """
    if isinstance(X, pd.DataFrame):
        validate_data(estimator, X, reset=reset, skip_check_array=True)
        if len(X) == 0:
            raise ValueError(
                f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required."
            )
        return X
    return validate_data(estimator, X, dtype=None, ensure_all_finite=False, reset=reset)


def input_feature_names(estimator: BaseEstimator) -> list[str]:
    """The column names seen at fit, or ``x0, x1, ...`` when the input had none."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return [str(name) for name in names]
    return [f"x{i}" for i in range(estimator.n_features_in_)]


class TableInputMixin:
    """Tags of a transformer that takes mixed-type tables: text, categories and missing values."""

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags
