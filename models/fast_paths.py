"""Exact, faster stand-ins for per-call overheads of fitted scikit-learn models at scoring time.

A fitted ``HistGradientBoostingClassifier`` with categorical features keeps a private
``ColumnTransformer`` (an ``OrdinalEncoder`` for the categorical columns, a
``check_array`` for the others) that it runs on every prediction. On one record that
costs more than walking all the trees. :class:`CategoryRemap` does the same mapping with
a binary search per categorical column. It is installed on loaded models only, in memory
(model files are never changed), and it hands any input it was not built for to the
original transformer, so errors read exactly as scikit-learn's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline

from crm_modes.models.estimators import fitted_estimators


class CategoryRemap:
    """Drop-in for a fitted gradient-boosting model's categorical preprocessor.

    Output, as the original's: the categorical columns first, each value replaced by its
    position among the categories seen at fit (unknown or missing: NaN), then the other
    columns as float64.
    """

    def __init__(self, original: ColumnTransformer) -> None:
        self.original = original
        self.transformers_ = original.transformers_
        self.n_features_in_ = original.n_features_in_
        names = getattr(original, "feature_names_in_", None)
        self.feature_names_in_ = None if names is None else list(names)
        encoder = original.named_transformers_["encoder"]
        mask = np.zeros(self.n_features_in_, dtype=bool)
        mask[original._transformer_to_input_indices["encoder"]] = True
        self.categorical = np.flatnonzero(mask)
        self.numeric = np.flatnonzero(~mask)
        self.categories = [_sorted_known(categories) for categories in encoder.categories_]

    def transform(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            if self.feature_names_in_ is not None and list(X.columns) != self.feature_names_in_:
                return self.original.transform(X)
            try:
                values = X.to_numpy(dtype=np.float64)
            except (TypeError, ValueError):
                return self.original.transform(X)
        else:
            values = np.asarray(X)
            if values.dtype.kind not in "biuf":
                return self.original.transform(X)
            values = values.astype(np.float64, copy=False)
        if values.ndim != 2 or values.shape[1] != self.n_features_in_ or len(values) == 0:
            return self.original.transform(X)
        out = np.empty_like(values)
        for position, (column, known) in enumerate(zip(self.categorical, self.categories, strict=True)):
            out[:, position] = _positions(values[:, column], known)
        out[:, len(self.categorical) :] = values[:, self.numeric]
        return out


def _sorted_known(categories: np.ndarray) -> np.ndarray:
    """The non-missing categories as float64, sorted (as the encoder stores them)."""
    values = np.asarray(categories, dtype=np.float64)
    return np.sort(values[~np.isnan(values)])


def _positions(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Position of each value in ``known``; NaN where it is missing or was not seen at fit."""
    if len(known) == 0:
        return np.full(len(values), np.nan)
    at = np.minimum(np.searchsorted(known, values), len(known) - 1)
    return np.where(known[at] == values, at.astype(np.float64), np.nan)


def gradient_boosting_models(pipeline: Pipeline) -> list[HistGradientBoostingClassifier]:
    """The fitted boosting models inside a model pipeline (calibrated or not)."""
    return [
        model for model in fitted_estimators(pipeline) if isinstance(model, HistGradientBoostingClassifier)
    ]


def install(pipeline: Pipeline) -> Pipeline:
    """Install :class:`CategoryRemap` on every boosting model in ``pipeline`` (in place).

    Only for pipelines loaded to score: a pipeline with the remap installed is not one the
    serializer accepts (the remap is not on its reviewed list of types), by design.
    """
    for model in gradient_boosting_models(pipeline):
        current = getattr(model, "_preprocessor", None)
        if isinstance(current, ColumnTransformer) and "encoder" in current.named_transformers_:
            model._preprocessor = CategoryRemap(current)
    return pipeline
