"""Exact, faster stand-ins for per-call overheads of fitted scikit-learn models at scoring time.

- A fitted ``HistGradientBoostingClassifier`` with categorical features keeps a private
  ``ColumnTransformer`` (an ``OrdinalEncoder`` for the categorical columns, a
  ``check_array`` for the others) that it runs on every prediction. On one record that
  costs more than walking all the trees. :class:`CategoryRemap` does the same mapping with
  a binary search per categorical column.
- A logistic regression calibrated with a sigmoid (``CalibratedClassifierCV`` over a frozen
  ``LogisticRegression``) validates its input three times per call (the calibrated model,
  the logistic model, the calibrator): several milliseconds for one record against
  microseconds for the arithmetic. :class:`CalibratedLogistic` computes
  ``1 / (1 + exp(a (X w + c) + b))`` directly.

Both are installed on loaded models only, in memory (model files are never changed), and
hand any input they were not built for to the original, so results and errors read exactly
as scikit-learn's (tested equal). They read scikit-learn's fitted internals, which is why
they are installed only for the versions they were checked against
(:data:`SUPPORTED_SKLEARN`); with any other version the models score through scikit-learn
itself, slower and the same.
"""

from __future__ import annotations

import logging
import weakref

import numpy as np
import pandas as pd
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from crm_modes.models.estimators import fitted_estimators
from crm_modes.models.lightgbm_model import LightGBMClassifier

log = logging.getLogger(__name__)

#: scikit-learn releases whose fitted internals the fast paths were checked against: [low, high).
SUPPORTED_SKLEARN = ((1, 7), (1, 10))


def supported(version: str | None = None) -> bool:
    """Whether the fast paths may be installed with scikit-learn ``version`` (default: the one imported)."""
    version = sklearn.__version__ if version is None else version
    try:
        release = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:  # a development build such as 1.10.dev0 still parses; anything else does not
        return False
    low, high = SUPPORTED_SKLEARN
    return low <= release < high


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
        values = _float_matrix(X, self.feature_names_in_, self.n_features_in_)
        if values is None:
            return self.original.transform(X)
        out = np.empty_like(values)
        for position, (column, known) in enumerate(zip(self.categorical, self.categories, strict=True)):
            out[:, position] = _positions(values[:, column], known)
        out[:, len(self.categorical) :] = values[:, self.numeric]
        return out


def _float_matrix(X: pd.DataFrame | np.ndarray, names: list[str] | None, width: int) -> np.ndarray | None:
    """``X`` as a float64 matrix when it is exactly what the fitted model was built for
    (same column names in order, ``width`` numeric columns, at least one row); ``None``
    otherwise, so that the caller hands ``X`` to the original model."""
    if isinstance(X, pd.DataFrame):
        if names is not None and list(X.columns) != names:
            return None
        try:
            values = X.to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            return None
    else:
        values = np.asarray(X)
        if values.dtype.kind not in "biuf":
            return None
        values = values.astype(np.float64, copy=False)
    if values.ndim != 2 or values.shape[1] != width or len(values) == 0:
        return None
    return values


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


class CalibratedLogistic:
    """``predict_proba`` of a sigmoid-calibrated binary logistic regression, computed directly.

    Calibrated probability of the positive class: ``1 / (1 + exp(a f + b))`` with
    ``f = X w + c`` the logistic model's decision function and ``(a, b)`` the calibrator's.
    """

    def __init__(self, original: CalibratedClassifierCV) -> None:
        (calibrated,) = original.calibrated_classifiers_
        (calibrator,) = calibrated.calibrators
        logistic = getattr(calibrated.estimator, "estimator", calibrated.estimator)
        self.original = original
        self.coef = np.asarray(logistic.coef_, dtype=np.float64).ravel()
        self.intercept = float(np.ravel(logistic.intercept_)[0])
        self.a, self.b = float(calibrator.a_), float(calibrator.b_)
        names = getattr(original, "feature_names_in_", None)
        self.feature_names_in_ = None if names is None else list(names)

    @staticmethod
    def applies_to(model: object) -> bool:
        """A binary sigmoid-calibrated model over one frozen logistic regression."""
        if not isinstance(model, CalibratedClassifierCV) or model.method != "sigmoid":
            return False
        calibrated = getattr(model, "calibrated_classifiers_", [])
        if len(calibrated) != 1 or len(getattr(model, "classes_", ())) != 2:
            return False
        inner = getattr(calibrated[0].estimator, "estimator", calibrated[0].estimator)
        calibrators = calibrated[0].calibrators
        return (
            isinstance(inner, LogisticRegression)
            and len(calibrators) == 1
            and hasattr(calibrators[0], "a_")
            and hasattr(calibrators[0], "b_")
        )

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        values = _float_matrix(X, self.feature_names_in_, self.coef.shape[0])
        if values is None or not np.isfinite(values).all():
            return self.original.predict_proba(X)  # scikit-learn's own result, or its own error
        positive = self.positive(values @ self.coef)
        return np.column_stack([1.0 - positive, positive])

    def positive(self, product: np.ndarray) -> np.ndarray:
        """The calibrated probability of the positive class given ``X w`` (without the intercept)."""
        return 1.0 / (1.0 + np.exp(self.a * (product + self.intercept) + self.b))


#: The direct form of each loaded sigmoid-calibrated logistic model it was installed on.
_LINEAR: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def calibrated_logistic(model: object) -> CalibratedLogistic | None:
    """The direct form installed on ``model`` (:func:`install`), if any: its ``coef`` and
    :meth:`CalibratedLogistic.positive` score a linear product computed elsewhere."""
    try:
        return _LINEAR.get(model)
    except TypeError:  # not weakly referenceable: nothing was installed on it
        return None


#: Loaded models whose ``predict_proba`` takes a plain float64 matrix (a fast path is installed).
_TAKE_MATRICES: weakref.WeakSet = weakref.WeakSet()


def predict_proba(model: object, matrix: np.ndarray, names: pd.Index) -> np.ndarray:
    """``model.predict_proba`` of a feature matrix whose columns are ``names``.

    Models that take the plain matrix get it as it is (LightGBM's estimator, the fast paths);
    any other gets it as a DataFrame with its column names (what it was fitted on), without a copy.
    """
    if isinstance(model, LightGBMClassifier) or model in _TAKE_MATRICES:
        return model.predict_proba(matrix)
    return model.predict_proba(pd.DataFrame(matrix, columns=names, copy=False))


def install(pipeline: Pipeline) -> Pipeline:
    """Install the fast paths on the models in ``pipeline`` (in place) where they apply.

    Only for pipelines loaded to score: a pipeline with a fast path installed is not one the
    serializer accepts (the fast paths are not on its reviewed list of types), by design.
    With a scikit-learn release outside :data:`SUPPORTED_SKLEARN` nothing is installed.
    """
    if not supported():
        log.warning(
            "scikit-learn %s is outside the range the fast paths were checked against %s: "
            "scoring through scikit-learn itself",
            sklearn.__version__,
            SUPPORTED_SKLEARN,
        )
        return pipeline
    model = pipeline["model"]
    if CalibratedLogistic.applies_to(model):
        direct = _LINEAR[model] = CalibratedLogistic(model)
        model.predict_proba = direct.predict_proba
        _TAKE_MATRICES.add(model)
    for model in gradient_boosting_models(pipeline):
        current = getattr(model, "_preprocessor", None)
        if isinstance(current, ColumnTransformer) and "encoder" in current.named_transformers_:
            model._preprocessor = CategoryRemap(current)
    return pipeline
