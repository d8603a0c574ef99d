"""Monitoring thresholds, parsed once from YAML (``configs/monitoring.yaml``) into frozen objects."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from crm_modes.data.errors import InputError


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Levels(_Frozen):
    """A figure where higher is worse: ``watch`` from this value, ``act`` from that one."""

    watch: float = Field(ge=0)
    act: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Levels:
        if self.act < self.watch:
            raise ValueError(f"act ({self.act}) must be at least watch ({self.watch})")
        return self


class StabilityConfig(_Frozen):
    """Population stability of inputs, scores and mixes against the reference."""

    psi: Levels = Levels(watch=0.10, act=0.25)
    #: Share given to a bin empty on one side (keeps the logarithm finite).
    floor: float = Field(default=1e-4, gt=0, lt=0.01)
    #: Fewer current rows than this: figures shown, never flagged (too few to tell).
    min_rows: int = Field(default=1_000, ge=1)
    #: Economy columns: share of current rows outside the reference's range.
    economy_outside: Levels = Levels(watch=0.01, act=0.50)


class BacktestConfig(_Frozen):
    """Predicted against observed, once outcomes are known."""

    #: Jeffreys p-value of a grade or decile below which it is flagged.
    watch_p: float = Field(default=0.05, gt=0, lt=1)
    act_p: float = Field(default=0.001, gt=0, lt=1)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    #: The PD the default tests take at least (the regulatory floor, CRR Art. 160(1)).
    pd_floor: float = Field(default=0.0003, ge=0, lt=1)
    #: AUC below the development AUC by this much.
    auc_drop: Levels = Levels(watch=0.03, act=0.05)
    #: Calibration-in-the-large: |mean prediction / observed rate - 1|.
    calibration_in_the_large: Levels = Levels(watch=0.15, act=0.30)


class SlicesConfig(_Frozen):
    """Slices (segment, industry, market, product, region) against the whole book."""

    #: PSI of a score within a slice against the same slice at training.
    psi: Levels = Levels(watch=0.10, act=0.25)
    #: AUC of a slice below the whole book's AUC by this much (outcomes needed).
    auc_margin: Levels = Levels(watch=0.05, act=0.10)
    #: Jeffreys p-value of a slice's observed default rate against its mean prediction.
    act_p: float = Field(default=0.001, gt=0, lt=1)
    #: Enough to tell: a slice with fewer current rows (or, for AUC, events) is shown, not flagged.
    #: With 10 bins, the PSI of 300 rows drawn from the reference itself is about 0.03 +- 0.015.
    min_rows: int = Field(default=300, ge=1)
    min_events: int = Field(default=30, ge=1)


class MonitoringConfig(_Frozen):
    stability: StabilityConfig = StabilityConfig()
    backtest: BacktestConfig = BacktestConfig()
    slices: SlicesConfig = SlicesConfig()


def load_monitoring_config(path: str | os.PathLike[str] | None) -> MonitoringConfig:
    """The configuration at ``path`` (the defaults when None).

    Raises:
        ValueError: naming the file and every key that is wrong.
    """
    if path is None:
        return MonitoringConfig()
    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text()) or {}
        return MonitoringConfig.model_validate(content)
    except OSError as error:
        raise InputError(f"{path}: cannot read the monitoring configuration: {error.strerror}") from None
    except (yaml.YAMLError, ValidationError) as error:
        raise InputError(f"{path}: not a valid monitoring configuration:\n{error}") from None
