"""The mode of each facility within the bank's capacity: responsible slots and moves per run.

Responsible mode needs relationship managers' time, and a bank has only so many; nor can it move
a whole book in one month. :func:`allocate` chooses one mode per facility to maximise the book's
total value (each facility's value in each mode, less the switching cost of leaving today's mode)
under two bounds:

- ``responsible``: at most this many facilities in responsible mode;
- ``moves``: at most this many facilities leave today's mode.

With one bound, the allocation is exact by sorting: each facility's gain from the bounded
choice (a responsible slot, or a move) over its best choice without it; the largest positive
gains take the slots, and the price of the bound is the gain of the best facility left out (0
when the bound does not bind). With both bounds it is an assignment problem with two side
constraints, solved exactly as a mixed-integer linear programme by HiGHS
(:func:`scipy.optimize.milp`), its linear relaxation (:func:`scipy.optimize.linprog`) pricing the
bounds; that solver takes seconds for ten thousand facilities, so it is for small books. The
moves are listed in the order to make them: most valuable first.

A facility moves only where its gain beats the uncertainty of that gain (against the winner's
curse): with ``uncertainty`` (one standard error per facility and mode) and ``confidence`` k,
leaving today's mode is valued at ``value - k * uncertainty``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import LinearConstraint, linprog, milp

from crm_modes.data.schema import MODES
from crm_modes.shared.errors import InputError

RESPONSIBLE = MODES.index("responsible")


@dataclass(frozen=True)
class Allocation:
    """One mode per facility within the bounds, what it is worth, and the price of the bounds."""

    #: the chosen mode of each facility (index into ``MODES``)
    modes: np.ndarray
    #: the total value of the book so served (switching costs deducted)
    value: float
    #: the facilities that leave today's mode, most valuable move first
    order: np.ndarray
    #: what one more responsible slot would add to the total value (0: the bound does not bind)
    responsible_price: float
    #: what one more move per run would add (0: the bound does not bind)
    move_price: float


def _net_values(
    values: np.ndarray,
    current: np.ndarray,
    switching_cost: float,
    uncertainty: np.ndarray | None,
    confidence: float,
) -> np.ndarray:
    """Each facility's value in each mode, less the switching cost (and ``confidence`` standard
    errors) wherever the mode is not today's; a facility with no mode today pays neither."""
    net = np.array(values, dtype=np.float64)
    penalty = switching_cost + (confidence * uncertainty if uncertainty is not None else 0.0)
    return np.where(_leaving(current, net.shape[1]), net - penalty, net)


def _leaving(current: np.ndarray, modes: int) -> np.ndarray:
    """Shape (n, modes): whether serving each facility in each mode leaves today's mode (never for a
    facility with no mode today)."""
    known = current >= 0
    leaving = np.ones((len(current), modes), dtype=bool)
    leaving[np.flatnonzero(known), current[known]] = False
    leaving[~known] = False
    return leaving


def allocate(
    values: np.ndarray,
    current: np.ndarray,
    *,
    switching_cost: float = 0.0,
    responsible: int | None = None,
    moves: int | None = None,
    uncertainty: np.ndarray | None = None,
    confidence: float = 0.0,
) -> Allocation:
    """The allocation of highest total value within the bounds (see the module).

    Args:
        values: shape (n, modes), each facility's 12-month value in each mode.
        current: today's mode of each facility (index into ``MODES``; -1: none yet, no move).
        responsible: at most this many in responsible mode (None: no bound).
        moves: at most this many facilities leave today's mode (None: no bound).
        uncertainty: shape (n, modes), the standard error of each value (None: none).
        confidence: standard errors a move's gain must beat.

    Raises:
        InputError: the bounds cannot all hold (more facilities must leave responsible mode than
            the moves allowed).
    """
    values = np.asarray(values, dtype=np.float64)
    current = np.asarray(current, dtype=np.int64)
    n, k = values.shape
    net = _net_values(values, current, switching_cost, uncertainty, confidence)
    if n == 0:
        return Allocation(np.empty(0, np.int64), 0.0, np.empty(0, np.int64), 0.0, 0.0)
    if responsible is None or moves is None:
        return _one_bound(net, current, responsible, moves)
    leaving = int((current == RESPONSIBLE).sum()) - max(responsible, 0)
    if leaving > max(moves, 0):
        raise InputError(
            f"{leaving:,} facilities must leave responsible mode to meet its bound of {responsible:,}, "
            f"more than the {moves:,} moves a run allows"
        )
    cost = -net.ravel()  # milp minimises
    rows = np.repeat(np.arange(n), k)
    one_each = sparse.csr_array((np.ones(n * k), (rows, np.arange(n * k))), shape=(n, n * k))
    column = np.arange(n) * k + RESPONSIBLE
    slots = sparse.csr_array((np.ones(n), (np.zeros(n, np.int64), column)), shape=(1, n * k))
    moved = sparse.csr_array(_leaving(current, k).reshape(1, -1).astype(np.float64))
    constraints = [
        LinearConstraint(one_each, 1, 1),
        LinearConstraint(slots, -np.inf, max(responsible, 0)),
        LinearConstraint(moved, -np.inf, max(moves, 0)),
    ]
    solved = milp(cost, integrality=np.ones(n * k), bounds=(0, 1), constraints=constraints)
    if solved.x is None:
        raise InputError(f"no allocation satisfies the bounds: {solved.message}")
    chosen = solved.x.reshape(n, k).argmax(axis=1)
    responsible_price, move_price = _prices(cost, constraints)
    return _allocation(net, current, chosen, responsible_price, move_price)


def _allocation(
    net: np.ndarray, current: np.ndarray, chosen: np.ndarray, responsible_price: float, move_price: float
) -> Allocation:
    """The allocation of ``chosen`` modes: its value, and its moves, most valuable first."""
    moved_rows = np.flatnonzero((current >= 0) & (chosen != current))
    gains = net[moved_rows, chosen[moved_rows]] - net[moved_rows, current[moved_rows]]
    order = moved_rows[np.argsort(-gains, kind="stable")]
    total = float(net[np.arange(len(net)), chosen].sum())
    return Allocation(chosen, total, order, responsible_price, move_price)


def _one_bound(
    net: np.ndarray, current: np.ndarray, responsible: int | None, moves: int | None
) -> Allocation:
    """At most one bound: exact by sorting the gains the bounded choice brings (see the module)."""
    n = len(net)
    rows = np.arange(n)
    if responsible is None and moves is None:
        return _allocation(net, current, net.argmax(axis=1), 0.0, 0.0)
    if responsible is not None:
        others = net.copy()
        others[:, RESPONSIBLE] = -np.inf
        fallback = others.argmax(axis=1)  # each facility's best mode without a slot
        gains = net[:, RESPONSIBLE] - net[rows, fallback]
        limit, name = max(responsible, 0), "responsible"
    else:
        known = current >= 0
        fallback = np.where(known, current, net.argmax(axis=1))  # staying put, or no mode yet
        gains = np.where(known, net.max(axis=1) - net[rows, fallback], -np.inf)
        limit, name = max(moves or 0, 0), "moves"
    ranked = np.argsort(-gains, kind="stable")
    taking = ranked[:limit][gains[ranked[:limit]] > 0]
    chosen = fallback.copy()
    chosen[taking] = RESPONSIBLE if name == "responsible" else net[taking].argmax(axis=1)
    left = ranked[limit:]
    price = float(max(gains[left[0]], 0.0)) if len(left) and np.isfinite(gains[left[0]]) else 0.0
    return _allocation(
        net, current, chosen, price if name == "responsible" else 0.0, price if name == "moves" else 0.0
    )


def _prices(cost: np.ndarray, constraints: list[LinearConstraint]) -> tuple[float, float]:
    """The dual values of the two bounds (responsible slots, moves) in the linear relaxation: what one
    more unit of each adds to the total value."""
    equality, *bounds = constraints
    relaxed = linprog(
        cost,
        A_ub=sparse.vstack([bound.A for bound in bounds]),
        b_ub=np.concatenate([np.atleast_1d(bound.ub) for bound in bounds]).astype(np.float64),
        A_eq=equality.A,
        b_eq=np.ones(equality.A.shape[0]),
        bounds=(0, 1),
        method="highs",
    )
    if relaxed.status != 0:
        return 0.0, 0.0
    # a marginal is d(cost)/d(bound): the value of one more unit is its negative
    responsible, moves = (float(-marginal) for marginal in relaxed.ineqlin.marginals)
    return responsible, moves


def move_list(
    allocation: Allocation,
    values: np.ndarray,
    current: np.ndarray,
    *,
    switching_cost: float = 0.0,
) -> dict[str, np.ndarray]:
    """The moves of ``allocation`` in the order to make them: for each, its row, today's mode, the
    allocated mode and its gain (value in the allocated mode less today's, less the switching cost)."""
    rows = allocation.order
    today = current[rows]
    allocated = allocation.modes[rows]
    gain = values[rows, allocated] - values[rows, today] - switching_cost
    return {"row": rows, "mode_today": today, "mode_allocated": allocated, "gain": gain}
