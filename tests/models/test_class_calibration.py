"""Per-class isotonic steps: an overconfident classifier's probabilities put at observed frequencies."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from crm_modes.models.class_calibration import LEAST, IsotonicPerClass, apply_steps, isotonic_steps
from crm_modes.models.serialization import load_pipeline, save_pipeline
from crm_modes.training.off_policy import mode_weights


def _sample(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(size=(n, 3))
    logits = X @ np.array([[1.5, 0.0, -1.0], [0.0, 1.0, 0.5], [-0.5, 0.5, 1.0]])
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = (rng.random(n)[:, None] > truth.cumsum(axis=1)).sum(axis=1)
    return X, np.asarray(["basic", "reactive", "responsible"])[labels]


def test_steps_bring_an_overconfident_classifiers_weights_to_one_on_new_rows(tmp_path):
    rng = np.random.default_rng(3)
    X_fit, y_fit = _sample(rng, 20_000)
    X_cal, y_cal = _sample(rng, 20_000)
    X_new, y_new = _sample(rng, 40_000)
    sharp = LogisticRegression().fit(X_fit, y_fit)
    sharp.coef_ *= 4.0  # an imitator's overconfidence: the rare labels get too little probability
    applied = np.searchsorted(sharp.classes_, y_new)
    before = mode_weights(applied, sharp.predict_proba(X_new), floor=1e-3)
    assert max(before.values()) > 1.5, before

    calibrated = IsotonicPerClass(sharp).fit(X_cal, y_cal)
    probabilities = calibrated.predict_proba(X_new)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert (probabilities >= LEAST / 2).all()
    after = mode_weights(applied, probabilities, floor=1e-3)
    assert all(0.9 <= weight <= 1.1 for weight in after.values()), after
    assert list(calibrated.classes_) == list(sharp.classes_)
    assert (calibrated.predict(X_new) == calibrated.classes_[probabilities.argmax(axis=1)]).all()

    # a model file holds it (a reviewed type), and gives back the same probabilities
    loaded = load_pipeline(save_pipeline(calibrated, tmp_path / "calibrated.skops"))
    np.testing.assert_array_equal(loaded.predict_proba(X_new), probabilities)


def test_a_level_never_seen_with_a_class_keeps_a_little_probability():
    probability = np.array([0.1, 0.2, 0.8, 0.9])
    steps = [
        isotonic_steps(probability, np.array([0.0, 0.0, 1.0, 1.0])),
        isotonic_steps(probability, np.zeros(4)),  # the second class never observed
    ]
    calibrated = apply_steps(np.column_stack([probability, 1 - probability]), steps)
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    assert calibrated[3, 1] == LEAST / (1.0 + LEAST)  # small, never zero: its weight stays finite
    np.testing.assert_allclose(calibrated[0], [0.5, 0.5])  # no class observed at this level: even shares
