"""What monitoring compares a scored book against, learnt on the training rows and shipped with the bundle.

A :class:`BookProfile` counts a scored book into bins: every input feature, every score
(PD, churn, the committee's probability per mode), the recommended-mode mix, the alert levels,
and the same scores, alert rate and mode mix within each slice (segment, industry, market,
product, region). The bins are fixed once, on the reference rows (:func:`fit_profile`); a
current book is counted into the very same bins, chunk by chunk (:meth:`BookProfile.add`), so
monitoring a large book takes memory flat in its size.

Economy columns (``gdp_growth``) carry one value per month: a month's rows all sit in one bin,
so a population index would flag every month against a reference that spans a cycle. They are
profiled by their range instead: three bins, below, within and above the reference's range
(:func:`range_bins`); the question is whether the economy has left what the models learnt on.

The reference (:class:`MonitoringReference`: the profile plus the development figures of the
models on their evaluation rows) is written as plain JSON into the model's artifacts, covered
by the integrity manifest like every other file, and read without executing anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crm_modes.data.schema import MODES, SCHEMA, Kind, Role
from crm_modes.models.stability import Bins, fit_bins
from crm_modes.shared.errors import InputError

#: Slices monitoring reports on (those present in the rows).
SLICE_COLUMNS: tuple[str, ...] = ("segment", "industry", "market", "product", "region")
#: Scores profiled, as the advisor names them.
SCORE_COLUMNS: tuple[str, ...] = (
    "default_probability",
    "churn_probability",
    *(f"probability_{mode}" for mode in MODES),
)
#: Scores profiled within each slice.
SLICE_SCORES: tuple[str, ...] = ("default_probability", "churn_probability")
#: Scores whose level (mean, spread) and upper tail monitoring follows.
LEVEL_SCORES: tuple[str, ...] = ("default_probability", "churn_probability")
#: The reference's upper quantiles of each level score; a book's share above each is followed.
TAIL_QUANTILES: tuple[float, ...] = (0.90, 0.99)
#: Input roles profiled (the models' inputs); economy columns by their range.
_INPUT_ROLES = frozenset({Role.CLIENT, Role.FACILITY, Role.BEHAVIOUR, Role.CONTEXT})
REFERENCE_FORMAT = 1


def profiled_inputs(columns: list[str]) -> list[str]:
    """The input features among ``columns`` whose distribution is profiled (schema order)."""
    present = set(columns)
    return [c.name for c in SCHEMA if c.name in present and c.role in _INPUT_ROLES and c.feature]


def economy_inputs(columns: list[str]) -> list[str]:
    present = set(columns)
    return [c.name for c in SCHEMA if c.name in present and c.role is Role.ECONOMY]


def _is_categorical(name: str) -> bool:
    kinds = {c.name: c.kind for c in SCHEMA}
    return kinds.get(name) in (Kind.CATEGORY, Kind.STRING)


@dataclass
class SliceProfile:
    """One slice (e.g. ``industry = construction``): rows, score counts and sums, alerts, mode mix."""

    rows: int = 0
    alerted: int = 0
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)

    def mean(self, score: str) -> float:
        """The slice's mean ``score`` (NaN without rows)."""
        return self.sums.get(score, 0.0) / self.rows if self.rows else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "alerted": self.alerted,
            "scores": {name: counts.tolist() for name, counts in self.scores.items()},
            "sums": self.sums,
            "modes": self.modes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SliceProfile:
        scores = {name: np.asarray(counts, dtype=np.int64) for name, counts in data["scores"].items()}
        sums = {name: float(value) for name, value in data["sums"].items()}
        return cls(int(data["rows"]), int(data["alerted"]), scores, sums, dict(data["modes"]))


@dataclass
class BookProfile:
    """A scored book counted into fixed bins (see the module)."""

    bins: dict[str, Bins]
    #: the economy columns among ``bins`` (range bins, see the module)
    economy: tuple[str, ...] = ()
    rows: int = 0
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    recommended_mode: dict[str, int] = field(default_factory=dict)
    alert_level: dict[str, int] = field(default_factory=dict)
    slices: dict[str, dict[str, SliceProfile]] = field(default_factory=dict)
    snapshots: list[str] = field(default_factory=list)  # first and last snapshot date seen
    #: per level score: the sum and the sum of squares of its values (mean and spread)
    moments: dict[str, list[float]] = field(default_factory=dict)
    #: per level score: the reference's values at :data:`TAIL_QUANTILES` (empty: not kept)
    tail_edges: dict[str, list[float]] = field(default_factory=dict)
    #: per level score: rows above each of its ``tail_edges``
    tail_counts: dict[str, list[int]] = field(default_factory=dict)
    #: per numeric input: the values present, their sum and their sum of squares
    input_moments: dict[str, list[float]] = field(default_factory=dict)

    def empty_like(self) -> BookProfile:
        """The same bins and tail edges, nothing counted: what a current book is counted into."""
        return BookProfile(self.bins, self.economy, tail_edges=self.tail_edges)

    def mean(self, score: str) -> float:
        """The mean ``score`` of the rows counted (NaN without rows or without its moments)."""
        if not self.rows:
            return float("nan")
        if score in self.moments:
            return self.moments[score][0] / self.rows
        totals = [sum(part.sums.get(score, 0.0) for part in parts.values()) for parts in self.slices.values()]
        return totals[0] / self.rows if totals else float("nan")

    def spread(self, score: str) -> float:
        """The standard deviation of ``score`` over the rows counted (NaN when not kept)."""
        if self.rows < 2 or score not in self.moments:
            return float("nan")
        total, squares = self.moments[score]
        variance = (squares - total * total / self.rows) / (self.rows - 1)
        return float(np.sqrt(max(variance, 0.0)))

    def input_level(self, name: str) -> tuple[int, float, float]:
        """A numeric input's values present, mean and standard deviation (NaN when not kept)."""
        count, total, squares = self.input_moments.get(name, (0, 0.0, 0.0))
        count = int(count)
        if count < 2:
            return count, float("nan"), float("nan")
        variance = (squares - total * total / count) / (count - 1)
        return count, total / count, float(np.sqrt(max(variance, 0.0)))

    def tail_shares(self, score: str) -> list[float]:
        """The share of rows above each of the reference's upper quantiles of ``score``."""
        counts = self.tail_counts.get(score)
        if not self.rows or counts is None:
            return []
        return [count / self.rows for count in counts]

    def add(self, inputs: pd.DataFrame, advice: pd.DataFrame) -> None:
        """Count one chunk: ``inputs`` (the rows scored) and ``advice`` (their scores, same order)."""
        if len(inputs) != len(advice):
            raise ValueError(f"{len(inputs)} input rows but {len(advice)} rows of advice")
        self.rows += len(inputs)
        for name, bins in self.bins.items():
            source = advice if name in SCORE_COLUMNS else inputs
            if name not in source:
                continue
            counts = bins.count(source[name].to_numpy())
            self.counts[name] = self.counts.get(name, 0) + counts
        for name, bins in self.bins.items():
            if bins.kind != "numeric" or name in SCORE_COLUMNS or name in self.economy or name not in inputs:
                continue
            numbers = pd.to_numeric(inputs[name], errors="coerce").to_numpy(dtype=np.float64)
            numbers = numbers[np.isfinite(numbers)]
            count, total, squares = self.input_moments.get(name, [0, 0.0, 0.0])
            self.input_moments[name] = [
                count + numbers.size,
                total + float(numbers.sum()),
                squares + float(np.square(numbers).sum()),
            ]
        for score in LEVEL_SCORES:
            if score not in advice:
                continue
            values = advice[score].to_numpy(dtype=np.float64)
            total, squares = self.moments.get(score, [0.0, 0.0])
            self.moments[score] = [total + float(values.sum()), squares + float(np.square(values).sum())]
            if score in self.tail_edges:
                above = [int((values > edge).sum()) for edge in self.tail_edges[score]]
                before = self.tail_counts.get(score, [0] * len(above))
                self.tail_counts[score] = [a + b for a, b in zip(before, above, strict=True)]
        _add_counts(self.recommended_mode, advice["recommended_mode"])
        _add_counts(self.alert_level, advice["alert_level"])
        if "snapshot_date" in inputs and len(inputs):
            dates = pd.to_datetime(inputs["snapshot_date"], errors="coerce").dropna()
            if len(dates):
                seen = [*self.snapshots, dates.min().strftime("%Y-%m-%d"), dates.max().strftime("%Y-%m-%d")]
                self.snapshots = [min(seen), max(seen)]
        alerted = (advice["alert_level"].astype(str) != "none").to_numpy()
        for dimension in SLICE_COLUMNS:
            if dimension not in inputs:
                continue
            groups = inputs[dimension].astype(object).where(inputs[dimension].notna(), "(missing)")
            codes, labels = pd.factorize(groups.to_numpy())
            for code, label in enumerate(labels):
                rows = codes == code
                part = self.slices.setdefault(dimension, {}).setdefault(str(label), SliceProfile())
                part.rows += int(rows.sum())
                part.alerted += int(alerted[rows].sum())
                for score in SLICE_SCORES:
                    values = advice[score].to_numpy(dtype=np.float64)[rows]
                    part.scores[score] = part.scores.get(score, 0) + self.bins[score].count(values)
                    part.sums[score] = part.sums.get(score, 0.0) + float(values.sum())
                _add_counts(part.modes, advice["recommended_mode"][rows])

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "snapshots": self.snapshots,
            "bins": {name: bins.to_dict() for name, bins in self.bins.items()},
            "economy": list(self.economy),
            "counts": {name: counts.tolist() for name, counts in self.counts.items()},
            "recommended_mode": self.recommended_mode,
            "alert_level": self.alert_level,
            "slices": {
                dimension: {label: part.to_dict() for label, part in parts.items()}
                for dimension, parts in self.slices.items()
            },
            "moments": self.moments,
            "tail_edges": self.tail_edges,
            "tail_counts": self.tail_counts,
            "input_moments": self.input_moments,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BookProfile:
        return cls(
            bins={name: Bins.from_dict(bins) for name, bins in data["bins"].items()},
            economy=tuple(data["economy"]),
            rows=int(data["rows"]),
            counts={name: np.asarray(counts, dtype=np.int64) for name, counts in data["counts"].items()},
            recommended_mode=dict(data["recommended_mode"]),
            alert_level=dict(data["alert_level"]),
            slices={
                dimension: {label: SliceProfile.from_dict(part) for label, part in parts.items()}
                for dimension, parts in data["slices"].items()
            },
            snapshots=list(data["snapshots"]),
            # kept by references registered since levels are monitored; absent from older ones
            moments={name: [float(v) for v in values] for name, values in data.get("moments", {}).items()},
            tail_edges={
                name: [float(v) for v in values] for name, values in data.get("tail_edges", {}).items()
            },
            tail_counts={
                name: [int(v) for v in values] for name, values in data.get("tail_counts", {}).items()
            },
            input_moments={
                name: [float(v) for v in values] for name, values in data.get("input_moments", {}).items()
            },
        )


def _add_counts(counts: dict[str, int], values: pd.Series) -> None:
    for key, value in pd.Series(values).astype(str).value_counts().items():
        counts[str(key)] = counts.get(str(key), 0) + int(value)


def range_bins(values: np.ndarray) -> Bins:
    """Below, within and above the range of ``values`` (then missing): an economy column's bins."""
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").dropna().to_numpy(dtype=np.float64)
    if numbers.size == 0:
        return Bins("numeric")
    low, high = float(numbers.min()), float(numbers.max())
    return Bins("numeric", edges=(np.nextafter(low, -np.inf), high))


def fit_profile(
    inputs: pd.DataFrame,
    advice: pd.DataFrame,
    *,
    bins: int = 10,
    score_edges: dict[str, tuple[float, ...]] | None = None,
) -> BookProfile:
    """Bins fixed on these rows (deciles, categories) and the rows counted into them.

    ``score_edges``: cut points for a score instead of its deciles; the PD is cut at the master
    scale's grade bounds (:func:`master_scale_edges`): its deciles on a book span five orders of
    magnitude, four of them below 0.05%, where a shift matters least.
    """
    score_edges = score_edges or {}
    fitted = {
        name: fit_bins(inputs[name].to_numpy(), categorical=_is_categorical(name), bins=bins)
        for name in profiled_inputs(list(inputs.columns))
    }
    economy = economy_inputs(list(inputs.columns))
    fitted |= {name: range_bins(inputs[name].to_numpy()) for name in economy}
    fitted |= {
        name: Bins("numeric", edges=tuple(score_edges[name]))
        if name in score_edges
        else fit_bins(advice[name].to_numpy(), categorical=False, bins=bins)
        for name in SCORE_COLUMNS
        if name in advice
    }
    tails = {
        score: [float(edge) for edge in np.quantile(advice[score].to_numpy(dtype=np.float64), TAIL_QUANTILES)]
        for score in LEVEL_SCORES
        if score in advice and len(advice)
    }
    profile = BookProfile(fitted, tuple(economy), tail_edges=tails)
    profile.add(inputs, advice)
    return profile


@dataclass
class MonitoringReference:
    """The training-time profile and the models' development figures (evaluation rows)."""

    profile: BookProfile
    #: model name (``default``, ``churn``) -> figures on its evaluation rows: auc, ece, ...
    development: dict[str, dict[str, float]]
    format: int = REFERENCE_FORMAT

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        content = {"format": self.format, "profile": self.profile.to_dict(), "development": self.development}
        path.write_text(json.dumps(content) + "\n")
        return path


def load_reference(path: str | os.PathLike[str]) -> MonitoringReference:
    """Read what :meth:`MonitoringReference.save` wrote (plain JSON: nothing is executed).

    Raises:
        ValueError: the file is of another format.
    """
    content = json.loads(Path(path).read_text())
    if content.get("format") != REFERENCE_FORMAT:
        raise InputError(f"{path}: monitoring reference format {content.get('format')!r}, expected 1")
    return MonitoringReference(
        BookProfile.from_dict(content["profile"]),
        {name: dict(figures) for name, figures in content["development"].items()},
    )
