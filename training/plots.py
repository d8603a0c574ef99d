"""Evaluation plots as PNG files (matplotlib, no display needed).

Figures are made with matplotlib's object interface and saved without pyplot: importing or
using this module never changes the process's matplotlib backend or pyplot's figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

from crm_modes.training.evaluate import Evaluation


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def _figure(width: float, height: float) -> tuple[Figure, object]:
    figure = Figure(figsize=(width, height))
    return figure, figure.add_subplot()


def binary_plots(name: str, evaluation: Evaluation, folder: Path) -> list[Path]:
    """ROC, precision-recall and reliability curves of one binary model."""
    y, p = evaluation.y_true, evaluation.y_score
    paths = []
    figure, axis = _figure(5, 5)
    fpr, tpr, _ = roc_curve(y, p)
    axis.plot(fpr, tpr, label=f"model (AUC {evaluation.metrics['auc']:.3f})")
    axis.plot([0, 1], [0, 1], linestyle=":", color="grey")
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title=f"{name}: ROC")
    axis.legend(loc="lower right")
    paths.append(_save(figure, folder / f"{name}_roc.png"))

    figure, axis = _figure(5, 5)
    precision, recall, _ = precision_recall_curve(y, p)
    axis.plot(recall, precision, label=f"model (PR-AUC {evaluation.metrics['pr_auc']:.3f})")
    axis.axhline(y.mean(), linestyle=":", color="grey", label=f"base rate {y.mean():.3f}")
    axis.set(xlabel="recall", ylabel="precision", title=f"{name}: precision-recall")
    axis.legend(loc="upper right")
    paths.append(_save(figure, folder / f"{name}_precision_recall.png"))

    figure, axis = _figure(5, 5)
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    axis.plot(predicted, observed, marker="o", label=f"model (ECE {evaluation.metrics['ece']:.4f})")
    top = max(predicted.max(), observed.max()) * 1.05
    axis.plot([0, top], [0, top], linestyle=":", color="grey", label="perfect calibration")
    axis.set(
        xlabel="mean predicted probability", ylabel="observed rate", title=f"{name}: reliability (deciles)"
    )
    axis.legend(loc="upper left")
    paths.append(_save(figure, folder / f"{name}_reliability.png"))
    return paths


def confusion_plot(name: str, evaluation: Evaluation, folder: Path) -> Path:
    matrix = np.asarray(evaluation.metrics["confusion_matrix"])
    labels = evaluation.labels
    figure, axis = _figure(5, 4.5)
    axis.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        axis.text(column, row, f"{count:,}", ha="center", va="center", color=colour)
    axis.set_xticks(range(len(labels)), labels)
    axis.set_yticks(range(len(labels)), labels)
    axis.set(xlabel="recommended", ylabel="assigned", title=f"{name}: confusion matrix")
    return _save(figure, folder / f"{name}_confusion_matrix.png")


def importance_plot(name: str, importance: dict[str, float], folder: Path, top: int = 15) -> Path:
    ranked = sorted(importance.items(), key=lambda item: item[1], reverse=True)[:top]
    figure, axis = _figure(6, 0.35 * len(ranked) + 1.2)
    axis.barh([name for name, _ in ranked][::-1], [value for _, value in ranked][::-1])
    axis.set(xlabel="drop in score when shuffled", title=f"{name}: permutation importance")
    return _save(figure, folder / f"{name}_feature_importance.png")
