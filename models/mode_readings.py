"""Readings the mode itself moves, and what they become when a facility changes mode.

A counterfactual row ("this facility served in responsible mode") is more than the same row
with ``assigned_mode`` replaced. Some of the inputs the churn model reads are *made* by the
mode: a responsible-mode relationship manager calls the client every few weeks, a basic-mode
client is called about once a quarter, and clients who are looked after complain less. Those
readings (``rm_contacts_90d``, ``complaints_12m``) are mediators of the mode's effect. An
S-learner that flips the mode and holds them at today's values measures only the mode's direct
effect, and so understates what a change of mode does (measured on the default book: the
churn effect of responsible over basic -0.099 predicted against -0.128 true for clients with
one facility, -0.066 against -0.064 where another facility already sets the client's mode).

The g-formula answer (Robins, 1986; Pearl, 2001, "natural effects") is to predict the
mediator under the new mode, then the outcome. The contact and complaint rates follow the
**client's** mode, the highest mode the bank applies to any of its facilities: moving one
facility changes the client's rates only when it moves the client's mode. So, with
``client mode = max(mode of this facility, other_facilities_mode)`` and ``level(c)`` the mean
of a reading over the training rows whose client mode is ``c`` (:func:`fit_mode_readings`)::

    reading in mode m = max(0, reading today + level(client mode with m) - level(client mode today))

Today's reading keeps what is particular to the client and moves by what the mode changes in
expectation: a client nobody called this quarter under basic mode still gets responsible
mode's calls (scaling by the ratio of the levels, which leaves a zero at zero, measured 0.905
against 0.906 of the value captured). A reading the client's mode does not change stays as it
is, and so does every reading of a row that does not say its current mode or the mode of the
client's other facilities (then only the direct effect is known). Which models read the moved
row is configuration (``advisor.mode_readings``): the churn model, whose readings are levers of
the relationship; the PD model reads contacts as a sign of past trouble (a relationship manager
calls more while a facility is in arrears), not as a cause, and measured better without it
(docs/decisions/012-mode-readings-for-churn-only.md).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from crm_modes.data.schema import MODES
from crm_modes.features.columns import Columns, Labels
from crm_modes.shared.errors import InputError

#: Categories of ``other_facilities_mode``: "none" (no other facility), then the modes.
OTHER_MODES: tuple[str, ...] = ("none", *MODES)
OTHER_COLUMN = "other_facilities_mode"
MODE_COLUMN = "assigned_mode"


@dataclass(frozen=True)
class ModeReadings:
    """Mean of each mode-driven reading at each client mode (MODES order), and who reads them.

    Attributes:
        means: reading -> its mean on the training rows at each client mode.
        models: names of the advisor's models that score the adjusted rows.
    """

    means: dict[str, tuple[float, ...]]
    models: tuple[str, ...]

    def __post_init__(self) -> None:
        for reading, levels in self.means.items():
            if len(levels) != len(MODES) or not all(np.isfinite(levels)):
                raise InputError(
                    f"mode readings: {reading!r} needs a mean for each of {list(MODES)}, got {list(levels)}"
                )

    def in_mode(self, frame: pd.DataFrame, mode: str) -> pd.DataFrame:
        """``frame`` as if every row were served in ``mode``: mode set, readings moved with it."""
        rows = Columns(frame)
        return frame.assign(**{MODE_COLUMN: mode}, **self.moved(rows, mode, *_own_and_other(rows)))

    def in_every_mode(self, rows: Columns) -> list[Columns]:
        """``rows`` as if served in each of MODES (mode set, readings moved), the modes read once."""
        own_and_other = _own_and_other(rows)
        return [
            rows.replaced(
                **{MODE_COLUMN: Labels.constant(mode, len(rows))}, **self.moved(rows, mode, *own_and_other)
            )
            for mode in MODES
        ]

    def moved(self, rows: Columns, mode: str, own: np.ndarray, other: np.ndarray) -> dict[str, np.ndarray]:
        """Each reading of ``rows`` in ``mode`` (the readings ``rows`` carry, whether they move or not)."""
        today, then = _client_modes(own, other, MODES.index(mode))
        known = (today >= 0) & (then >= 0)
        if not known.any():
            return {}
        moved = {}
        for reading, levels in self.means.items():
            if reading not in rows:
                continue
            means = np.asarray(levels)
            shift = np.zeros(len(rows))
            shift[known] = means[then[known]] - means[today[known]]
            values = rows.number(reading)
            moved[reading] = np.where(shift != 0, np.maximum(values + shift, 0.0), values)
        return moved

    def to_json(self) -> str:
        return json.dumps({"means": {k: list(v) for k, v in self.means.items()}, "models": list(self.models)})

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.write_text(self.to_json() + "\n")
        return path


def load_mode_readings(path: str | os.PathLike[str]) -> ModeReadings:
    """Read what :meth:`ModeReadings.save` wrote (plain JSON: nothing is executed)."""
    content = json.loads(Path(path).read_text())
    return ModeReadings(
        means={name: tuple(float(v) for v in levels) for name, levels in content["means"].items()},
        models=tuple(content["models"]),
    )


def client_modes(frame: pd.DataFrame, mode: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Index into MODES of the client's mode today and with this facility in ``mode``.

    ``-1`` where the row does not say its own mode or its other facilities' mode (both
    columns are optional inputs). Without ``mode`` the second array repeats the first.
    """
    return _client_modes(*_own_and_other(Columns(frame)), mode)


def _own_and_other(rows: Columns) -> tuple[np.ndarray, np.ndarray]:
    """Index into MODES of each row's own mode (-1 unknown) and its other facilities' mode
    (-1 none, -2 unknown)."""
    if MODE_COLUMN not in rows or OTHER_COLUMN not in rows:
        return np.full(len(rows), -1), np.full(len(rows), -2)
    return mode_index(rows, MODE_COLUMN, MODES), mode_index(rows, OTHER_COLUMN, OTHER_MODES) - 1


def _client_modes(own: np.ndarray, other: np.ndarray, mode: int | None) -> tuple[np.ndarray, np.ndarray]:
    known = (own >= 0) & (other >= -1)
    today = np.where(known, np.maximum(own, other), -1)
    then = today if mode is None else np.where(known, np.maximum(mode, other), -1)
    return today, then


def fit_mode_readings(frame: pd.DataFrame, readings: list[str], models: list[str]) -> ModeReadings:
    """The mean of each reading at each client mode, on ``frame`` (the training rows).

    Raises:
        ValueError: naming a reading that is not a column, or a client mode without rows.
    """
    missing = [name for name in (*readings, MODE_COLUMN, OTHER_COLUMN) if name not in frame]
    if missing:
        raise InputError(f"mode readings: the training rows lack the columns {missing}")
    today, _ = client_modes(frame)
    means: dict[str, tuple[float, ...]] = {}
    counts = np.bincount(today[today >= 0], minlength=len(MODES))
    if (counts == 0).any():
        empty = [mode for mode, count in zip(MODES, counts, strict=True) if count == 0]
        raise InputError(f"mode readings: no training row whose client is served in {empty}")
    for reading in readings:
        values = pd.to_numeric(frame[reading], errors="coerce").to_numpy(dtype=float)
        usable = (today >= 0) & np.isfinite(values)
        sums = np.bincount(today[usable], weights=values[usable], minlength=len(MODES))
        means[reading] = tuple(float(v) for v in sums / np.bincount(today[usable], minlength=len(MODES)))
    return ModeReadings(means=means, models=tuple(models))


def mode_index(rows: Columns, name: str, categories: tuple[str, ...] = MODES) -> np.ndarray:
    """Index into ``categories`` of each row's value of column ``name``; -1 where it is not one."""
    codes = rows.codes(name, _known(categories))
    return np.where(codes == len(categories), -1, codes)


@lru_cache(maxsize=8)
def _known(categories: tuple[str, ...]) -> dict[str, int]:
    return {category: position for position, category in enumerate(categories)}
