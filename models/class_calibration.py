"""A classifier's probabilities recalibrated class by class with isotonic steps, then renormalized.

A model that imitates a rarely broken rule is overconfident about the few rows that break it:
their probabilities come out too small, and every inverse-propensity weight built on them too
large. Isotonic regression of ``1[class = k]`` on the probability of ``k`` puts each probability
level at the frequency observed at that level. The steps are fitted on the probabilities, not on
the model's raw scores: a softmax couples the classes, so the probability of one class is not a
monotone function of its own raw score alone.

Pure functions on arrays (:func:`isotonic_steps`, :func:`apply_steps`), shared by the off-policy
report's out-of-fold calibration, and :class:`IsotonicPerClass`, the same steps around a fitted
classifier as one estimator that a model file can hold (its state: the classifier and arrays).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression

#: The least probability a calibrated class keeps: a level never observed with a class is not
#: declared impossible (an inverse weight must stay finite).
LEAST = 1e-6


def isotonic_steps(probability: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The isotonic fit of ``observed`` (0/1) on ``probability``: its thresholds and their levels,
    between which :func:`apply_steps` interpolates linearly (clipped beyond, as scikit-learn does)."""
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(probability, observed)
    return isotonic.X_thresholds_.astype(np.float64), isotonic.y_thresholds_.astype(np.float64)


def apply_steps(probabilities: np.ndarray, steps: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """``probabilities`` (rows, classes) through each class's steps, kept at :data:`LEAST` or above
    and renormalized so each row sums to one."""
    calibrated = np.column_stack([np.interp(probabilities[:, k], x, y) for k, (x, y) in enumerate(steps)])
    calibrated = np.maximum(calibrated, LEAST)
    return calibrated / calibrated.sum(axis=1, keepdims=True)


class IsotonicPerClass(ClassifierMixin, BaseEstimator):
    """A fitted classifier with its probabilities recalibrated per class (see the module).

    ``fit`` leaves ``estimator`` as it is (fitted before) and learns the steps on the rows given,
    which should be rows the estimator did not train on.

    Parameters:
        estimator: a fitted classifier with ``predict_proba`` and ``classes_``.
    """

    def __init__(self, estimator: object = None) -> None:
        self.estimator = estimator

    def fit(self, X: object, y: np.ndarray) -> IsotonicPerClass:
        self.classes_ = np.asarray(self.estimator.classes_)
        probabilities = self.estimator.predict_proba(X)
        labels = np.asarray(y)
        steps = [
            isotonic_steps(probabilities[:, k], (labels == c).astype(float))
            for k, c in enumerate(self.classes_)
        ]
        self.thresholds_ = [x for x, _ in steps]
        self.levels_ = [level for _, level in steps]
        return self

    def predict_proba(self, X: object) -> np.ndarray:
        return apply_steps(
            self.estimator.predict_proba(X), list(zip(self.thresholds_, self.levels_, strict=True))
        )

    def predict(self, X: object) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
