"""Every monitoring figure, from the reference, the current book's profile and (optionally) outcomes.

Pure functions: profiles and arrays in, plain dicts out (the JSON report is exactly these
dicts). Each flagged figure says what it is, its value, the threshold it crossed and the
level, ``watch`` or ``act``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crm_modes.models.reference import SCORE_COLUMNS, SLICE_SCORES, BookProfile, MonitoringReference
from crm_modes.models.stability import flag, psi, shares
from crm_modes.monitor.backtest import backtest_groups, deciles, discrimination, jeffreys_p_value
from crm_modes.monitor.config import Levels, MonitoringConfig


@dataclass
class Outcomes:
    """The current rows whose outcomes are known, with their scores and slices (for backtesting)."""

    snapshot: list[np.ndarray] = field(default_factory=list)
    grade: list[np.ndarray] = field(default_factory=list)
    default_probability: list[np.ndarray] = field(default_factory=list)
    churn_probability: list[np.ndarray] = field(default_factory=list)
    default: list[np.ndarray] = field(default_factory=list)
    churn: list[np.ndarray] = field(default_factory=list)
    slices: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(
        self, inputs: pd.DataFrame, advice: pd.DataFrame, labels: pd.DataFrame, dimensions: list[str]
    ) -> None:
        """Keep the rows of a chunk whose default and churn outcomes are both known."""
        known = (labels["default_12m"].notna() & labels["churn_12m"].notna()).to_numpy()
        if not known.any():
            return
        dates = pd.to_datetime(inputs["snapshot_date"]).dt.strftime("%Y-%m-%d").to_numpy()
        self.snapshot.append(dates[known])
        self.grade.append(advice["risk_grade"].astype(str).to_numpy()[known])
        self.default_probability.append(advice["default_probability"].to_numpy(dtype=np.float64)[known])
        self.churn_probability.append(advice["churn_probability"].to_numpy(dtype=np.float64)[known])
        self.default.append(labels["default_12m"].to_numpy(dtype=np.float64)[known])
        self.churn.append(labels["churn_12m"].to_numpy(dtype=np.float64)[known])
        for dimension in dimensions:
            values = inputs[dimension].astype(object).where(inputs[dimension].notna(), "(missing)")
            self.slices.setdefault(dimension, []).append(values.astype(str).to_numpy()[known])

    @property
    def rows(self) -> int:
        return int(sum(len(part) for part in self.default))

    def array(self, name: str) -> np.ndarray:
        parts = getattr(self, name)
        return np.concatenate(parts) if parts else np.empty(0)

    def slice_values(self, dimension: str) -> np.ndarray:
        parts = self.slices.get(dimension, [])
        return np.concatenate(parts) if parts else np.empty(0, dtype=object)


def _level(value: float, levels: Levels) -> str:
    return "ok" if np.isnan(value) else flag(value, levels.watch, levels.act)


def _distribution_entry(
    name: str, reference: BookProfile, current: BookProfile, config: MonitoringConfig
) -> dict:
    bins = reference.bins[name]
    expected = reference.counts.get(name, np.zeros(len(bins.labels)))
    actual = current.counts.get(name, np.zeros(len(bins.labels)))
    value = psi(expected, actual, floor=config.stability.floor)
    enough = int(np.sum(actual)) >= config.stability.min_rows
    return {
        "name": name,
        "psi": value,
        "flag": _level(value, config.stability.psi) if enough else "ok",
        "bins": bins.labels,
        "reference_share": shares(expected).tolist(),
        "current_share": shares(actual).tolist(),
    }


def _mix_entry(name: str, expected: dict[str, int], actual: dict[str, int], config: MonitoringConfig) -> dict:
    labels = sorted(set(expected) | set(actual))
    e = np.array([expected.get(label, 0) for label in labels], dtype=np.float64)
    a = np.array([actual.get(label, 0) for label in labels], dtype=np.float64)
    value = psi(e, a, floor=config.stability.floor)
    enough = a.sum() >= config.stability.min_rows
    return {
        "name": name,
        "psi": value,
        "flag": _level(value, config.stability.psi) if enough else "ok",
        "bins": labels,
        "reference_share": shares(e).tolist(),
        "current_share": shares(a).tolist(),
    }


def stability(reference: BookProfile, current: BookProfile, config: MonitoringConfig) -> dict:
    """PSI of every input and score, the economy against its range, the mode and alert mixes."""
    inputs = [
        _distribution_entry(name, reference, current, config)
        for name in reference.bins
        if name not in SCORE_COLUMNS and name not in reference.economy
    ]
    scores = [
        _distribution_entry(name, reference, current, config)
        for name in SCORE_COLUMNS
        if name in reference.bins
    ]
    economy = []
    for name in reference.economy:
        counts = current.counts.get(name, np.zeros(4))
        present = counts[:3].sum()
        outside = float((counts[0] + counts[2]) / present) if present else 0.0
        edges = reference.bins[name].edges
        economy.append(
            {
                "name": name,
                "reference_range": [float(np.nextafter(edges[0], np.inf)), float(edges[1])] if edges else [],
                "share_below": float(counts[0] / present) if present else 0.0,
                "share_above": float(counts[2] / present) if present else 0.0,
                "share_outside": outside,
                "flag": _level(outside, config.stability.economy_outside),
            }
        )
    mixes = [
        _mix_entry("recommended_mode", reference.recommended_mode, current.recommended_mode, config),
        _mix_entry("alert_level", reference.alert_level, current.alert_level, config),
    ]
    rates = {
        "alert_rate": {
            "reference": 1 - shares_of(reference.alert_level).get("none", 0.0),
            "current": 1 - shares_of(current.alert_level).get("none", 0.0),
        },
        "recommended_mode": {
            "reference": shares_of(reference.recommended_mode),
            "current": shares_of(current.recommended_mode),
        },
    }
    return {"inputs": inputs, "scores": scores, "economy": economy, "mixes": mixes, "rates": rates}


def shares_of(counts: dict[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {key: value / total for key, value in sorted(counts.items())} if total else {}


def backtest(
    outcomes: Outcomes, development: dict[str, dict[str, float]], grades: list[str], config: MonitoringConfig
) -> dict:
    """Grades and churn deciles, predicted against observed; AUC, Gini and calibration against development."""
    settings = config.backtest
    pd_hat, defaults = outcomes.array("default_probability"), outcomes.array("default")
    churn_hat, churned = outcomes.array("churn_probability"), outcomes.array("churn")
    by_grade = backtest_groups(
        outcomes.array("grade"),
        pd_hat,
        defaults,
        grades,
        watch_p=settings.watch_p,
        act_p=settings.act_p,
        confidence=settings.confidence,
        floor=settings.pd_floor,
    )
    churn_groups = deciles(churn_hat)
    by_decile = backtest_groups(
        churn_groups,
        churn_hat,
        churned,
        [str(i) for i in range(1, 11)],
        watch_p=settings.watch_p,
        act_p=settings.act_p,
        confidence=settings.confidence,
    )
    overall = {}
    for name, predicted, observed in (("default", pd_hat, defaults), ("churn", churn_hat, churned)):
        figures = discrimination(predicted, observed)
        rate, mean = float(observed.mean()), float(predicted.mean())
        ratio = mean / rate if rate > 0 else float("nan")
        developed = development.get(name, {})
        drop = developed.get("auc", float("nan")) - figures["auc"]
        overall[name] = {
            **figures,
            "rows": int(observed.size),
            "events": int(observed.sum()),
            "observed_rate": rate,
            "mean_prediction": mean,
            "calibration_in_the_large": ratio - 1,
            "calibration_flag": _level(abs(ratio - 1), settings.calibration_in_the_large),
            "development_auc": developed.get("auc", float("nan")),
            "development_ece": developed.get("ece", float("nan")),
            "auc_drop": drop,
            "auc_flag": _level(drop, settings.auc_drop),
        }
    snapshots = outcomes.array("snapshot")
    over_time = []
    for snapshot in sorted(set(snapshots.tolist())):
        rows = snapshots == snapshot
        over_time.append(
            {
                "snapshot": snapshot,
                "rows": int(rows.sum()),
                "default_auc": discrimination(pd_hat[rows], defaults[rows])["auc"],
                "churn_auc": discrimination(churn_hat[rows], churned[rows])["auc"],
                "default_observed": float(defaults[rows].mean()),
                "default_predicted": float(pd_hat[rows].mean()),
            }
        )
    return {
        "rows": outcomes.rows,
        "overall": overall,
        "grades": [group.to_dict() for group in by_grade],
        "churn_deciles": [group.to_dict() for group in by_decile],
        "over_time": over_time,
    }


def slices(
    reference: BookProfile, current: BookProfile, outcomes: Outcomes | None, config: MonitoringConfig
) -> list[dict]:
    """Each slice: rows, alert rate and mode mix against its reference, PSI of PD and churn within it;
    with outcomes, AUC against the whole book's and its default rate against its prediction.

    A slice's PSI is flagged on what it moved beyond the whole book (see :func:`beyond_whole`): when
    the economy turns, every slice's PD moves with the book's, which the book's own PSI already
    reports; a slice is news when it moves more than the rest.
    """
    settings = config.slices
    whole = {
        score: psi(reference.counts[score], current.counts[score], floor=config.stability.floor)
        for score in SLICE_SCORES
        if score in reference.counts and score in current.counts
    }
    whole_auc = float("nan")
    if outcomes is not None and outcomes.rows:
        whole_auc = discrimination(outcomes.array("default_probability"), outcomes.array("default"))["auc"]
    entries = []
    for dimension, parts in current.slices.items():
        values = outcomes.slice_values(dimension) if outcomes is not None else np.empty(0)
        for label, part in sorted(parts.items()):
            before = reference.slices.get(dimension, {}).get(label)
            enough = part.rows >= settings.min_rows
            entry: dict = {
                "dimension": dimension,
                "slice": label,
                "rows": part.rows,
                "reference_rows": before.rows if before else 0,
                "alert_rate": part.alerted / part.rows if part.rows else 0.0,
                "reference_alert_rate": before.alerted / before.rows
                if before and before.rows
                else float("nan"),
                "recommended_mode": shares_of(part.modes),
                "flags": {},
            }
            for score in SLICE_SCORES:
                known = before is not None and score in before.scores
                value = (
                    psi(before.scores[score], part.scores[score], floor=config.stability.floor)
                    if known
                    else float("nan")
                )
                ratio = (
                    part.mean(score) / before.mean(score)
                    if known and before.mean(score) > 0
                    else float("nan")
                )
                excess = (
                    beyond_whole(value, whole.get(score, 0.0), before.scores[score], part.scores[score])
                    if known
                    else float("nan")
                )
                entry[f"{score}_psi"] = value
                entry[f"{score}_psi_beyond_whole"] = excess
                entry[f"{score}_mean"] = part.mean(score)
                entry[f"{score}_mean_ratio"] = ratio
                if enough and known:  # the mean ratio is shown, not flagged: a few rows in arrears move it
                    entry["flags"][f"{score}_psi"] = _level(excess, settings.psi)
            if outcomes is not None and values.size:
                rows = values == label
                predicted = outcomes.array("default_probability")[rows]
                observed = outcomes.array("default")[rows]
                events = int(observed.sum())
                figures = discrimination(predicted, observed)
                entry.update(
                    outcome_rows=int(rows.sum()),
                    defaults=events,
                    auc=figures["auc"],
                    ece=figures["ece"],
                    observed_default_rate=float(observed.mean()) if observed.size else float("nan"),
                    predicted_default_rate=float(predicted.mean()) if predicted.size else float("nan"),
                )
                tells = observed.size >= settings.min_rows and events >= settings.min_events
                if tells:
                    entry["flags"]["auc"] = _level(whole_auc - figures["auc"], settings.auc_margin)
                    tested = max(float(predicted.mean()), config.backtest.pd_floor)
                    p_value = jeffreys_p_value(events, int(observed.size), tested)
                    entry["jeffreys_p"] = p_value
                    entry["flags"]["default_rate"] = "act" if p_value < settings.act_p else "ok"
            entry["flag"] = _worst(entry["flags"].values())
            entries.append(entry)
    return entries


def beyond_whole(slice_psi: float, whole_psi: float, expected: np.ndarray, actual: np.ndarray) -> float:
    """What a slice's PSI shows beyond the whole book's PSI of the same score and beyond chance.

    ``slice_psi - whole_psi - (k - 1) * (1/n + 1/N)``: the last term is the PSI two samples of
    ``n`` (current) and ``N`` (reference) rows from one distribution show on average over ``k``
    bins (PSI is close to the chi-square statistic divided by the rows, whose mean is ``k - 1``),
    so a small slice is not flagged for its noise. Never below 0.

    Example:
        >>> round(beyond_whole(0.40, 0.18, np.array([50, 50]), np.array([40, 60])), 3)
        0.2
    """
    used = int(((expected > 0) | (actual > 0)).sum())
    n, reference_rows = float(actual.sum()), float(expected.sum())
    if not n or not reference_rows:
        return float("nan")
    chance = max(used - 1, 0) * (1 / n + 1 / reference_rows)
    return max(slice_psi - whole_psi - chance, 0.0)


def _worst(levels: object) -> str:
    found = set(levels)  # type: ignore[arg-type]
    return "act" if "act" in found else "watch" if "watch" in found else "ok"


def flags(report: dict) -> list[dict]:
    """Every figure flagged watch or act, as (section, name, figure, value, level)."""
    found = []
    stable = report["stability"]
    for section in ("inputs", "scores", "mixes"):
        for entry in stable[section]:
            if entry["flag"] != "ok":
                found.append(
                    _flagged(f"stability.{section}", entry["name"], "psi", entry["psi"], entry["flag"])
                )
    for entry in stable["economy"]:
        if entry["flag"] != "ok":
            found.append(
                _flagged(
                    "stability.economy", entry["name"], "share_outside", entry["share_outside"], entry["flag"]
                )
            )
    tested = report.get("backtest")
    if tested:
        for name, figures in tested["overall"].items():
            for figure, key in (("auc_drop", "auc_flag"), ("calibration_in_the_large", "calibration_flag")):
                if figures[key] != "ok":
                    found.append(_flagged("backtest", name, figure, figures[figure], figures[key]))
        for section, label in (("grades", "grade"), ("churn_deciles", "churn decile")):
            for group in tested[section]:
                if group["flag"] != "ok":
                    found.append(
                        _flagged(
                            f"backtest.{section}",
                            f"{label} {group['group']}",
                            "jeffreys_p",
                            group["jeffreys_p"],
                            group["flag"],
                        )
                    )
    for entry in report["slices"]:
        for figure, level in entry["flags"].items():
            if level != "ok":
                value = entry.get("jeffreys_p") if figure == "default_rate" else entry.get(figure)
                found.append(
                    _flagged("slices", f"{entry['dimension']}={entry['slice']}", figure, value, level)
                )
    return found


def _flagged(section: str, name: str, figure: str, value: float | None, level: str) -> dict:
    return {"section": section, "name": name, "figure": figure, "value": value, "level": level}


def compute(
    reference: MonitoringReference,
    current: BookProfile,
    outcomes: Outcomes | None,
    grades: list[str],
    config: MonitoringConfig,
) -> dict:
    """The whole report: stability, backtest (with outcomes), slices, and every flag."""
    report: dict = {
        "rows": current.rows,
        "snapshots": current.snapshots,
        "reference": {"rows": reference.profile.rows, "snapshots": reference.profile.snapshots},
        "stability": stability(reference.profile, current, config),
        "backtest": backtest(outcomes, reference.development, grades, config)
        if outcomes is not None and outcomes.rows
        else None,
        "slices": slices(reference.profile, current, outcomes, config),
    }
    report["flags"] = flags(report)
    report["status"] = _worst(flag["level"] for flag in report["flags"])
    return report
