"""Which client each row belongs to: what folds, resamples and standard errors keep together (pure)."""

from __future__ import annotations

import numpy as np
import pandas as pd

GROUP_COLUMN = "client_id"


def client_groups(rows: pd.DataFrame) -> np.ndarray:
    """The client of each row, what folds and bootstrap resamples keep together (each row its own
    group where the rows do not say)."""
    return rows[GROUP_COLUMN].to_numpy() if GROUP_COLUMN in rows else np.arange(len(rows))
