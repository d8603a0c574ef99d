"""Summary of a validated book: size, period, label rates and mode mix."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from crm_modes.data.schema import MODES


@dataclass
class BookSummary:
    """Counts accumulated over validated chunks of a book; label rates over known labels only."""

    rows: int = 0
    first_snapshot: pd.Timestamp | None = None
    last_snapshot: pd.Timestamp | None = None
    label_counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # label -> (known, positive)
    mode_counts: dict[str, int] = field(default_factory=dict)

    def add(self, valid: pd.DataFrame) -> None:
        """Fold one chunk of validated rows into the summary."""
        self.rows += len(valid)
        if len(valid) and "snapshot_date" in valid:
            first, last = valid["snapshot_date"].min(), valid["snapshot_date"].max()
            self.first_snapshot = first if self.first_snapshot is None else min(first, self.first_snapshot)
            self.last_snapshot = last if self.last_snapshot is None else max(last, self.last_snapshot)
        for label in ("default_12m", "churn_12m"):
            if label in valid:
                known, positive = self.label_counts.get(label, (0, 0))
                values = valid[label].dropna()
                self.label_counts[label] = (known + len(values), positive + int(values.sum()))
        if "assigned_mode" in valid:
            counts = valid["assigned_mode"].value_counts()
            for mode in MODES:
                self.mode_counts[mode] = self.mode_counts.get(mode, 0) + int(counts.get(mode, 0))

    def label_rate(self, label: str) -> float | None:
        known, positive = self.label_counts.get(label, (0, 0))
        return positive / known if known else None

    def mode_mix(self) -> dict[str, float]:
        total = sum(self.mode_counts.values())
        return {mode: count / total for mode, count in self.mode_counts.items()} if total else {}
