"""Text every store and answer can hold: no NUL character, no lone surrogate.

PostgreSQL refuses NUL in text and UTF-8 cannot encode a lone surrogate (JSON's ``"\\ud800"``
parses to one), so an identifier or a note carrying either would fail far from where it came
in. The gates (batch and REST) refuse such text where it enters, naming the problem.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """What makes ``value`` unstorable (``"a NUL character"``, ``"a lone surrogate"``), or None."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    return "a NUL character" if found.group() == "\x00" else "a lone surrogate"


def storable(value: str | None) -> str | None:
    """``value`` unchanged, or a ``ValueError`` naming what no store can hold (a pydantic validator)."""
    problem = None if value is None else text_problem(value)
    if problem is not None:
        raise ValueError(f"contains {problem}, which no store can hold")
    return value


def unstorable_mask(values: pd.Series) -> np.ndarray:
    """Which of ``values`` (text, or anything) are text with a NUL character or a lone surrogate."""
    if values.dtype.kind not in "OUS" and not isinstance(values.dtype, pd.StringDtype):
        return np.zeros(len(values), dtype=bool)
    found = values.astype("string").str.contains(_UNSTORABLE.pattern, regex=True, na=False)
    return found.to_numpy(dtype=bool)
