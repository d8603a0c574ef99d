"""Everything that reads scikit-learn's fitted internals, in one place, behind one version check.

scikit-learn's public API gives no fast single-record path and no tree contributions, so three
things here read the private attributes of fitted models:

- fast paths, installed on loaded models only, in memory (model files are never changed), each
  handing any input it was not built for to the original, so results and errors read exactly as
  scikit-learn's (tested equal):
  - a fitted ``HistGradientBoostingClassifier`` with categorical features keeps a private
    ``ColumnTransformer`` (an ``OrdinalEncoder`` for the categorical columns, a ``check_array``
    for the others) that it runs on every prediction; on one record that costs more than walking
    all the trees. :class:`CategoryRemap` does the same mapping with a binary search per column;
  - a logistic regression calibrated with a sigmoid (``CalibratedClassifierCV`` over a frozen
    ``LogisticRegression``) validates its input three times per call, a plain one once.
    :class:`LinearLogistic` computes ``1 / (1 + exp(a (X w + c) + b))`` directly, and gives the
    coefficients for the counterfactual's linear product (``features.fast.dot``);
- exact path-dependent tree SHAP values of HistGradientBoosting models (the reasons, read from
  the trees' node arrays, :func:`tree_contributions`);
- the check of HistGradientBoosting trees in a model file before anything walks them
  (:func:`hist_gradient_boosting_problems`).

The fast paths and the tree SHAP values are used only with the releases they were checked
against (:data:`SUPPORTED_SKLEARN`). With any other release the plain path runs: models score
through scikit-learn itself (slower, the same numbers), LightGBM and logistic-regression reasons
are unchanged (they use public APIs), and the reasons of a HistGradientBoosting model say that
they are unavailable and why (the alert itself stands). The tree check runs with every release
and refuses a model whose trees it does not recognise.
"""

from __future__ import annotations

import copy
import logging
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from math import factorial

import numpy as np
import pandas as pd
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from crm_modes.models.class_calibration import IsotonicPerClass
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


class LinearLogistic:
    """``predict_proba`` of a binary logistic regression, plain or sigmoid-calibrated, computed directly.

    Probability of the positive class: ``1 / (1 + exp(a f + b))`` with ``f = X w + c`` the
    logistic model's decision function and ``(a, b)`` the sigmoid calibrator's (``a = -1, b = 0``
    for a plain logistic regression, whose own ``predict_proba`` is ``expit(f)``).
    """

    def __init__(self, original: CalibratedClassifierCV | LogisticRegression) -> None:
        if isinstance(original, LogisticRegression):
            logistic, self.a, self.b = original, -1.0, 0.0
        else:
            (calibrated,) = original.calibrated_classifiers_
            (calibrator,) = calibrated.calibrators
            logistic = getattr(calibrated.estimator, "estimator", calibrated.estimator)
            self.a, self.b = float(calibrator.a_), float(calibrator.b_)
        self.original = original
        self.coef = np.asarray(logistic.coef_, dtype=np.float64).ravel()
        self.intercept = float(np.ravel(logistic.intercept_)[0])
        names = getattr(original, "feature_names_in_", None)
        self.feature_names_in_ = None if names is None else list(names)

    @staticmethod
    def applies_to(model: object) -> bool:
        """A binary logistic regression, alone or sigmoid-calibrated (one frozen copy)."""
        if isinstance(model, LogisticRegression):
            return len(getattr(model, "classes_", ())) == 2 and np.asarray(model.coef_).shape[0] == 1
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
        """The probability of the positive class given ``X w`` (without the intercept)."""
        return 1.0 / (1.0 + np.exp(self.a * (product + self.intercept) + self.b))


#: The direct form of each loaded logistic model (plain or sigmoid-calibrated) it was installed on.
_LINEAR: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def linear_logistic(model: object) -> LinearLogistic | None:
    """The direct form installed on ``model`` (:func:`install`), if any: its ``coef`` and
    :meth:`LinearLogistic.positive` score a linear product computed elsewhere."""
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


def loaded_copy(pipeline: Pipeline) -> Pipeline:
    """A copy of ``pipeline`` that scores as the loaded model does (:func:`install` on a deep
    copy); ``pipeline`` itself is left as it is, so it can still be saved."""
    return install(copy.deepcopy(pipeline))


def install(pipeline: Pipeline) -> Pipeline:
    """Install the fast paths on the models in ``pipeline`` (in place) where they apply.

    Only for pipelines loaded to score: a pipeline with a fast path installed is not one the
    serializer accepts (the fast paths are not on its reviewed list of types), by design.
    With a scikit-learn release outside :data:`SUPPORTED_SKLEARN` nothing is installed.
    """
    if not supported():
        log.warning("%s: scoring through scikit-learn itself", unsupported_message("the fast paths"))
        return pipeline
    model = pipeline["model"]
    if LinearLogistic.applies_to(model):
        direct = _LINEAR[model] = LinearLogistic(model)
        model.predict_proba = direct.predict_proba
        _TAKE_MATRICES.add(model)
    if isinstance(model, IsotonicPerClass) and isinstance(model.estimator, LightGBMClassifier):
        _TAKE_MATRICES.add(model)  # its steps read the probabilities of a model that takes matrices
    for model in gradient_boosting_models(pipeline):
        current = getattr(model, "_preprocessor", None)
        if isinstance(current, ColumnTransformer) and "encoder" in current.named_transformers_:
            model._preprocessor = CategoryRemap(current)
    return pipeline


# --- HistGradientBoosting's fitted trees: exact tree SHAP (models/reasons.py) ---------------


def internal_matrix(
    model: HistGradientBoostingClassifier, matrix: pd.DataFrame
) -> tuple[np.ndarray, list[str]]:
    """The matrix the trees split on, and its column names.

    With categorical features the classifier re-encodes them and moves them first; the
    trees' feature indices refer to that order.
    """
    if model._preprocessor is None:
        return matrix.to_numpy(dtype=np.float64), list(matrix.columns)
    inputs = np.asarray(matrix.columns, dtype=object)
    names = [
        str(name)
        for step, _, columns in model._preprocessor.transformers_
        if step != "remainder"
        for name in inputs[columns]
    ]
    return np.asarray(model._preprocessor.transform(matrix), dtype=np.float64), names


def tree_contributions(model: HistGradientBoostingClassifier, X: np.ndarray) -> np.ndarray:
    """Exact path-dependent SHAP values of a binary HistGradientBoostingClassifier's raw score."""
    return _explainer(model).shap_values(X)


#: Trees with at most this many splits get a lookup table of 2**splits rows.
MAX_TABLE_SPLITS = 10


@dataclass(frozen=True)
class _Tree:
    """One tree, ready to explain: its split nodes and, for small trees, a lookup table.

    A row's SHAP values in a tree depend on the row only through the side it takes at
    every split node. For a tree with ``k`` splits there are ``2**k`` such routings, so
    the values of each are computed once (``table``, one row per routing, one column per
    feature the tree uses) and a row's values are a lookup by its routing bits.
    """

    predictor: object
    splits: np.ndarray
    features: np.ndarray
    table: np.ndarray | None

    @classmethod
    def build(cls, predictor: object, n_features: int) -> _Tree:
        nodes = predictor.nodes
        splits = np.flatnonzero(~nodes["is_leaf"].astype(bool))
        features = np.unique(nodes["feature_idx"][splits]).astype(np.intp)
        table = None
        if len(splits) <= MAX_TABLE_SPLITS:
            patterns = np.arange(2 ** len(splits))
            routing = {int(split): ((patterns >> bit) & 1).astype(bool) for bit, split in enumerate(splits)}
            phi = np.zeros((len(patterns), n_features))
            for value, path in _leaf_paths(nodes):
                _add_leaf(phi, value, path, routing, nodes)
            table = phi[:, features]
        return cls(predictor, splits, features, table)


class _Explainer:
    """Exact path-dependent SHAP values of one binary classifier, tree by tree."""

    def __init__(self, model: HistGradientBoostingClassifier) -> None:
        if model.n_trees_per_iteration_ != 1:
            raise ValueError("tree contributions are implemented for binary classifiers")
        self.known_bitsets, self.feature_map = model._bin_mapper.make_known_categories_bitsets()
        self.trees = [_Tree.build(predictor, model.n_features_in_) for (predictor,) in model._predictors]

    def shap_values(self, X: np.ndarray) -> np.ndarray:
        phi = np.zeros_like(X, dtype=np.float64)
        for tree in self.trees:
            nodes = tree.predictor.nodes
            left = _routing(
                nodes, tree.predictor.raw_left_cat_bitsets, self.known_bitsets, self.feature_map, X
            )
            if tree.table is None:
                for value, path in _leaf_paths(nodes):
                    _add_leaf(phi, value, path, left, nodes)
                continue
            pattern = np.zeros(len(X), dtype=np.intp)
            for bit, split in enumerate(tree.splits):
                pattern |= left[int(split)].astype(np.intp) << bit
            phi[:, tree.features] += tree.table[pattern]
        return phi


_EXPLAINERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _explainer(model: HistGradientBoostingClassifier) -> _Explainer:
    """The model's explainer, built on first use and kept as long as the model lives."""
    explainer = _EXPLAINERS.get(model)
    if explainer is None:
        explainer = _EXPLAINERS[model] = _Explainer(model)
    return explainer


def expected_raw_score(model: HistGradientBoostingClassifier) -> float:
    """The raw score the contributions start from: baseline plus each tree's cover-weighted mean."""
    total = float(np.ravel(model._baseline_prediction)[0])
    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        leaves = nodes["is_leaf"].astype(bool)
        total += float((nodes["value"][leaves] * nodes["count"][leaves]).sum() / nodes["count"][0])
    return total


def _bit(bitsets: np.ndarray, row: int, values: np.ndarray) -> np.ndarray:
    values = values.astype(np.int64) & 0xFF
    return ((bitsets[row][values // 32] >> (values % 32).astype(np.uint32)) & 1).astype(bool)


def _routing(
    nodes: np.ndarray,
    raw_bitsets: np.ndarray,
    known_bitsets: np.ndarray,
    feature_map: np.ndarray,
    X: np.ndarray,
) -> dict[int, np.ndarray]:
    """For every split node, whether each row goes left (as scikit-learn's predictor routes it)."""
    routing = {}
    for index in np.flatnonzero(~nodes["is_leaf"].astype(bool)):
        node = nodes[index]
        x = X[:, node["feature_idx"]]
        missing = np.isnan(x)
        missing_left = bool(node["missing_go_to_left"])
        if node["is_categorical"]:
            invalid = missing | (x < 0)
            codes = np.where(invalid, 0, x)
            in_left = _bit(raw_bitsets, node["bitset_idx"], codes)
            known = _bit(known_bitsets, feature_map[node["feature_idx"]], codes)
            goes_left = np.where(invalid | (~in_left & ~known), missing_left, in_left)
        else:
            goes_left = np.where(missing, missing_left, x <= node["num_threshold"])
        routing[int(index)] = goes_left
    return routing


def _leaf_paths(nodes: np.ndarray) -> list[tuple[float, tuple]]:
    """Each leaf's value and path ``[(node, went_left, cover ratio), ...]``."""
    paths = []
    stack = [(0, ())]
    while stack:
        index, path = stack.pop()
        node = nodes[index]
        if node["is_leaf"]:
            paths.append((float(node["value"]), path))
            continue
        for child, went_left in ((int(node["left"]), True), (int(node["right"]), False)):
            ratio = float(nodes[child]["count"]) / float(node["count"])
            stack.append((child, (*path, (index, went_left, ratio))))
    return paths


def _weight(size: int, players: int) -> float:
    return factorial(size) * factorial(players - size - 1) / factorial(players)


def _add_leaf(phi: np.ndarray, value: float, path: tuple, routing: dict, nodes: np.ndarray) -> None:
    """Shapley values of the product game ``value x prod_f (a_f if f known else b_f)`` of one leaf."""
    known_factor: dict[int, np.ndarray] = {}
    cover_factor: dict[int, float] = {}
    for index, went_left, ratio in path:
        feature = int(nodes[index]["feature_idx"])
        follows = routing[index] if went_left else ~routing[index]
        known_factor[feature] = known_factor.get(feature, True) & follows
        cover_factor[feature] = cover_factor.get(feature, 1.0) * ratio
    features = list(known_factor)
    players = len(features)
    for feature in features:
        # Coefficient k of prod_{others} (b + a t) sums the products over coalitions of size k.
        coefficients = [np.ones(phi.shape[0])]
        for other in features:
            if other == feature:
                continue
            a, b = known_factor[other], cover_factor[other]
            grown = [coefficient * b for coefficient in coefficients] + [np.zeros(phi.shape[0])]
            for size, coefficient in enumerate(coefficients):
                grown[size + 1] = grown[size + 1] + coefficient * a
            coefficients = grown
        total = sum(_weight(size, players) * coefficient for size, coefficient in enumerate(coefficients))
        phi[:, feature] += value * total * (known_factor[feature] - cover_factor[feature])


def hist_gradient_boosting_problems(estimator: HistGradientBoostingClassifier) -> Iterator[str]:
    """Problems in a loaded HistGradientBoosting model's trees that prediction would not survive
    (see :func:`crm_modes.models.serialization.load_pipeline`).

    The check reads the trees' node arrays; it runs whatever the scikit-learn release, and a
    model whose trees are not laid out as it expects is refused, never passed unchecked.
    """
    try:
        yield from _tree_problems(estimator)
    except (AttributeError, KeyError, ValueError, TypeError) as error:
        release = sklearn.__version__
        yield f"its trees are not laid out as this check knows (scikit-learn {release}): {error!r}"


def _tree_problems(estimator: HistGradientBoostingClassifier) -> Iterator[str]:
    for iteration, predictors in enumerate(estimator._predictors):
        for predictor in predictors:
            nodes = predictor.nodes
            splits = np.flatnonzero(~nodes["is_leaf"].astype(bool))
            size, where = len(nodes), f"tree {iteration}"
            for child in ("left", "right"):
                if not ((nodes[child][splits] > splits) & (nodes[child][splits] < size)).all():
                    yield f"{where}: a {child} child points outside the tree or backwards"
            if not (nodes["feature_idx"][splits] < estimator.n_features_in_).all():
                yield f"{where}: a split reads a feature the model does not have"
            categorical = splits[nodes["is_categorical"][splits].astype(bool)]
            if not (nodes["bitset_idx"][categorical] < len(predictor.raw_left_cat_bitsets)).all():
                yield f"{where}: a categorical split points at a missing category set"


def unsupported_message(what: str) -> str:
    """Why ``what`` is off with the scikit-learn release installed."""
    low, high = SUPPORTED_SKLEARN
    return (
        f"{what} read scikit-learn's fitted internals, checked against releases "
        f"{low[0]}.{low[1]} to {high[0]}.{high[1] - 1}; scikit-learn {sklearn.__version__} is installed"
    )
