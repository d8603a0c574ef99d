"""The training configuration, parsed once from YAML into frozen, typed objects.

Paths inside a configuration are relative to the configuration file. ``${VAR}`` and
``${VAR:-default}`` in paths are read from the environment, so a configuration can find a
table through, for example, ``${CRM_MODES_DATASETS:-../shared/datasets}``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from crm_modes.data.errors import InputError
from crm_modes.data.generator import HISTORY_MONTHS
from crm_modes.features.config import FeatureConfig, load_feature_config

ModelKind = Literal["binary", "multiclass"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Frozen):
    """Where the table comes from: a generated synthetic book, or a CSV/Parquet file."""

    generate_rows: int | None = Field(default=None, ge=1)
    seed: int = 42
    #: Months of snapshots in a generated book (more than the 12-month label horizon).
    history_months: int = Field(default=HISTORY_MONTHS, gt=12)
    path: str | None = None
    #: The table follows the project's schema and goes through the validation gate.
    schema_table: bool = True
    #: A table of one's own: its reviewed profile (``crm-modes profile``), the declarations every
    #: row is checked against. Without one, the table is profiled from itself (only rows whose
    #: numbers do not parse are caught), and a warning says so.
    profile: str | None = None
    #: Where rows that break the profile (or the schema) are written, with their reasons
    #: (default: ``<table>.quarantine.csv`` in the working directory).
    quarantine: str | None = None
    #: More quarantined rows than this share stops the job: a wrong file is not "cleaned" into nothing.
    max_quarantined_share: float = Field(default=0.05, ge=0, le=1)

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if (self.generate_rows is None) == (self.path is None):
            raise ValueError("set exactly one of data.generate_rows and data.path")
        return self


class SplitConfig(_Frozen):
    """How rows are split into train, calibration and evaluation.

    ``out_of_time``: evaluation is the last ``evaluation_months`` months whose labels are
    known; training and calibration rows end ``horizon_months`` before the evaluation
    starts, so no training label looks into the evaluation period; calibration is the
    last ``calibration_months`` of those. ``holdout_column``: a boolean column marks the
    evaluation rows; calibration is a stratified share of the rest. ``random``: stratified.
    """

    kind: Literal["out_of_time", "holdout_column", "random"] = "out_of_time"
    date_column: str = "snapshot_date"
    evaluation_months: int = Field(default=12, ge=1)
    calibration_months: int = Field(default=6, ge=1)
    horizon_months: int = Field(default=12, ge=0)
    holdout_column: str | None = None
    evaluation_share: float = Field(default=0.25, gt=0, lt=1)
    calibration_share: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 0


class EstimatorConfig(_Frozen):
    type: Literal["hist_gradient_boosting", "lightgbm", "logistic_regression"] = "hist_gradient_boosting"
    params: dict[str, Any] = Field(default_factory=dict)


class GateConfig(_Frozen):
    """Quality gates a challenger must pass before it may become champion."""

    min_auc: float | None = None
    max_ece: float | None = None
    max_brier: float | None = None
    min_accuracy: float | None = None
    min_macro_f1: float | None = None
    #: How much worse than the champion, on the same evaluation rows, is still acceptable.
    tolerance: float = Field(default=0.005, ge=0)


class TuningConfig(_Frozen):
    """A budgeted hyperparameter search (successive halving over random candidates).

    It runs on the training rows only, with its own inner cross-validation, so when
    ``crm-modes evaluate`` cross-validates a tuned model the search is nested inside
    every outer fold and never sees the fold it is scored on.
    """

    enabled: bool = False
    candidates: int = Field(default=24, ge=2)
    factor: int = Field(default=3, ge=2)
    inner_folds: int = Field(default=3, ge=2)
    #: Rows the first (cheapest) round uses; too few make its choices noise.
    min_resources: int = Field(default=1_000, ge=50)
    seed: int = 0
    #: estimator parameter -> the values to draw from
    space: dict[str, list[Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _space_given(self) -> TuningConfig:
        if self.enabled and not self.space:
            raise ValueError("tuning.space: name at least one parameter and its values")
        return self


class ModelConfig(_Frozen):
    """One model: its label, estimator, calibration, registered name and gates."""

    @model_validator(mode="after")
    def _calibration_folds_need_a_method(self) -> ModelConfig:
        if self.calibration_folds is not None and self.calibration not in ("isotonic", "sigmoid"):
            raise ValueError("calibration_folds needs calibration: isotonic or sigmoid")
        return self

    kind: ModelKind
    target: str
    registered_name: str
    positive_label: str | int | None = None
    estimator: EstimatorConfig = Field(default_factory=EstimatorConfig)
    calibration: Literal["auto", "isotonic", "sigmoid", "none"] = "auto"
    #: Calibrate by K-fold cross-fitting on the training rows instead of a held-out calibration
    #: split: for small tables, where every row is needed for training.
    calibration_folds: int | None = Field(default=None, ge=2)
    benchmark: bool = True
    gates: GateConfig = Field(default_factory=GateConfig)
    tuning: TuningConfig = Field(default_factory=TuningConfig)


class ValueGateConfig(_Frozen):
    """When ``promote`` accepts a bundle's value policy (off-policy, on the evaluation rows)."""

    enabled: bool = True
    #: The doubly robust lower bound of the value policy's gain over the committee policy
    #: (millions, summed over the evaluation rows) must be at least this.
    min_gain_lower_bound: float = 0.0
    #: Two-sided coverage of the bootstrap interval whose lower bound is checked.
    confidence: float = Field(default=0.95, gt=0, lt=1)
    #: Propensities below this are clipped (and the clipped rows counted).
    propensity_floor: float = Field(default=0.01, gt=0, lt=1)
    bootstrap: int = Field(default=200, ge=20)
    seed: int = 0
    #: The cross-fitted propensity model: the committee model's features, its own estimator
    #: (more strongly regularized than the committee model, so that its probabilities stay honest).
    propensity_type: Literal["hist_gradient_boosting", "lightgbm", "logistic_regression"] = (
        "hist_gradient_boosting"
    )
    propensity_params: dict[str, Any] = Field(
        default_factory=lambda: {
            "max_iter": 100,
            "learning_rate": 0.1,
            "max_leaf_nodes": 31,
            "min_samples_leaf": 500,
            "l2_regularization": 1.0,
        }
    )


class ModeReadingsConfig(_Frozen):
    """Inputs the mode itself moves, and which models see them move (models/mode_readings.py)."""

    readings: list[str] = Field(min_length=1)
    models: list[Literal["churn", "default"]] = Field(min_length=1)

    @model_validator(mode="after")
    def _numeric_schema_columns(self) -> ModeReadingsConfig:
        from crm_modes.data.schema import SCHEMA, Role

        allowed = {c.name for c in SCHEMA if c.numeric and c.feature and c.role is not Role.LABEL}
        unknown = [name for name in self.readings if name not in allowed]
        if unknown:
            raise ValueError(f"mode_readings: {unknown} are not numeric input columns of the schema")
        return self


class AdvisorConfig(_Frozen):
    """The advisor bundle: the mode, churn and default models, the economics and the alert policy."""

    registered_name: str = "crm-advisor"
    policy: Path
    economics: Path
    value_gate: ValueGateConfig = Field(default_factory=ValueGateConfig)
    #: None: a counterfactual row differs from the row only in its mode.
    mode_readings: ModeReadingsConfig | None = None


class MlflowConfig(_Frozen):
    experiment: str = "crm-modes"


class TrainingConfig(_Frozen):
    """Everything one ``crm-modes train`` needs."""

    data: DataConfig
    split: SplitConfig = Field(default_factory=SplitConfig)
    features: FeatureConfig
    models: dict[str, ModelConfig]
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    advisor: AdvisorConfig | None = None
    source_path: Path | None = None
    source_text: str = ""

    @model_validator(mode="after")
    def _models_present(self) -> TrainingConfig:
        if not self.models:
            raise ValueError("models: name at least one model to train")
        if self.advisor is not None:
            missing = [name for name in ("mode", "churn", "default") if name not in self.models]
            if missing:
                raise ValueError(f"advisor: needs the models mode, churn and default; missing {missing}")
        return self


_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def expand(value: str) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}`` with the environment's values."""

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name in os.environ:
            return os.environ[name]
        if default is None:
            raise InputError(f"environment variable {name} is not set and has no default")
        return default

    return _VARIABLE.sub(substitute, value)


def load_training_config(path: str | os.PathLike[str]) -> TrainingConfig:
    """Parse the training configuration at ``path``.

    The ``features`` entry is either a path to a feature configuration file or the
    feature configuration itself. Errors name the file and the offending key.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such configuration file")
    text = path.read_text()
    raw = yaml.safe_load(text) or {}
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a mapping at the top level")
    base = path.parent
    raw = dict(raw)
    features = raw.get("features")
    if isinstance(features, str):
        raw["features"] = load_feature_config(base / expand(features))
    data = dict(raw.get("data") or {})
    for key in ("path", "profile", "quarantine"):
        if isinstance(data.get(key), str):
            data[key] = str((base / expand(data[key])).resolve())
    raw["data"] = data
    advisor = raw.get("advisor")
    if isinstance(advisor, dict):
        raw["advisor"] = {
            **advisor,
            **{
                key: (base / expand(advisor[key])).resolve()
                for key in ("policy", "economics")
                if isinstance(advisor.get(key), str)
            },
        }
    try:
        return TrainingConfig.model_validate({**raw, "source_path": path.resolve(), "source_text": text})
    except ValidationError as error:
        details = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in error.errors())
        raise InputError(f"{path}: {details}") from None
