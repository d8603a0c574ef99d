"""Propensity models: the probability the bank's practice gave each mode, ``p(mode | x)``.

Two are fitted, for two different ends, on the same inputs (:func:`propensity_inputs`): the
committee model's features less the readings the mode itself moves (RM contacts and complaints
follow the mode applied, so a model that reads them recognises a facility's mode by them).

- The policy report's (:func:`crm_modes.training.policy_report.cross_fitted_propensity`) is refit
  out of fold by client on the evaluation rows, so each row's probability comes from a model that
  never saw its client.
- The bundle's **recorded propensity** (:func:`fit_recorded_propensity`) scores the book the bundle
  trained on, month after month, and is recorded with every decision (``assigned_propensity``):
  what a bank's own later off-policy evaluation of those decisions divides by. It is fitted on the
  training months with leaves too large to single out a facility, and calibrated per mode by
  isotonic regression on the calibration months, facilities it has seen, as it will score them
  (docs/decisions/025-recorded-propensities.md).
"""

from __future__ import annotations

import pandas as pd
from sklearn.pipeline import Pipeline

from crm_modes.features.config import FeatureConfig
from crm_modes.models.class_calibration import IsotonicPerClass
from crm_modes.training.config import EstimatorConfig, ModelConfig, TrainingConfig
from crm_modes.training.split import Split


def refit_settings(model: ModelConfig, **update: object) -> ModelConfig:
    """``model`` as it is refit for another end: no baseline, no parameter search, ``update``."""
    return model.model_copy(
        update={"baseline": False, "tuning": model.tuning.model_copy(update={"enabled": False}), **update}
    )


def propensity_inputs(
    config: TrainingConfig, estimator: EstimatorConfig
) -> tuple[ModelConfig, FeatureConfig]:
    """The committee model's settings with ``estimator``, and its features less the mode readings."""
    readings = config.advisor.mode_readings if config.advisor is not None else None
    features = config.features.without(readings.inputs if readings is not None else ())
    return refit_settings(config.models["mode"], estimator=estimator), features


def fit_recorded_propensity(config: TrainingConfig, table: pd.DataFrame, split: Split) -> Pipeline | None:
    """The bundle's recorded propensity, from the committee model's rows ``split`` of ``table``
    (None when ``advisor.recorded_propensity`` is null).

    The model is fitted on the training rows and calibrated on the calibration rows (on the training
    rows where a split has none), each mode's probability by isotonic regression and each row
    renormalized (:class:`~crm_modes.models.class_calibration.IsotonicPerClass`).
    """
    from crm_modes.training.fit import fit_model

    estimator = config.advisor.recorded_propensity if config.advisor is not None else None
    if estimator is None:
        return None
    model, features = propensity_inputs(config, estimator)
    fitted = fit_model("propensity", model, features, table[split.train], table.iloc[:0])
    calibration = table[split.calibration] if split.calibration.any() else table[split.train]
    calibrated = IsotonicPerClass(fitted.pipeline["model"]).fit(
        fitted.pipeline["features"].transform(calibration), calibration[model.target].astype(str).to_numpy()
    )
    return Pipeline([("features", fitted.pipeline["features"]), ("model", calibrated)])
