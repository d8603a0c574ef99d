"""Every monitoring figure, from the reference, the current book's profile and (optionally) outcomes.

Pure functions: profiles and arrays in, plain dicts out (the JSON report is exactly these
dicts). Each flagged figure says what it is, its value, the threshold it crossed and the
level, ``watch`` or ``act``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from crm_modes.data.gate import FileReport
from crm_modes.models.reference import (
    SCORE_COLUMNS,
    SLICE_COLUMNS,
    SLICE_SCORES,
    TAIL_QUANTILES,
    BookProfile,
    MonitoringReference,
)
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
        *(
            _reporting_mix(dimension, reference, current, config)
            for dimension in SLICE_COLUMNS
            if dimension in current.slices
        ),
    ]
    rates = {
        "alert_rate": {
            "reference": 1 - shares_of(reference.alert_level).get("none", 0.0),
            "current": 1 - shares_of(current.alert_level).get("none", 0.0) if current.rows else None,
        },
        "recommended_mode": {
            "reference": shares_of(reference.recommended_mode),
            "current": shares_of(current.recommended_mode),
        },
    }
    return {"inputs": inputs, "scores": scores, "economy": economy, "mixes": mixes, "rates": rates}


def _reporting_mix(
    dimension: str, reference: BookProfile, current: BookProfile, config: MonitoringConfig
) -> dict:
    """The PSI of a reporting column's mix. A column that is also a model input is flagged as that
    input (the same PSI), not twice."""
    entry = _mix_entry(
        f"{dimension} mix", _slice_rows(reference, dimension), _slice_rows(current, dimension), config
    )
    if dimension in reference.bins:
        entry["flag"] = "ok"
    return entry


def _slice_rows(profile: BookProfile, dimension: str) -> dict[str, int]:
    """Rows per value of a reporting column (its mix)."""
    return {label: part.rows for label, part in profile.slices.get(dimension, {}).items()}


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
                "share": part.rows / current.rows if current.rows else None,
                "reference_share": before.rows / reference.rows if before and reference.rows else 0.0,
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


def quarantine(gate: FileReport, config: MonitoringConfig) -> dict:
    """What the gate kept out of the current book: its share (flagged), the reasons by column with an
    offending value each, the new categories scored or counted, and whether the quarantine distorts
    the figures of the rows that passed (from the ``watch`` share on)."""
    share = gate.quarantined_share
    return {
        "rows_in": gate.rows_in,
        "rows_quarantined": gate.rows_quarantined,
        "share": share,
        "flag": _level(share, config.quarantine.share) if gate.rows_in else "ok",
        "reasons": [
            {"column": column, "rows": count, "example": example}
            for column, count, example in gate.worst(count=len(gate.reasons))
        ],
        "new_values": gate.unseen,
        "rows_warned": gate.rows_warned,
        "distorts": gate.rows_in > 0 and share >= config.quarantine.share.watch,
    }


def _change(current: float, base: float, error: float, levels: Levels, confidence: float) -> dict:
    """The relative change of a level from ``base``, its interval and its flag.

    The interval is ``change +- z * error / base``, ``error`` being the standard error of the current
    level (the base is taken as known). A rise (more risk: a higher mean PD or churn, more rows above
    the reference's upper quantiles) is flagged at the level whose threshold it crosses, but only
    when its interval excludes no change: with few rows or widely spread scores, a large move can
    still be noise. A fall is shown, not flagged (the PSI of the score reports a moved distribution).
    """
    if not np.isfinite(current) or not np.isfinite(base) or base <= 0:
        return {"base": base, "change": None, "interval": None, "flag": "ok"}
    change = current / base - 1
    margin = float(stats.norm.ppf(0.5 + confidence / 2)) * error / base if np.isfinite(error) else 0.0
    low, high = change - margin, change + margin
    return {
        "base": base,
        "change": change,
        "interval": [low, high],
        "flag": _level(change, levels) if low > 0 else "ok",
    }


def _levels(profile: BookProfile, grades: list[str]) -> dict:
    """The levels of a counted book: rows, mean PD and churn with their spread, expected defaults,
    the share per risk grade and above the reference's upper quantiles."""
    pd_bins = profile.counts.get("default_probability")
    grade_shares = (
        dict(zip(grades, shares(pd_bins[: len(grades)]).tolist(), strict=True))
        if pd_bins is not None and len(pd_bins) == len(grades) + 1
        else {}
    )
    mean_pd = profile.mean("default_probability")
    return {
        "rows": profile.rows,
        "snapshot": profile.snapshots[-1] if profile.snapshots else None,
        "mean_default_probability": mean_pd,
        "spread_default_probability": profile.spread("default_probability"),
        "expected_defaults": mean_pd * profile.rows if profile.rows else 0.0,
        "mean_churn_probability": profile.mean("churn_probability"),
        "spread_churn_probability": profile.spread("churn_probability"),
        "grade_shares": grade_shares,
        "tail_shares": {
            score: dict(zip((f"above_q{round(q * 100)}" for q in TAIL_QUANTILES), shares_above, strict=True))
            for score in ("default_probability", "churn_probability")
            if (shares_above := profile.tail_shares(score))
        },
        "inputs": {
            name: {"rows": rows, "mean": mean, "spread": spread}
            for name in profile.input_moments
            for rows, mean, spread in [profile.input_level(name)]
        },
    }


def _shift(current: dict, base: dict | None, levels: Levels, confidence: float) -> dict:
    """How far a numeric input's mean moved from ``base`` (the previous run's), in standard
    deviations pooled over both books, with its interval and flag.

    The interval is ``shift +- z * sqrt(1/n + 1/m)``, two independent means in that unit: the same
    facilities month on month make it wider than it needs to be, so a flag is no noise. A shift either
    way is flagged at the level whose threshold it crosses when its interval excludes no shift: an
    input's mean barely moves month on month, and when it does, a feed or the book changed. A column
    constant in both books that changed its value is ``act`` without a shift to show.
    """
    if not base or not base.get("rows") or not current["rows"]:
        return {"base": base.get("mean") if base else None, "shift": None, "interval": None, "flag": "ok"}
    mean, before = current["mean"], float(base["mean"])
    spread = float(np.sqrt((current["spread"] ** 2 + float(base["spread"]) ** 2) / 2))
    if not np.isfinite(spread) or spread == 0:
        moved = np.isfinite(spread) and mean != before
        return {"base": before, "shift": None, "interval": None, "flag": "act" if moved else "ok"}
    shift = (mean - before) / spread
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    margin = z * float(np.sqrt(1 / current["rows"] + 1 / float(base["rows"])))
    low, high = shift - margin, shift + margin
    return {
        "base": before,
        "shift": shift,
        "interval": [low, high],
        "flag": _level(abs(shift), levels) if low > 0 or high < 0 else "ok",
    }


def portfolio(
    reference: BookProfile,
    current: BookProfile,
    previous: dict | None,
    grades: list[str],
    config: MonitoringConfig,
) -> dict:
    """The book's levels against the reference and against the previous run of the same model.

    ``previous``: the ``portfolio.current`` figures of that run's report (None: no previous run).
    A shift of a level is flagged even when a PSI does not move: a book can move back towards the
    reference's distribution while its mean PD rises month on month.
    """
    settings = config.portfolio
    now = _levels(current, grades)
    then = _levels(reference, grades)
    rows = current.rows

    root = np.sqrt(rows) if rows else float("nan")

    def changes(base: dict, levels: Levels, tail_levels: dict[str, Levels]) -> dict:
        found = {
            name: _change(
                now[name],
                _number(base.get(name)),
                now[name.replace("mean_", "spread_")] / root,
                levels,
                settings.confidence,
            )
            for name in ("mean_default_probability", "mean_churn_probability")
        }
        for score, tails in now["tail_shares"].items():
            for name, share in tails.items():
                expected = _number(base.get("tail_shares", {}).get(score, {}).get(name))
                error = float(np.sqrt(share * (1 - share))) / root  # a share's binomial error
                found[f"{score}_{name}"] = _change(
                    share, expected, error, tail_levels.get(name, levels), settings.confidence
                )
        return found

    against_previous = inputs_against_previous = grade_mix = None
    if previous is not None:
        tails = {
            "above_q90": settings.tails_against_previous,
            "above_q99": settings.far_tail_against_previous,
        }
        against_previous = changes(previous, settings.against_previous, tails)
        previous_rows = previous.get("rows") or 0
        against_previous["expected_defaults"] = _change(
            now["expected_defaults"],
            _number(previous.get("expected_defaults")),
            now["spread_default_probability"] * root,  # the error of a sum of rows
            settings.against_previous,
            settings.confidence,
        )
        inputs_against_previous = {
            name: _shift(
                figures,
                previous.get("inputs", {}).get(name),
                settings.inputs_against_previous,
                settings.confidence,
            )
            for name, figures in now["inputs"].items()
        }
        grade_mix = _grade_mix(now["grade_shares"], previous.get("grade_shares") or {}, config)
        change = rows / previous_rows - 1 if previous_rows else None
        against_previous["rows"] = {
            "base": previous_rows,
            "change": change,
            "interval": None,  # a count of rows read, not an estimate
            "flag": _level(abs(change), settings.rows_against_previous) if change is not None else "ok",
        }
    return {
        "current": now,
        "reference": then,
        "previous": previous,
        "against_reference": changes(then, settings.against_reference, {}),
        "against_previous": against_previous,
        "inputs_against_previous": inputs_against_previous,
        "grade_mix_against_previous": grade_mix,
        "continuity": continuity(now["snapshot"], previous.get("snapshot") if previous else None),
    }


def _grade_mix(now: dict[str, float], before: dict[str, float], config: MonitoringConfig) -> dict | None:
    """The PSI of the share per risk grade against the previous run's (the PD on the master scale
    month on month), flagged like a score's PSI; None without both mixes."""
    grades = [grade for grade in now if grade in before]
    if not grades or len(grades) != len(now):
        return None
    value = psi(
        np.array([before[grade] for grade in grades]),
        np.array([now[grade] for grade in grades]),
        floor=config.stability.floor,
    )
    return {"psi": value, "flag": _level(value, config.stability.psi)}


def _number(value: object) -> float:
    return float("nan") if value is None else float(value)  # type: ignore[arg-type]


def continuity(snapshot: str | None, previous: str | None) -> dict:
    """Whether the book's snapshot follows the previous run's by one month-end: the same snapshot again
    is a stale file, another month a wrong one (both ``act``: the figures describe another month)."""
    if snapshot is None or previous is None:
        return {"snapshot": snapshot, "previous_snapshot": previous, "expected": None, "flag": "ok"}
    expected = (pd.Timestamp(previous) + pd.offsets.MonthEnd(1)).strftime("%Y-%m-%d")
    if snapshot == previous:
        note = f"the same snapshot as the previous run ({previous}): last month's file again?"
    elif snapshot != expected:
        note = f"snapshot {snapshot}, where the month after the previous run's {previous} is {expected}"
    else:
        note = ""
    return {
        "snapshot": snapshot,
        "previous_snapshot": previous,
        "expected": expected,
        "note": note,
        "flag": "act" if note else "ok",
    }


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
    """Every figure flagged watch or act, as (section, name, figure, value, level) and a note where
    the figure alone does not say it."""
    found = []
    judged = report.get("judged", {"enough": True})
    if not judged["enough"]:
        found.append(_flagged("book", "rows scored", "rows", judged["rows"], "act", note=judged["note"]))
    gated = report.get("quarantine")
    if gated and gated["flag"] != "ok":
        found.append(_flagged("quarantine", "rows quarantined", "share", gated["share"], gated["flag"]))
    levels = report.get("portfolio")
    if levels:
        for side in ("against_reference", "against_previous"):
            for name, figures in (levels[side] or {}).items():
                if figures["flag"] != "ok":
                    found.append(
                        _flagged(f"portfolio.{side}", name, "change", figures["change"], figures["flag"])
                    )
        mix = levels.get("grade_mix_against_previous")
        if mix and mix["flag"] != "ok":
            found.append(
                _flagged("portfolio.against_previous", "risk grade mix", "psi", mix["psi"], mix["flag"])
            )
        for name, figures in (levels.get("inputs_against_previous") or {}).items():
            if figures["flag"] != "ok":
                found.append(
                    _flagged(
                        "portfolio.inputs_against_previous",
                        name,
                        "mean_shift_sd",
                        figures["shift"],
                        figures["flag"],
                    )
                )
        kept = levels["continuity"]
        if kept["flag"] != "ok":
            found.append(
                _flagged(
                    "portfolio.continuity",
                    "snapshot",
                    "snapshot",
                    kept["snapshot"],
                    kept["flag"],
                    note=kept["note"],
                )
            )
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


def _flagged(section: str, name: str, figure: str, value: object, level: str, *, note: str = "") -> dict:
    return {"section": section, "name": name, "figure": figure, "value": value, "level": level, "note": note}


def compute(
    reference: MonitoringReference,
    current: BookProfile,
    outcomes: Outcomes | None,
    grades: list[str],
    config: MonitoringConfig,
    *,
    gate: FileReport | None = None,
    previous: dict | None = None,
) -> dict:
    """The whole report: what the gate kept out, whether there is enough to judge, stability, the
    book's levels against the reference and the previous run, backtest (with outcomes), slices, and
    every flag.

    ``gate``: what the gate found in the current book; ``previous``: the ``portfolio.current``
    figures of the previous run of the same model version.
    """
    minimum = config.stability.min_rows
    report: dict = {
        "rows": current.rows,
        "snapshots": current.snapshots,
        "reference": {"rows": reference.profile.rows, "snapshots": reference.profile.snapshots},
        "judged": {
            "rows": current.rows,
            "minimum": minimum,
            "enough": current.rows >= minimum,
            "note": ""
            if current.rows >= minimum
            else f"cannot judge: {current.rows:,} rows, at least {minimum:,} needed",
        },
        "quarantine": quarantine(gate, config) if gate is not None else None,
        "portfolio": portfolio(reference.profile, current, previous, grades, config),
        "stability": stability(reference.profile, current, config),
        "backtest": backtest(outcomes, reference.development, grades, config)
        if outcomes is not None and outcomes.rows
        else None,
        "slices": slices(reference.profile, current, outcomes, config),
    }
    report["flags"] = flags(report)
    report["status"] = _worst(flag["level"] for flag in report["flags"])
    return report
