"""Per-row reasons: which inputs pushed this row's probability up the most.

For gradient-boosted trees the contributions are exact path-dependent SHAP values (the
same definition as SHAP's tree explainer); for scikit-learn's HistGradientBoosting they are
computed in :mod:`crm_modes.models.sklearn_adapter` (it reads the fitted trees) because SHAP's
explainer does not follow scikit-learn's native categorical splits. The value function of
one tree is a sum over its leaves of ``leaf value x product over the path``, each factor being the
row's own branch indicator when the split feature is "known" and the training cover
ratio when it is not; each leaf term is a product game over the features on its path,
whose Shapley values follow from the coefficients of a polynomial (quadratic in the path
length, so deep trees stay affordable). Contributions add up exactly to the raw
score minus the expected raw score. LightGBM models give the same values from the library
itself (``pred_contrib``). For a logistic regression on standardized features
the contribution is the coefficient times the standardized value (exact SHAP for a
linear model). Calibration is monotonic, so the ranking carries over to probabilities.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from crm_modes.data.schema import SCHEMA
from crm_modes.features import fast
from crm_modes.features.categorical import OTHER
from crm_modes.features.columns import Columns
from crm_modes.features.domain import DOMAIN_FEATURES
from crm_modes.features.numeric import MISSING_SUFFIX
from crm_modes.models import sklearn_adapter
from crm_modes.models.estimators import fitted_estimators
from crm_modes.models.lightgbm_model import LightGBMClassifier

NO_UPWARD_DRIVER = (
    "no input raises it above the book's typical level; the alert threshold is low for this row"
)
_DESCRIPTIONS = {column.name: column.description for column in SCHEMA} | {
    name: feature.description for name, feature in DOMAIN_FEATURES.items()
}


class ReasonsUnavailableError(RuntimeError):
    """The model's contributions cannot be computed with the libraries installed."""


def base_estimator(pipeline: Pipeline) -> object:
    """The fitted estimator inside a (possibly calibrated) model pipeline (the first fold's)."""
    return fitted_estimators(pipeline)[0]


def source_column(output_name: str) -> str:
    """The input column (or domain feature) an output column of the feature pipeline comes from."""
    return output_name.split("=")[0].removesuffix(MISSING_SUFFIX)


def contributions(
    pipeline: Pipeline, rows: pd.DataFrame | Columns, *, matrix: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Raw-score contribution of each source column, one row per input row.

    ``rows``: a DataFrame, or rows already read (:class:`Columns`, e.g. the advisor's with the mode
    applied today set), whose converted columns the feature matrix reuses.
    ``matrix``: the rows' feature matrix when the caller has it already.

    Raises:
        TypeError: the model is neither gradient-boosted trees (scikit-learn's or LightGBM's)
            nor a logistic regression.
    """
    rows = Columns.of(rows)
    if matrix is None:  # the same matrix as the pipeline's own transform, without its per-call overhead
        matrix = fast.transform(pipeline["features"], rows)
    estimator = base_estimator(pipeline)
    names = list(matrix.columns)
    if isinstance(estimator, LightGBMClassifier):  # the library's own tree SHAP, without the bias column
        values = estimator.contributions(matrix)[:, :-1]
    elif isinstance(estimator, HistGradientBoostingClassifier):
        if not sklearn_adapter.supported():
            raise ReasonsUnavailableError(
                sklearn_adapter.unsupported_message("tree reasons of HistGradientBoosting")
            )
        internal, names = sklearn_adapter.internal_matrix(estimator, matrix)
        values = sklearn_adapter.tree_contributions(estimator, internal)
    elif isinstance(estimator, LogisticRegression):
        values = matrix.to_numpy(dtype=np.float64) * estimator.coef_[0]
    else:
        raise TypeError(f"no exact contributions for {type(estimator).__name__}")
    sources, order, starts = _sources(tuple(names))
    grouped = np.add.reduceat(values[:, order], starts, axis=1) if len(names) else values
    return pd.DataFrame(grouped, columns=sources, index=rows.frame.index, copy=False)


@functools.lru_cache(maxsize=64)
def _sources(names: tuple[str, ...]) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """The source columns of the output columns ``names`` (:func:`source_column`), in order of first
    appearance; the order that puts each source's columns together (stable), and where each
    source's run starts in it: the grouped sums of a contribution matrix are one ``reduceat``,
    each row's sums computed from that row alone (the same whatever the other rows)."""
    owners = [source_column(name) for name in names]
    sources = list(dict.fromkeys(owners))
    position = {source: index for index, source in enumerate(sources)}
    group = np.fromiter((position[owner] for owner in owners), dtype=np.intp, count=len(owners))
    order = np.argsort(group, kind="stable")
    starts = np.flatnonzero(np.diff(group[order], prepend=-1))
    return pd.Index(sources, dtype=object), order, starts


def describe(column: str, value: object) -> str:
    """One reason in words a relationship manager understands."""
    text = _DESCRIPTIONS.get(column, column.replace("_", " "))
    if column in DOMAIN_FEATURES or value is None or (isinstance(value, float) and np.isnan(value)):
        return text
    if isinstance(value, float | np.floating):
        value = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    if value == OTHER:
        value = "unusual value"
    return f"{text}: {value}"


def top_reasons(
    pipeline: Pipeline, rows: pd.DataFrame | Columns, top: int, *, matrix: pd.DataFrame | None = None
) -> list[str]:
    """For each row, its ``top`` inputs that pushed the score up the most, in words.

    ``rows``: as :func:`contributions` takes them. ``matrix``: the rows' feature matrix when the
    caller has it already.
    """
    rows = Columns.of(rows)  # read once, for the matrix and the values the reasons quote
    if len(rows) == 0:
        return []
    try:
        pushed = contributions(pipeline, rows, matrix=matrix)
    except ReasonsUnavailableError as unavailable:  # the alert stands; its reasons say why they are missing
        return [f"reasons unavailable: {unavailable}"] * len(rows)
    names = list(pushed.columns)
    values = pushed.to_numpy()
    ranked = np.argsort(-values, axis=1, kind="stable")[:, :top]
    chosen = [[names[j] for j in order if values[position, j] > 0] for position, order in enumerate(ranked)]
    shown = {name for row in chosen for name in row}  # only the inputs some reason names are read
    originals = {name: rows.objects(name) for name in shown if name in rows}
    reasons = []
    for position, row in enumerate(chosen):
        text = "; ".join(
            describe(name, originals[name][position] if name in originals else None) for name in row
        )
        reasons.append(text or NO_UPWARD_DRIVER)
    return reasons
