"""Per-row reasons: which inputs pushed this row's probability up the most.

For gradient-boosted trees the contributions are exact path-dependent SHAP values (the
same definition as SHAP's tree explainer), computed here because SHAP's explainer does
not follow scikit-learn's native categorical splits. The value function of one tree is
a sum over its leaves of ``leaf value x product over the path``, each factor being the
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

import weakref
from dataclasses import dataclass
from math import factorial

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from crm_modes.data.schema import SCHEMA
from crm_modes.features.categorical import OTHER
from crm_modes.features.domain import DOMAIN_FEATURES
from crm_modes.features.numeric import MISSING_SUFFIX
from crm_modes.models.estimators import fitted_estimators
from crm_modes.models.lightgbm_model import LightGBMClassifier

NO_UPWARD_DRIVER = (
    "no input raises it above the book's typical level; the alert threshold is low for this row"
)
_DESCRIPTIONS = {column.name: column.description for column in SCHEMA} | {
    name: feature.description for name, feature in DOMAIN_FEATURES.items()
}


def base_estimator(pipeline: Pipeline) -> object:
    """The fitted estimator inside a (possibly calibrated) model pipeline (the first fold's)."""
    return fitted_estimators(pipeline)[0]


def source_column(output_name: str) -> str:
    """The input column (or domain feature) an output column of the feature pipeline comes from."""
    return output_name.split("=")[0].removesuffix(MISSING_SUFFIX)


def contributions(
    pipeline: Pipeline, rows: pd.DataFrame, *, matrix: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Raw-score contribution of each source column, one row per input row.

    ``matrix``: the rows' feature matrix when the caller has it already.

    Raises:
        TypeError: the model is neither gradient-boosted trees (scikit-learn's or LightGBM's)
            nor a logistic regression.
    """
    if matrix is None:
        matrix = pipeline["features"].transform(rows)
    estimator = base_estimator(pipeline)
    names = list(matrix.columns)
    if isinstance(estimator, LightGBMClassifier):  # the library's own tree SHAP, without the bias column
        values = estimator.contributions(matrix)[:, :-1]
    elif isinstance(estimator, HistGradientBoostingClassifier):
        internal, names = internal_matrix(estimator, matrix)
        values = tree_contributions(estimator, internal)
    elif isinstance(estimator, LogisticRegression):
        values = matrix.to_numpy(dtype=np.float64) * estimator.coef_[0]
    else:
        raise TypeError(f"no exact contributions for {type(estimator).__name__}")
    per_output = pd.DataFrame(values, columns=names, index=rows.index)
    return per_output.T.groupby(per_output.columns.map(source_column), sort=False).sum().T


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
    pipeline: Pipeline, rows: pd.DataFrame, top: int, *, matrix: pd.DataFrame | None = None
) -> list[str]:
    """For each row, its ``top`` inputs that pushed the score up the most, in words.

    ``matrix``: the rows' feature matrix when the caller has it already.
    """
    if rows.empty:
        return []
    pushed = contributions(pipeline, rows, matrix=matrix)
    names = list(pushed.columns)
    values = pushed.to_numpy()
    ranked = np.argsort(-values, axis=1, kind="stable")[:, :top]
    originals = {name: rows[name].to_numpy(dtype=object) if name in rows else None for name in names}
    reasons = []
    for position, order in enumerate(ranked):
        chosen = [names[j] for j in order if values[position, j] > 0]
        text = "; ".join(
            describe(name, None if originals[name] is None else originals[name][position]) for name in chosen
        )
        reasons.append(text or NO_UPWARD_DRIVER)
    return reasons
