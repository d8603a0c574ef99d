"""Population stability: bins fixed on the reference, distributions counted into them, PSI.

The population stability index of a current distribution ``a`` against a reference ``e``
over the same bins is ``PSI = sum((a - e) * ln(a / e))``. The bins are fixed on the
reference and never move: deciles for a number (fewer when values repeat, e.g. a count that
is mostly 0), one bin per category for a category, with a bin for missing values and, for
categories, one for values the reference never saw. An empty bin gets a floor share, so a
bin empty on one side counts as a large but finite difference. Rule of thumb: below 0.10
stable, 0.10-0.25 watch, above 0.25 act. The same index over an input feature is often
called the characteristic stability index (CSI).

Everything here is pure: arrays in, numbers out. Counting is separate from the index, so a
large table is counted chunk by chunk (memory flat in its size) and the index computed once.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import pandas as pd

#: Share given to an empty bin (on either side) so that the logarithm stays finite.
DEFAULT_FLOOR = 1e-4
MISSING = "(missing)"
UNSEEN = "(unseen)"


@dataclass(frozen=True)
class Bins:
    """How one column is cut into bins, fixed on the reference.

    A numeric column: ``edges`` are the inner cut points; bin ``i`` holds values in
    ``(edges[i-1], edges[i]]``; then one bin for missing values. A categorical column: one bin
    per reference category, then one for missing values and one for unseen categories.
    """

    kind: Literal["numeric", "categorical"]
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def labels(self) -> list[str]:
        """One readable label per bin, in order."""
        if self.kind == "categorical":
            return [*self.categories, MISSING, UNSEEN]
        bounds = ["-inf", *(f"{edge:.4g}" for edge in self.edges), "inf"]
        return [f"({low}, {high}]" for low, high in pairwise(bounds)] + [MISSING]

    def count(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """How many of ``values`` fall in each bin (int64, one count per label)."""
        if self.kind == "numeric":
            numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
            missing = np.isnan(numbers)
            index = np.searchsorted(np.asarray(self.edges), numbers[~missing], side="left")
            counts = np.bincount(index, minlength=len(self.edges) + 1)
            return np.append(counts, missing.sum()).astype(np.int64)
        series = pd.Series(values)
        text = series.astype(object).where(series.notna(), None)
        codes = pd.Categorical(text, categories=list(self.categories)).codes
        seen = np.bincount(codes[codes >= 0], minlength=len(self.categories))
        missing = int(series.isna().sum())
        unseen = int((codes < 0).sum()) - missing
        return np.concatenate([seen, [missing, unseen]]).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "edges": list(self.edges), "categories": list(self.categories)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Bins:
        return cls(data["kind"], tuple(float(e) for e in data["edges"]), tuple(data["categories"]))


def fit_bins(values: pd.Series | np.ndarray, *, categorical: bool, bins: int = 10) -> Bins:
    """Bins for ``values`` (the reference): quantile cut points for numbers, categories for text.

    Numbers get at most ``bins`` bins at the reference's quantiles; a value repeated across
    a quantile makes one bin of it (the cut points are unique), so a count that is mostly 0
    gets a bin of its own for 0.
    """
    if categorical:
        series = pd.Series(values)
        categories = sorted({str(value) for value in series.dropna().unique()})
        return Bins("categorical", categories=tuple(categories))
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    numbers = numbers[~np.isnan(numbers)]
    if numbers.size == 0:
        return Bins("numeric")
    quantiles = np.quantile(numbers, np.linspace(0, 1, bins + 1)[1:-1], method="lower")
    return Bins("numeric", edges=tuple(float(edge) for edge in np.unique(quantiles)))


def shares(counts: np.ndarray) -> np.ndarray:
    """Counts as shares of their total (zeros when there is nothing)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts)


def psi(expected: np.ndarray, actual: np.ndarray, *, floor: float = DEFAULT_FLOOR) -> float:
    """Population stability index of ``actual`` shares against ``expected`` shares (same bins).

    Both are shares (or counts: they are normalized); a bin below ``floor`` on either side
    is raised to it. Bins empty on both sides add nothing.

    Example:
        >>> round(psi(np.array([0.5, 0.5]), np.array([0.6, 0.4])), 4)
        0.0405
    """
    e, a = shares(expected), shares(actual)
    used = (e > 0) | (a > 0)
    e, a = np.maximum(e[used], floor), np.maximum(a[used], floor)
    return float(np.sum((a - e) * np.log(a / e)))


def flag(value: float, watch: float, act: float) -> str:
    """``"act"``, ``"watch"`` or ``"ok"`` for a figure where higher is worse."""
    if value >= act:
        return "act"
    if value >= watch:
        return "watch"
    return "ok"
