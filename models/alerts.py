"""The alert policy: predictions and events in, alert levels, codes and actions out.

Which rules apply depends on the mode the facility is served in (the mode applied
today; the recommended mode when the input does not say):

- **responsible**: proactive alerts on predicted default risk (level and a sharp rise
  against the previous score) and churn, plus every reactive event;
- **reactive**: events that already happened: days past due, project delay beyond a
  limit, covenant breaches;
- **basic**: hard events only (90+ days past due);
- any mode: a recommended mode above today's raises a mode-upgrade signal.

Every threshold comes from the policy file (``configs/alert_policy.yaml``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from crm_modes.data.schema import MODES
from crm_modes.shared.configuration import FrozenConfig, load_yaml_model
from crm_modes.shared.errors import InputError

NONE = "none"
PREDICTIVE_PD = ("PD_CRITICAL", "PD_WARNING", "PD_WATCH", "PD_RISE")
PREDICTIVE_CHURN = ("CHURN_WARNING", "CHURN_WATCH")


class RiseRule(FrozenConfig):
    absolute: float = Field(gt=0)
    """A rise of the PD by this much since the previous score is sharp."""
    relative: float = Field(gt=1)
    """So is a PD this many times the previous one (from the lowest PD level on)."""
    level: str
    """The alert level of a sharp rise."""


class LimitRule(FrozenConfig):
    limit: float
    """The event's threshold (months of delay, covenant breaches)."""
    level: str
    """The alert level when it is reached."""


class ResponsibleRules(FrozenConfig):
    default_probability: dict[str, float]
    """Alert level -> the PD from which it is raised."""
    default_probability_rise: RiseRule
    """A sharp PD rise since the previous score."""
    churn_probability: dict[str, float]
    """Alert level -> the churn probability from which it is raised."""


class ReactiveRules(FrozenConfig):
    days_past_due: dict[int, str]
    """Days past due -> the alert level from then on."""
    project_delay_months: LimitRule
    """A project running late by this many months."""
    covenant_breaches_12m: LimitRule
    """Covenant breaches in the last 12 months."""


class BasicRules(FrozenConfig):
    days_past_due: dict[int, str]
    """Days past due -> alert level: in basic mode only hard events."""


class Topic(FrozenConfig):
    """One alert topic of the notification policy: its codes, in increasing severity, and its timing."""

    codes: tuple[str, ...] = Field(min_length=1)
    """The topic's alert codes, in increasing severity."""
    cooldown_months: int = Field(ge=1)
    """Months before an unchanged open alert is notified again."""
    resolve_after: int = Field(ge=1)
    """Clear snapshots in a row that resolve the alert."""


class Grade(FrozenConfig):
    grade: str
    """The grade's name on the master scale."""
    max_pd: float = Field(gt=0, le=1)
    """The highest PD of the grade (the last grade ends at 1.0)."""


class AlertPolicy(FrozenConfig):
    """The parsed policy file; see ``configs/alert_policy.yaml`` for the meaning of each entry."""

    levels: tuple[str, ...]
    """Alert levels, least severe first; the first is ``none``."""
    responsible: ResponsibleRules
    """Responsible mode: predictive alerts, plus every reactive event."""
    reactive: ReactiveRules
    """Reactive mode: events that already happened."""
    basic: BasicRules
    """Basic mode: hard events only."""
    mode_upgrade: dict[str, str]
    """The level of the signal that a higher mode would pay (``level: watch``)."""
    reasons: dict[str, int]
    """How many drivers each predictive alert names (``top: 3``)."""
    actions: dict[str, str]
    """Alert code -> what the relationship manager should do (the most severe alert's action wins)."""
    risk_grades: tuple[Grade, ...]
    """The master scale: grades by PD."""
    notifications: dict[str, Topic] | None = None
    """topic -> its codes and timing; read by the state store (``crm_modes.state``), not the bundle."""

    @model_validator(mode="after")
    def _consistent(self) -> AlertPolicy:
        if not self.levels or self.levels[0] != NONE:
            raise InputError(f"levels must start with {NONE!r}")
        used = [
            *self.responsible.default_probability,
            *self.responsible.churn_probability,
            self.responsible.default_probability_rise.level,
            *self.reactive.days_past_due.values(),
            self.reactive.project_delay_months.level,
            self.reactive.covenant_breaches_12m.level,
            *self.basic.days_past_due.values(),
            self.mode_upgrade.get("level", ""),
        ]
        unknown = sorted({level for level in used if level not in self.levels})
        if unknown:
            raise InputError(f"levels {unknown} are not among {list(self.levels)}")
        if self.notifications is not None:
            listed = [code for topic in self.notifications.values() for code in topic.codes]
            repeated = sorted({code for code in listed if listed.count(code) > 1})
            missing, unknown = sorted(self.codes() - set(listed)), sorted(set(listed) - self.codes())
            if repeated or missing or unknown:
                raise InputError(
                    "notifications must list every alert code in exactly one topic: "
                    f"repeated {repeated}, missing {missing}, unknown {unknown}"
                )
        bounds = [grade.max_pd for grade in self.risk_grades]
        if bounds != sorted(bounds) or not bounds or bounds[-1] < 1.0:
            raise InputError("risk_grades must have increasing max_pd ending at 1.0")
        return self

    def level(self, name: str) -> int:
        return self.levels.index(name)

    def codes(self) -> set[str]:
        """Every alert code this policy can raise."""
        r, e = self.responsible, self.reactive
        return {
            *(code for code, _, _ in _probability_bands("PD", r.default_probability)),
            "PD_RISE",
            *(code for code, _, _ in _probability_bands("CHURN", r.churn_probability)),
            *(code for code, _, _ in _dpd_bands(e.days_past_due)),
            *(code for code, _, _ in _dpd_bands(self.basic.days_past_due)),
            "PROJECT_DELAY",
            "COVENANT_BREACH",
            "MODE_UPGRADE",
        }


def load_policy(path: str | os.PathLike[str]) -> AlertPolicy:
    """Parse the policy file; errors name the file and the entry."""
    return load_yaml_model(path, AlertPolicy)


@dataclass(frozen=True)
class Signals:
    """What the policy looks at, one entry per row."""

    mode_today: np.ndarray  # index into MODES
    recommended_mode: np.ndarray  # index into MODES
    mode_given: np.ndarray  # bool: the input said which mode applies today
    default_probability: np.ndarray
    previous_default_probability: np.ndarray  # NaN when not supplied
    churn_probability: np.ndarray
    days_past_due: np.ndarray
    project_delay_months: np.ndarray  # NaN when not project finance
    covenant_breaches_12m: np.ndarray


@dataclass(frozen=True)
class Alerts:
    level: np.ndarray  # int severity per row
    codes: np.ndarray  # per row: its alert codes joined by ",", most severe first ("" when none)
    first: np.ndarray  # per row: its most severe alert code ("" when none)
    rules: dict[str, np.ndarray]  # code -> rows it fired on

    def fired(self, codes: tuple[str, ...]) -> np.ndarray:
        mask = np.zeros(self.level.shape[0], dtype=bool)
        for code in codes:
            if code in self.rules:
                mask |= self.rules[code]
        return mask


def _band_rules(values: np.ndarray, bands: list[tuple[str, str, float]], policy: AlertPolicy) -> list:
    """One rule per band ``(code, level, lower bound)``: only the highest band reached fires."""
    bands = sorted(bands, key=lambda band: band[2])
    rules = []
    for i, (code, level, lower) in enumerate(bands):
        upper = bands[i + 1][2] if i + 1 < len(bands) else np.inf
        rules.append((code, policy.level(level), (values >= lower) & (values < upper)))
    return rules


def _probability_bands(prefix: str, thresholds: dict[str, float]) -> list[tuple[str, str, float]]:
    return [(f"{prefix}_{level.upper()}", level, float(bound)) for level, bound in thresholds.items()]


def _dpd_bands(thresholds: dict[int, str]) -> list[tuple[str, str, float]]:
    return [(f"DPD_{days}", level, float(days)) for days, level in thresholds.items()]


def evaluate_alerts(signals: Signals, policy: AlertPolicy) -> Alerts:
    """Apply the policy to every row; pure and vectorized."""
    responsible = signals.mode_today == MODES.index("responsible")
    reactive = signals.mode_today == MODES.index("reactive")
    basic = signals.mode_today == MODES.index("basic")
    watches_events = responsible | reactive
    rules: list[tuple[str, int, np.ndarray]] = []

    r = policy.responsible
    pd_bands = _probability_bands("PD", r.default_probability)
    for code, level, mask in _band_rules(signals.default_probability, pd_bands, policy):
        rules.append((code, level, mask & responsible))
    previous = signals.previous_default_probability
    has_previous = ~np.isnan(previous)
    rise = signals.default_probability - np.where(has_previous, previous, 0.0)
    watch_level = min(r.default_probability.values())
    sharp = (rise >= r.default_probability_rise.absolute) | (
        (
            signals.default_probability
            >= r.default_probability_rise.relative * np.where(has_previous, previous, np.inf)
        )
        & (signals.default_probability >= watch_level)
    )
    rules.append(
        ("PD_RISE", policy.level(r.default_probability_rise.level), responsible & has_previous & sharp)
    )
    churn_bands = _probability_bands("CHURN", r.churn_probability)
    for code, level, mask in _band_rules(signals.churn_probability, churn_bands, policy):
        rules.append((code, level, mask & responsible))

    e = policy.reactive
    for code, level, mask in _band_rules(signals.days_past_due, _dpd_bands(e.days_past_due), policy):
        rules.append((code, level, mask & watches_events))
    delay = np.nan_to_num(signals.project_delay_months, nan=0.0)
    rules.append(
        (
            "PROJECT_DELAY",
            policy.level(e.project_delay_months.level),
            watches_events & (delay >= e.project_delay_months.limit),
        )
    )
    rules.append(
        (
            "COVENANT_BREACH",
            policy.level(e.covenant_breaches_12m.level),
            watches_events & (signals.covenant_breaches_12m >= e.covenant_breaches_12m.limit),
        )
    )
    for code, level, mask in _band_rules(
        signals.days_past_due, _dpd_bands(policy.basic.days_past_due), policy
    ):
        rules.append((code, level, mask & basic))

    upgrade = signals.mode_given & (signals.recommended_mode > signals.mode_today)
    rules.append(("MODE_UPGRADE", policy.level(policy.mode_upgrade["level"]), upgrade))

    fired: dict[str, np.ndarray] = {}
    for code, _, mask in rules:
        fired[code] = fired.get(code, np.zeros_like(mask)) | mask
    level = np.zeros(signals.default_probability.shape[0], dtype=np.int64)
    for _, severity, mask in rules:
        level = np.where(mask, np.maximum(level, severity), level)
    severity_of = {code: severity for code, severity, _ in rules}
    priority = {code: i for i, code in enumerate(policy.actions)}
    ordered = sorted(fired, key=lambda c: (-severity_of[c], priority.get(c, len(priority))))
    codes = np.full(level.shape[0], "", dtype=object)
    first = np.full(level.shape[0], "", dtype=object)
    for code in ordered:  # most severe first, so each row's codes come out in that order
        rows = np.flatnonzero(fired[code])
        if rows.size:
            first[rows[first[rows] == ""]] = code
            codes[rows] = np.where(codes[rows] == "", code, codes[rows] + "," + code)
    return Alerts(level=level, codes=codes, first=first, rules=fired)


def actions(alerts: Alerts, policy: AlertPolicy) -> list[str]:
    """The recommended action of each row: that of its most severe alert."""
    fallback = policy.actions.get(NONE, "no action")
    codes, uniques = pd.factorize(alerts.first)
    texts = np.asarray([policy.actions.get(code, fallback) for code in uniques] + [fallback], dtype=object)
    return texts[codes].tolist()


def risk_grades(default_probability: np.ndarray, policy: AlertPolicy) -> np.ndarray:
    """Master-scale grade of each PD: the first grade whose upper bound exceeds it."""
    bounds = np.array([grade.max_pd for grade in policy.risk_grades])
    labels = np.array([grade.grade for grade in policy.risk_grades], dtype=object)
    index = np.minimum(np.searchsorted(bounds, default_probability, side="right"), len(bounds) - 1)
    return labels[index]
