"""Permutation importance of each input column, each shuffled copy scored as the loaded model scores.

The algorithm is scikit-learn's :func:`~sklearn.inspection.permutation_importance` with
``random_state=0``: the same seed for every column, ``repeats`` shuffles of one index array in
turn, each applied to the column as the last shuffle left it; importance is the baseline score
minus the mean shuffled score (tested equal to scikit-learn's figures on the pipeline itself).
What differs is the scoring. scikit-learn copies the table per column and sends every copy
through ``Pipeline`` and ``ColumnTransformer``, whose bookkeeping costs more than the arithmetic.
Here the rows are read once (:class:`~crm_modes.features.columns.Columns`), a shuffled copy
replaces one column and shares the rest, and the copy is scored through the fast paths the
loaded model uses (:meth:`~crm_modes.models.advisor.Advisor.as_loaded`): a logistic model by
its linear product, in which only the shuffled column's terms are computed again
(:func:`~crm_modes.models.advisor.linear_positive`); any other model on its feature matrix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from crm_modes.features import fast
from crm_modes.features.columns import Columns
from crm_modes.models import sklearn_adapter
from crm_modes.models.advisor import linear_positive

#: Evaluation rows the importance is measured on (a fixed sample).
IMPORTANCE_ROWS = 4_000
SCORINGS = ("roc_auc", "accuracy")


def permutation_scores(
    pipeline: Pipeline, rows: pd.DataFrame, y: np.ndarray, *, scoring: str, repeats: int = 2
) -> dict[str, float]:
    """Mean drop in ``scoring`` (``roc_auc`` of a binary model, ``accuracy``) when each input
    column of ``pipeline`` is shuffled, on ``rows``; the pipeline is left as it is.

    Returns:
        Input column -> importance; all zero when ``y`` holds one class (nothing to score).
    """
    if scoring not in SCORINGS:
        raise ValueError(f"scoring {scoring!r}: use one of {SCORINGS}")
    inputs = list(pipeline["features"]["entrance"].feature_names_in_)
    if len(np.unique(y)) < 2:
        return dict.fromkeys(inputs, 0.0)
    loaded = sklearn_adapter.loaded_copy(pipeline)
    frame = rows[inputs].reset_index(drop=True)
    original = Columns(frame)

    def score(columns: Columns) -> float:
        probabilities = _probabilities(loaded, columns)
        if scoring == "roc_auc":
            return float(roc_auc_score(y, probabilities[:, 1]))
        return float(np.mean(loaded.classes_[probabilities.argmax(axis=1)] == y))  # accuracy

    baseline = score(original)
    seed = np.random.RandomState(0).randint(np.iinfo(np.int32).max + 1)  # as scikit-learn draws it
    importances = {}
    for name in inputs:
        shuffle = np.random.RandomState(seed)
        order = np.arange(len(frame))
        column = frame[name]
        drops = []
        for _ in range(repeats):
            shuffle.shuffle(order)
            column = column.take(order)
            drops.append(baseline - score(original.replaced(**{name: column})))
        importances[name] = float(np.mean(drops))
    return importances


def _probabilities(pipeline: Pipeline, rows: Columns) -> np.ndarray:
    """``pipeline.predict_proba`` of ``rows``, through the fast paths installed on it."""
    positive = linear_positive(pipeline, rows)
    if positive is not None:
        return np.column_stack([1.0 - positive, positive])
    features = pipeline["features"]
    return sklearn_adapter.predict_proba(
        pipeline["model"], fast.matrix(features, rows), fast.feature_names(features)
    )
