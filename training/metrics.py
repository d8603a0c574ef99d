"""Evaluation metrics (pure functions of labels and predictions)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from crm_modes.shared.errors import InputError

ECE_BINS = 10


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error over equal-frequency bins of the predicted probability.

    ``sum_b (n_b / n) |mean(p in b) - mean(y in b)|``. Equal-frequency bins keep the
    measure meaningful for rare events such as defaults, where equal-width bins would
    put nearly every row into the first bin.
    """
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    error = 0.0
    for chunk in np.array_split(order, bins):
        if chunk.size:
            error += chunk.size * abs(p[chunk].mean() - y[chunk].mean())
    return float(error / len(y))


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov-Smirnov statistic: the largest gap between the TPR and FPR curves."""
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, PR-AUC, Brier score, log loss, ECE, KS, and the base and mean predicted rates."""
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    if len(np.unique(y)) < 2:
        raise InputError("evaluation rows hold only one class; AUC is undefined")
    return {
        "auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
        "ks": ks_statistic(y, p),
        "base_rate": float(y.mean()),
        "mean_prediction": float(p.mean()),
    }


def multiclass_metrics(
    y: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> dict[str, object]:
    """Accuracy, macro-F1, per-class precision and recall, and the confusion matrix."""
    precision, recall, _, support = precision_recall_fscore_support(
        y, predicted, labels=list(labels), zero_division=0
    )
    metrics: dict[str, object] = {
        "accuracy": float(accuracy_score(y, predicted)),
        "macro_f1": float(f1_score(y, predicted, labels=list(labels), average="macro", zero_division=0)),
        "confusion_matrix": confusion_matrix(y, predicted, labels=list(labels)).tolist(),
        "labels": list(labels),
    }
    for label, p, r, n in zip(labels, precision, recall, support, strict=True):
        metrics[f"precision_{label}"] = float(p)
        metrics[f"recall_{label}"] = float(r)
        metrics[f"support_{label}"] = int(n)
    return metrics


def scalar_metrics(metrics: dict[str, object]) -> dict[str, float]:
    """The numeric entries of a metrics dict (what MLflow can log as metrics)."""
    return {key: float(value) for key, value in metrics.items() if isinstance(value, int | float)}
