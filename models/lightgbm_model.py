"""LightGBM as a scikit-learn classifier whose fitted state is LightGBM's own text model.

LightGBM's public API gives what the project otherwise computes from scikit-learn's
internals: native categorical splits on the feature pipeline's category codes, native
missing values, and exact tree SHAP contributions (``pred_contrib``). Its scikit-learn
wrapper keeps a ``Booster`` object that only pickling can save, so this estimator keeps the
booster as the text LightGBM writes (``model_to_string``): the skops file holds a string,
never a pickled object, and the booster is parsed from that string on first use after
loading. :func:`text_problems` checks the text against the estimator before LightGBM parses it.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from crm_modes.shared.errors import InputError

#: Parameters a configuration may set, with their defaults (LightGBM's names).
PARAMETERS: dict[str, Any] = {
    "n_estimators": 200,
    "learning_rate": 0.1,
    "num_leaves": 31,
    "max_depth": -1,
    "min_child_samples": 20,
    "reg_lambda": 0.0,
    "cat_l2": 10.0,
    "subsample": 1.0,
    "subsample_freq": 0,
    "colsample_bytree": 1.0,
    "max_bin": 255,
    "max_cat_to_onehot": 4,
    "cat_smooth": 10.0,
    "min_data_per_group": 100,
}


class LightGBMClassifier(ClassifierMixin, BaseEstimator):
    """Gradient-boosted trees by LightGBM (binary or multi-class), saved as LightGBM text.

    Args:
        n_estimators, learning_rate, num_leaves, max_depth, min_child_samples, reg_lambda,
        subsample, subsample_freq, colsample_bytree, max_bin, max_cat_to_onehot, cat_smooth,
        min_data_per_group, cat_l2: LightGBM's parameters of the same name (``n_estimators`` is the
            number of boosting rounds).
        categorical_features: names (or indices) of the input columns holding category codes
            (non-negative integers; NaN or negative is missing).
        n_threads: threads LightGBM uses; ``None``: the process's configured pool size
            (``--threads``, :mod:`crm_modes.shared.threads`).
        random_state: seed of LightGBM's sampling.

    Attributes:
        classes_: the class labels, sorted.
        model_text_: the fitted booster in LightGBM's text model format.
        categorical_indices_: input column indices LightGBM treats as categorical.
    """

    def __init__(
        self,
        n_estimators: int = 200,
        learning_rate: float = 0.1,
        num_leaves: int = 31,
        max_depth: int = -1,
        min_child_samples: int = 20,
        reg_lambda: float = 0.0,
        cat_l2: float = 10.0,
        subsample: float = 1.0,
        subsample_freq: int = 0,
        colsample_bytree: float = 1.0,
        max_bin: int = 255,
        max_cat_to_onehot: int = 4,
        cat_smooth: float = 10.0,
        min_data_per_group: int = 100,
        categorical_features: list[str] | list[int] | None = None,
        n_threads: int | None = None,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.cat_l2 = cat_l2
        self.subsample = subsample
        self.subsample_freq = subsample_freq
        self.colsample_bytree = colsample_bytree
        self.max_bin = max_bin
        self.max_cat_to_onehot = max_cat_to_onehot
        self.cat_smooth = cat_smooth
        self.min_data_per_group = min_data_per_group
        self.categorical_features = categorical_features
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, X: pd.DataFrame | np.ndarray, y: np.ndarray | pd.Series) -> LightGBMClassifier:
        import lightgbm

        matrix, labels = self._matrix(X, y, fitting=True)
        check_classification_targets(labels)
        self.classes_, encoded = np.unique(labels, return_inverse=True)
        if len(self.classes_) < 2:
            raise InputError(
                f"LightGBMClassifier needs two classes or more in y, got 1 class: {self.classes_.tolist()}"
            )
        self.categorical_indices_ = self._categorical_indices(X)
        params = self._lightgbm_params()
        if len(self.classes_) == 2:
            params["objective"] = "binary"
        else:
            params |= {"objective": "multiclass", "num_class": len(self.classes_)}
        data = lightgbm.Dataset(
            matrix,
            label=encoded,
            categorical_feature=self.categorical_indices_ or "auto",
            params={"max_bin": self.max_bin, "verbose": -1},
            free_raw_data=True,
        )
        booster = lightgbm.train(params, data, num_boost_round=self.n_estimators)
        self.model_text_ = booster.model_to_string()
        self._booster = booster
        return self

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        raw = self._predict(X)
        if raw.ndim == 1:
            return np.column_stack([1.0 - raw, raw])
        return raw

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        probabilities = self.predict_proba(X)  # first: it checks that the model is fitted
        return self.classes_[probabilities.argmax(axis=1)]

    def decision_function(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The raw score (log-odds of the positive class; one column per class for multi-class)."""
        return self._predict(X, raw_score=True)

    def contributions(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Exact tree SHAP values of the raw score from LightGBM (``pred_contrib``), binary only.

        Shape ``(n, n_features + 1)``: one column per input feature, then the expected raw
        score; each row sums to its raw score.
        """
        if len(self.classes_) != 2:
            raise TypeError("contributions are defined here for binary models only")
        return self._predict(X, pred_contrib=True)

    def _predict(self, X: pd.DataFrame | np.ndarray, **kind: bool) -> np.ndarray:
        check_is_fitted(self, "model_text_")
        matrix = self._matrix(X)
        return np.asarray(self._booster_object().predict(matrix, num_threads=self._threads(), **kind))

    def _booster_object(self) -> Any:
        booster = getattr(self, "_booster", None)
        if booster is None:
            import lightgbm

            problem = text_problems(self.model_text_, self.n_features_in_, len(self.classes_))
            if problem is not None:
                raise InputError(f"refusing a malformed LightGBM model: {problem}")
            booster = self._booster = lightgbm.Booster(model_str=self.model_text_)
        return booster

    def _matrix(self, X: pd.DataFrame | np.ndarray, y: Any = None, *, fitting: bool = False) -> Any:
        """scikit-learn's own input checks (shape, names, finite or NaN, no sparse input)."""
        if fitting:
            return validate_data(self, X, y, reset=True, dtype=np.float64, ensure_all_finite="allow-nan")
        if (
            isinstance(X, np.ndarray)
            and X.dtype == np.float64
            and X.ndim == 2
            and X.shape[1] == self.n_features_in_
        ):
            return X  # a feature matrix as the scoring path builds it: its checks are done
        return validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")

    def _categorical_indices(self, X: pd.DataFrame | np.ndarray) -> list[int]:
        if not self.categorical_features:
            return []
        if all(isinstance(item, str) for item in self.categorical_features):
            if not isinstance(X, pd.DataFrame):
                raise InputError("categorical_features given by name need X with column names")
            columns = list(X.columns)
            unknown = [name for name in self.categorical_features if name not in columns]
            if unknown:
                raise InputError(f"categorical_features {unknown} are not columns of X")
            return [columns.index(name) for name in self.categorical_features]
        return [int(index) for index in self.categorical_features]

    def _lightgbm_params(self) -> dict[str, Any]:
        params = {name: getattr(self, name) for name in PARAMETERS}
        params.pop("n_estimators")
        return params | {
            "seed": self.random_state,
            "deterministic": True,
            "num_threads": self._threads(),
            "verbose": -1,
        }

    def _threads(self) -> int:
        if self.n_threads is not None:
            return int(self.n_threads)
        from crm_modes.shared.threads import configured_threads

        return configured_threads()

    def __getstate__(self) -> dict[str, Any]:
        # The booster lives in model_text_; the parsed object is rebuilt after loading.
        state = super().__getstate__()
        state.pop("_booster", None)
        return state

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


_HEADER = re.compile(r"\Atree\nversion=v\d+\n")


def text_problems(text: str, n_features: int, n_classes: int) -> str | None:
    """Why ``text`` is not the LightGBM model this estimator wrote, or None.

    Checked before LightGBM's parser sees it: the header, the number of classes and the
    number of features must be the estimator's own.
    """
    if not isinstance(text, str) or not _HEADER.match(text):
        return "it does not start with LightGBM's model header"
    fields = dict(re.findall(r"^(num_class|max_feature_idx)=(-?\d+)$", text[:4096], flags=re.MULTILINE))
    expected_classes = 1 if n_classes == 2 else n_classes
    if fields.get("num_class") != str(expected_classes):
        return f"num_class is {fields.get('num_class')}, the estimator has {n_classes} classes"
    if fields.get("max_feature_idx") != str(n_features - 1):
        return f"max_feature_idx is {fields.get('max_feature_idx')}, the estimator has {n_features} features"
    return None
