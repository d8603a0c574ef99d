"""Synthetic loan book: a vectorized monthly simulation of client facilities.

How the book is made (deterministic for a seed):

1. **Clients**, 2. **facilities** and 3. **months** are simulated (:mod:`crm_modes.data.simulation`);
4. **labels** and 5. **oracle** columns are added as the rows are assembled into the table
(:mod:`crm_modes.data.assembly`); a scenario makes the last months depart
(:mod:`crm_modes.data.scenarios`). This module ties them together: the seed, the size, the
departure.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from crm_modes.data.assembly import assemble_book
from crm_modes.data.scenarios import Scenario, scenario_named
from crm_modes.data.simulation import (
    HISTORY_MONTHS,
    LABEL_HORIZON_MONTHS,
    MODE_NOISE,
    draw_regions,
    simulate_book,
)
from crm_modes.shared.errors import InputError

__all__ = ["HISTORY_MONTHS", "LABEL_HORIZON_MONTHS", "generate_book"]


def generate_book(
    rows: int,
    seed: int,
    *,
    history_months: int = HISTORY_MONTHS,
    mode_noise: float = MODE_NOISE,
    scenario: str | Scenario = "none",
) -> pd.DataFrame:
    """Simulate a book of exactly ``rows`` client-facility snapshots.

    Args:
        rows: number of rows wanted (at least 1).
        seed: random seed; the same seed and arguments give the same book.
        history_months: months of snapshots (at least 13, so some labels are known).
        mode_noise: share of facilities whose assigned mode deviates from the policy.
        scenario: how the last months depart from the book the seed makes
            (:mod:`crm_modes.data.scenarios`). Its book holds the same facilities as the seed's book
            of ``rows`` rows, with the same rows before the departure, so its row count differs a
            little from ``rows`` (unless the departure removes so many rows that more clients are
            needed: then it is a larger simulation, cut at ``rows``, said in a warning).

    Returns:
        A DataFrame with every column of :data:`crm_modes.data.schema.SCHEMA` except
        earlier model outputs (``previous_default_probability``), in schema order, sorted
        by client, facility and snapshot date.
    """
    if rows < 1:
        raise InputError(f"rows must be at least 1, got {rows}")
    if history_months <= LABEL_HORIZON_MONTHS:
        raise InputError(f"history_months must exceed {LABEL_HORIZON_MONTHS}, got {history_months}")
    if not 0.0 <= mode_noise < 1.0:
        raise InputError(f"mode_noise must be in [0, 1), got {mode_noise}")
    scenario = scenario_named(scenario)
    if scenario.months >= history_months - LABEL_HORIZON_MONTHS:
        raise InputError(
            f"scenario {scenario.name!r} departs {scenario.months} months before the end: "
            f"history_months must exceed {scenario.months + LABEL_HORIZON_MONTHS}"
        )
    # About 30 rows per facility and 1.5 facilities per client; grow until enough rows.
    n_clients = max(8, int(rows / 30 / 1.5 * 1.3))
    while True:
        rng = np.random.default_rng([seed, n_clients])
        book = simulate_book(rng, n_clients, history_months, mode_noise)
        if book["row_facility"].shape[0] >= rows:
            break
        n_clients = int(n_clients * 1.5) + 8
    last = None
    if scenario.departs:
        undeparted_n = n_clients
        last = _last_selected(book, rows)
        book = _depart(book, scenario, rows, seed, n_clients, history_months, mode_noise)
        n_clients = int(book["n_clients"][0])
        if n_clients != undeparted_n:
            last = None  # a larger simulation: exactly ``rows`` rows of it
    # drawn from a stream of its own, so that adding it changed nothing else in the book
    book["client_region"] = draw_regions(np.random.default_rng([seed, n_clients, 1]), book["client_market"])
    return assemble_book(book, rows, through=last)


def _last_selected(book: dict[str, np.ndarray], rows: int) -> tuple[int, int]:
    """(facility, month) of the last row the book of ``rows`` rows keeps (rows go by facility, then month)."""
    order = np.lexsort((book["month"], book["row_facility"]))
    last = order[min(rows, order.shape[0]) - 1]
    return int(book["row_facility"][last]), int(book["month"][last])


def _depart(
    undeparted: dict[str, np.ndarray],
    scenario: Scenario,
    rows: int,
    seed: int,
    n_clients: int,
    history_months: int,
    mode_noise: float,
) -> dict[str, np.ndarray]:
    """The seed's simulation run again with the scenario: the same draws up to the departure, and
    the same published-GDP errors throughout (they are drawn after the simulation)."""
    noise = undeparted["gdp_noise"]
    while True:
        rng = np.random.default_rng([seed, n_clients])
        book = simulate_book(rng, n_clients, history_months, mode_noise, scenario=scenario, gdp_noise=noise)
        if book["row_facility"].shape[0] >= rows:
            book["n_clients"] = np.array([n_clients])
            return book
        warnings.warn(
            f"scenario {scenario.name!r} leaves fewer than {rows:,} rows with {n_clients:,} clients; "
            "simulating more clients, so the rows before the departure differ from the seed's book",
            stacklevel=3,
        )
        n_clients, noise = int(n_clients * 1.5) + 8, None
