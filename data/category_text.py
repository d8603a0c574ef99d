"""How a number reads as a category label: whole numbers without a decimal point.

A category coded as numbers (a flag 0/1, a product code) reaches the project as integers from
one file and as floats from another (1 and 1.0), or as text from a CSV ("1"). The gate, the
table profile and the feature pipeline all read it as the same label, "1".
"""

from __future__ import annotations

import numpy as np


def number_labels(values: np.ndarray) -> np.ndarray:
    """Each number as label text (an object array); whole numbers without a point, NaN as None."""
    numbers = np.asarray(values, dtype=np.float64)
    whole = np.isfinite(numbers) & (np.floor(numbers) == numbers)
    text = np.where(
        whole, np.char.mod("%d", np.where(whole, numbers, 0).astype(np.int64)), numbers.astype(str)
    )
    return np.where(np.isnan(numbers), None, text.astype(object))
