import numpy as np
import pytest

from crm_modes.training.metrics import (
    binary_metrics,
    expected_calibration_error,
    ks_statistic,
    multiclass_metrics,
)


def test_ece_is_zero_for_perfectly_calibrated_bins_and_grows_with_bias():
    p = np.repeat([0.1, 0.5], 1000)
    y = np.concatenate([np.r_[np.ones(100), np.zeros(900)], np.r_[np.ones(500), np.zeros(500)]])
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(0.0)
    assert expected_calibration_error(y, p + 0.05, bins=2) == pytest.approx(0.05)


def test_ks_of_separated_and_random_scores():
    y = np.r_[np.zeros(50), np.ones(50)]
    assert ks_statistic(y, np.r_[np.zeros(50), np.ones(50)]) == pytest.approx(1.0)
    assert ks_statistic(y, np.full(100, 0.3)) == pytest.approx(0.0)


def test_binary_metrics_need_both_classes():
    with pytest.raises(ValueError, match="only one class"):
        binary_metrics(np.zeros(10), np.full(10, 0.1))
    metrics = binary_metrics(np.r_[0, 0, 1, 1], np.r_[0.1, 0.2, 0.8, 0.9])
    assert metrics["auc"] == 1.0
    assert set(metrics) >= {"auc", "pr_auc", "brier", "log_loss", "ece", "ks"}


def test_multiclass_metrics_report_per_class_and_confusion():
    y = ["basic", "basic", "reactive", "responsible"]
    predicted = ["basic", "reactive", "reactive", "responsible"]
    metrics = multiclass_metrics(y, predicted, ["basic", "reactive", "responsible"])
    assert metrics["accuracy"] == 0.75
    assert metrics["recall_basic"] == 0.5
    assert metrics["precision_reactive"] == 0.5
    assert metrics["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
