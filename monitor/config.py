"""Monitoring thresholds, parsed once from YAML (``configs/monitoring.yaml``) into frozen objects."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import Field, ValidationError, model_validator

from crm_modes.shared.configuration import FrozenConfig
from crm_modes.shared.errors import InputError


class Levels(FrozenConfig):
    """A figure where higher is worse: ``watch`` from this value, ``act`` from that one."""

    watch: float = Field(ge=0)
    """From this value on, the figure is flagged ``watch``."""
    act: float = Field(ge=0)
    """From this value on, it is flagged ``act`` (exit code 1)."""

    @model_validator(mode="after")
    def _ordered(self) -> Levels:
        if self.act < self.watch:
            raise ValueError(f"act ({self.act}) must be at least watch ({self.watch})")
        return self


class StabilityConfig(FrozenConfig):
    """Population stability of inputs, scores and mixes against the reference."""

    psi: Levels = Levels(watch=0.10, act=0.25)
    """Population stability index of inputs, scores and mixes."""
    floor: float = Field(default=1e-4, gt=0, lt=0.01)
    """Share given to a bin empty on one side (keeps the logarithm finite)."""
    min_rows: int = Field(default=1_000, ge=1)
    """Fewer current rows scored than this: the book cannot be judged, a flag of its own (``act``); its
    figures are shown, none of them flagged."""
    economy_outside: Levels = Levels(watch=0.01, act=0.50)
    """Economy columns: share of current rows outside the reference's range."""


class QuarantineConfig(FrozenConfig):
    """The share of the current book's rows the gate quarantined (nobody scored or alerted on them)."""

    share: Levels = Levels(watch=0.01, act=0.05)
    """Quarantined rows as a share of the rows read; from ``watch`` on, the figures computed on the rows
    that passed are marked as distorted by the quarantine."""


class PortfolioConfig(FrozenConfig):
    """The book's levels: mean PD, expected defaults, mean churn, the share above the reference's upper
    quantiles, against the reference and against the previous monitoring run of the same model; and
    the mean of each numeric input against the previous run's.

    A level's relative change is flagged when it crosses a threshold and its interval (from the
    number of rows and the spread of the scores) excludes no change: a small book's noise is not news.
    """

    against_reference: Levels = Levels(watch=0.25, act=0.50)
    """Relative change of a level from the training reference."""
    against_previous: Levels = Levels(watch=0.10, act=0.30)
    """Relative change of a level (mean PD, expected defaults, mean churn) from the previous run."""
    tails_against_previous: Levels = Levels(watch=0.25, act=0.50)
    """Relative change of the share above the reference's 90th percentile from the previous run (a
    tail moves with the economy more than a mean)."""
    far_tail_against_previous: Levels = Levels(watch=0.75, act=3.0)
    """Relative change of the share above the reference's 99th percentile from the previous run:
    about one facility in a hundred, which the economy alone can double from one month to the next."""
    inputs_against_previous: Levels = Levels(watch=0.15, act=0.30)
    """Shift of a numeric input's mean from the previous run, in standard deviations (either way)."""
    rows_against_previous: Levels = Levels(watch=0.10, act=0.25)
    """Relative change of the number of rows read from the previous run (facilities missing or added)."""
    confidence: float = Field(default=0.95, gt=0, lt=1)
    """Coverage of the interval of each change."""


class BacktestConfig(FrozenConfig):
    """Predicted against observed, once outcomes are known."""

    watch_p: float = Field(default=0.05, gt=0, lt=1)
    """Jeffreys p-value of a grade or decile below which it is flagged."""
    act_p: float = Field(default=0.001, gt=0, lt=1)
    """Jeffreys p-value of a grade or churn decile below which it is flagged ``act``."""
    confidence: float = Field(default=0.95, gt=0, lt=1)
    """Coverage of the Jeffreys interval shown beside each observed rate."""
    pd_floor: float = Field(default=0.0003, ge=0, lt=1)
    """The PD the default tests take at least (the regulatory floor, CRR Art. 160(1))."""
    auc_drop: Levels = Levels(watch=0.03, act=0.05)
    """AUC below the development AUC by this much."""
    calibration_in_the_large: Levels = Levels(watch=0.15, act=0.30)
    """Calibration-in-the-large: |mean prediction / observed rate - 1|."""


class SlicesConfig(FrozenConfig):
    """Slices (segment, industry, market, product, region) against the whole book."""

    psi: Levels = Levels(watch=0.10, act=0.25)
    """PSI of a score within a slice against the same slice at training, beyond the whole book's PSI of
    that score and beyond chance: a slice is flagged when it moves more than the rest of the book.
    """
    auc_margin: Levels = Levels(watch=0.05, act=0.10)
    """AUC of a slice below the whole book's AUC by this much (outcomes needed)."""
    act_p: float = Field(default=0.001, gt=0, lt=1)
    """Jeffreys p-value of a slice's observed default rate against its mean prediction."""
    min_rows: int = Field(default=300, ge=1)
    """Enough to tell: a slice with fewer current rows (or, for AUC, events) is shown, not flagged. With
    10 bins, the PSI of 300 rows drawn from the reference itself is about 0.03 +- 0.015.
    """
    min_events: int = Field(default=30, ge=1)
    """Defaults a slice needs (beside ``min_rows``) before its AUC and default rate are flagged."""


class MonitoringConfig(FrozenConfig):
    stability: StabilityConfig = StabilityConfig()
    """Stability against the training reference."""
    backtest: BacktestConfig = BacktestConfig()
    """Predicted against observed, with ``--outcomes``."""
    slices: SlicesConfig = SlicesConfig()
    """Slices against the whole book."""
    quarantine: QuarantineConfig = QuarantineConfig()
    """What the gate kept out of the current book."""
    portfolio: PortfolioConfig = PortfolioConfig()
    """Levels of the book against the reference and the previous run."""


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
