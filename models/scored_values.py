"""A scored table's values, read back: what ``crm-modes allocate`` and the policy report take from
the output of ``crm-modes score``.

Kept apart from :mod:`crm_modes.models.advisor` (which writes these columns) so that reading them
back imports neither MLflow nor the models: ``crm-modes allocate`` starts in a fraction of the time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_modes.data.schema import MODES
from crm_modes.shared.errors import InputError

#: Each mode's value of a facility (millions a year), as the advisor prices it.
VALUE_COLUMNS = tuple(f"value_{mode}" for mode in MODES)
#: The standard error of each mode's value less today's (economics.move_confidence > 0; else NaN).
GAIN_ERROR_COLUMNS = tuple(f"gain_error_{mode}" for mode in MODES)


def mode_index(values: pd.Series) -> np.ndarray:
    """Index into MODES of each value (-1 where it is not a mode)."""
    return pd.Index(MODES).get_indexer(values.astype(str))


def scored_gain_errors(scores: pd.DataFrame, confidence: float) -> np.ndarray | None:
    """The gain errors of a scored table (:data:`GAIN_ERROR_COLUMNS`) where a move must beat them
    (``confidence`` > 0), else None.

    Raises:
        InputError: the scores lack them, or a row's are not finite (scored with no confidence).
    """
    if confidence <= 0:
        return None
    missing = [name for name in GAIN_ERROR_COLUMNS if name not in scores]
    if missing:
        raise InputError(f"move_confidence {confidence}: the scores lack {missing}")
    errors = scores[list(GAIN_ERROR_COLUMNS)].to_numpy(dtype=np.float64)
    unknown = int((~np.isfinite(errors)).any(axis=1).sum())
    if unknown:
        raise InputError(
            f"move_confidence {confidence}: {unknown:,} rows have no gain errors; "
            "score with a bundle whose economics set move_confidence"
        )
    return errors
