"""The mode of each facility within the bank's capacity: responsible slots, RM hours, moves per run.

Responsible mode needs relationship managers' time, and a bank has only so many, often team by
team (a region, a segment); nor can it move a whole book in one month. :func:`allocate` chooses one
mode per facility to maximise the book's total value (each facility's value in each mode, less the
switching cost of leaving today's mode) within any number of :class:`Budget`\\ s. A budget limits
what the chosen modes use, in each group of facilities:

- responsible slots (:func:`responsible_slots`): a facility in responsible mode uses one;
- RM hours (:func:`rm_hours`): a facility uses its mode's hours a month;
- moves per run (:func:`moves_per_run`): a facility that leaves today's mode uses one.

With one budget (in one group or several) the allocation follows the budget's price. Each
facility's modes, from its least demanding up, form steps of extra use and extra value; the steps
of a facility's upper concave hull, taken in order of value per unit of use, solve the linear
relaxation exactly (the greedy solution of the multiple-choice knapsack). Where every step uses a
whole unit (slots, moves) that solution is integral, so the allocation is exact; with hours a
step may not fit whole, and the allocation then takes the steps that fit, at most ``gap`` below
the best. The price of the budget in a group is the value per unit of the first step left out:
what one more slot, hour or move would add. With several budgets it is a mixed-integer linear
programme solved exactly by HiGHS (:func:`scipy.optimize.milp`), its linear relaxation
(:func:`scipy.optimize.linprog`) pricing each budget; that takes seconds for ten thousand
facilities, so it is for small books. The moves are listed in the order to make them: most
valuable first.

A facility moves only where its gain beats the uncertainty of that gain (against the winner's
curse): with ``uncertainty`` (one standard error per facility and mode) and ``confidence`` k,
leaving today's mode is valued at ``value - k * uncertainty``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.optimize import LinearConstraint, linprog, milp

from crm_modes.data.schema import MODES
from crm_modes.models.economics import leaving, net_values
from crm_modes.shared.errors import InputError

RESPONSIBLE = MODES.index("responsible")
#: A budget's limit is met when what is used exceeds it by no more than this (hours are decimals).
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Budget:
    """A limit on what the chosen modes use, in each group of facilities."""

    #: the bound's name in reports and prices ("responsible", "rm_hours", "moves")
    name: str
    #: what serving a facility in each mode uses: shape (modes,), or (facilities, modes)
    use: np.ndarray
    #: what each group may use: shape (groups,)
    limit: np.ndarray
    #: the group of each facility, an index into ``limit`` (None: one group, the whole book)
    group: np.ndarray | None = None
    #: each group's name, in the order of ``limit``
    labels: tuple[str, ...] = ("book",)

    def uses(self, facilities: int, modes: int) -> np.ndarray:
        """Shape (facilities, modes): what serving each facility in each mode uses."""
        return np.broadcast_to(np.asarray(self.use, dtype=np.float64), (facilities, modes))

    def groups(self, facilities: int) -> np.ndarray:
        """The group of each facility (all 0 for a book-wide budget)."""
        if self.group is None:
            return np.zeros(facilities, dtype=np.int64)
        return np.asarray(self.group, dtype=np.int64)


def responsible_slots(
    limit: np.ndarray | int, group: np.ndarray | None = None, labels: Sequence[str] = ("book",)
) -> Budget:
    """At most ``limit`` facilities in responsible mode (in each group)."""
    use = np.zeros(len(MODES))
    use[RESPONSIBLE] = 1.0
    return Budget(
        "responsible", use, np.atleast_1d(np.asarray(limit, dtype=np.float64)), group, tuple(labels)
    )


def rm_hours(
    hours: Mapping[str, float],
    limit: np.ndarray | float,
    group: np.ndarray | None = None,
    labels: Sequence[str] = ("book",),
) -> Budget:
    """At most ``limit`` hours of relationship managers' time (in each group); a facility needs
    ``hours[mode]`` in its mode."""
    use = np.array([float(hours[mode]) for mode in MODES])
    return Budget("rm_hours", use, np.atleast_1d(np.asarray(limit, dtype=np.float64)), group, tuple(labels))


def moves_per_run(limit: int, current: np.ndarray) -> Budget:
    """At most ``limit`` facilities leave today's mode."""
    current = np.asarray(current, dtype=np.int64)
    return Budget("moves", leaving(current, len(MODES)).astype(np.float64), np.array([float(limit)]))


@dataclass(frozen=True)
class Allocation:
    """One mode per facility within the budgets, what it is worth, and the price of each budget."""

    #: the chosen mode of each facility (index into ``MODES``)
    modes: np.ndarray
    #: the total value of the book so served (switching costs deducted)
    value: float
    #: the facilities that leave today's mode, most valuable move first
    order: np.ndarray
    #: per budget, what one more unit of it would add in each group (0: it does not bind there)
    prices: dict[str, np.ndarray] = field(default_factory=dict)
    #: the best allocation within the budgets is worth at most this much more (0: exact)
    gap: float = 0.0

    def price(self, name: str) -> float:
        """What one more unit of budget ``name`` would add where it adds most (0: no such budget)."""
        prices = self.prices.get(name)
        return float(prices.max()) if prices is not None and len(prices) else 0.0

    @property
    def responsible_price(self) -> float:
        """What one more responsible slot would add (where it adds most)."""
        return self.price("responsible")

    @property
    def move_price(self) -> float:
        """What one more move per run would add."""
        return self.price("moves")


def allocate(
    values: np.ndarray,
    current: np.ndarray,
    *,
    switching_cost: float = 0.0,
    responsible: int | None = None,
    moves: int | None = None,
    budgets: Sequence[Budget] = (),
    uncertainty: np.ndarray | None = None,
    confidence: float = 0.0,
) -> Allocation:
    """The allocation of highest total value within the budgets (see the module).

    Args:
        values: shape (n, modes), each facility's 12-month value in each mode.
        current: today's mode of each facility (index into ``MODES``; -1: none yet, no move).
        responsible: at most this many in responsible mode, book-wide (None: no bound); the same as
            ``budgets=[responsible_slots(responsible)]``.
        moves: at most this many facilities leave today's mode (None: no bound); the same as
            ``budgets=[moves_per_run(moves, current)]``.
        budgets: further limits (:class:`Budget`).
        uncertainty: shape (n, modes), the standard error of each value (None: none).
        confidence: standard errors a move's gain must beat.

    Raises:
        InputError: the budgets cannot all hold (more facilities must leave responsible mode than
            the moves allowed; a group whose facilities need more than its limit in their least
            demanding modes).
    """
    values = np.asarray(values, dtype=np.float64)
    current = np.asarray(current, dtype=np.int64)
    n = len(values)
    net = net_values(values, current, switching_cost, uncertainty, confidence)
    every = list(budgets)
    if responsible is not None:
        every.append(responsible_slots(max(responsible, 0)))
    if moves is not None:
        every.append(moves_per_run(max(moves, 0), current))
    if n == 0:
        return Allocation(np.empty(0, np.int64), 0.0, np.empty(0, np.int64))
    if responsible is not None and moves is not None:
        forced = int((current == RESPONSIBLE).sum()) - max(responsible, 0)
        if forced > max(moves, 0):
            raise InputError(
                f"{forced:,} facilities must leave responsible mode to meet its bound of {responsible:,}, "
                f"more than the {moves:,} moves a run allows"
            )
    if not every:
        return _allocation(net, current, net.argmax(axis=1), {}, 0.0)
    if len(every) == 1:
        return _by_price(net, current, every[0])
    return _integer_programme(net, current, every)


def _allocation(
    net: np.ndarray, current: np.ndarray, chosen: np.ndarray, prices: dict[str, np.ndarray], gap: float
) -> Allocation:
    """The allocation of ``chosen`` modes: its value, and its moves, most valuable first."""
    moved_rows = np.flatnonzero((current >= 0) & (chosen != current))
    gains = net[moved_rows, chosen[moved_rows]] - net[moved_rows, current[moved_rows]]
    order = moved_rows[np.argsort(-gains, kind="stable")]
    total = float(net[np.arange(len(net)), chosen].sum())
    return Allocation(chosen, total, order, prices, gap)


def _hull_steps(net: np.ndarray, use: np.ndarray) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
    """Each facility's least demanding mode (the best of them), and the steps up its upper concave
    hull of (use, value): level by level, the row, the mode stepped to, the extra use and value."""
    n, k = net.shape
    rows = np.arange(n)
    least = use.min(axis=1, keepdims=True)
    at = np.where(use <= least + TOLERANCE, net, -np.inf).argmax(axis=1)
    start = at.copy()
    levels = []
    active = np.ones(n, dtype=bool)
    for _ in range(k - 1):
        more_use = use - use[rows, at][:, None]
        more_value = net - net[rows, at][:, None]
        eligible = active[:, None] & (more_use > TOLERANCE) & (more_value > 0)
        efficiency = np.where(eligible, more_value / np.where(eligible, more_use, 1.0), -np.inf)
        best = efficiency.max(axis=1)
        stepping = np.isfinite(best)
        if not stepping.any():
            break
        # of steps equally efficient, the longest: the hull has no point in the middle of a line
        tied = eligible & (efficiency >= best[:, None] * (1 - 1e-12) - 1e-15)
        to = np.where(tied, more_use, -np.inf).argmax(axis=1)
        where = np.flatnonzero(stepping)
        levels.append(
            {
                "row": where,
                "to": to[where],
                "use": more_use[where, to[where]],
                "value": more_value[where, to[where]],
            }
        )
        at = np.where(stepping, to, at)
        active &= stepping
    return start, levels


def _by_price(net: np.ndarray, current: np.ndarray, budget: Budget) -> Allocation:
    """One budget: in each group, the hull's steps taken in order of value per unit of use (see the
    module); the steps that follow one that does not fit whole are taken where they fit."""
    n, k = net.shape
    use = budget.uses(n, k)
    start, levels = _hull_steps(net, use)
    group = budget.groups(n)
    steps = {
        key: np.concatenate([level[key] for level in levels]) if levels else np.empty(0)
        for key in ("row", "to", "use", "value")
    }
    steps["level"] = (
        np.concatenate([np.full(len(level["row"]), i) for i, level in enumerate(levels)])
        if levels
        else np.empty(0)
    )
    chosen = start.copy()
    prices = np.zeros(len(budget.limit))
    gap = 0.0
    rows = np.arange(n)
    needed = np.bincount(group, weights=use[rows, start], minlength=len(budget.limit))
    for g, limit in enumerate(budget.limit):
        if needed[g] > limit + TOLERANCE:
            raise InputError(
                f"{budget.name} in {budget.labels[g]}: its facilities need {needed[g]:,.2f} in their least "
                f"demanding modes, more than its limit of {limit:,.2f}"
            )
        mine = np.flatnonzero(group[steps["row"].astype(np.int64)] == g)
        if not len(mine):
            continue
        efficiency = steps["value"][mine] / steps["use"][mine]
        order = mine[np.lexsort((steps["row"][mine], steps["level"][mine], -efficiency))]
        taken, price, shortfall = _take(steps, order, limit - needed[g])
        prices[g], gap = price, gap + shortfall
        for level in range(len(levels)):
            at_level = taken[steps["level"][taken] == level]
            chosen[steps["row"][at_level].astype(np.int64)] = steps["to"][at_level].astype(np.int64)
    return _allocation(net, current, chosen, {budget.name: prices}, gap)


def _take(steps: dict[str, np.ndarray], order: np.ndarray, room: float) -> tuple[np.ndarray, float, float]:
    """The steps taken within ``room``, in ``order`` (most value per unit first), the price (value per
    unit of the first step that does not fit whole) and how far the linear relaxation's value
    exceeds what was taken."""
    used = np.cumsum(steps["use"][order])
    whole = int(np.searchsorted(used, room + TOLERANCE, side="right"))
    taken = list(order[:whole])
    if whole == len(order):
        return np.asarray(taken, dtype=np.int64), 0.0, 0.0
    first_out = order[whole]
    left = room - (used[whole - 1] if whole else 0.0)
    price = float(steps["value"][first_out] / steps["use"][first_out])
    relaxed = left * price  # the fraction of the first step out the linear relaxation takes
    rest = order[whole:]
    if left > TOLERANCE and (steps["use"][rest] <= left + TOLERANCE).any():
        # later steps that fit whole, each after its facility's previous step
        level_of = {int(row): -1 for row in steps["row"][rest]}
        for index in np.asarray(taken, dtype=np.int64):
            level_of[int(steps["row"][index])] = int(steps["level"][index])
        for index, row, level, size in zip(
            rest.tolist(),
            steps["row"][rest].astype(np.int64).tolist(),
            steps["level"][rest].astype(np.int64).tolist(),
            steps["use"][rest].tolist(),
            strict=True,
        ):
            if size <= left + TOLERANCE and level_of.get(row, -1) == level - 1:
                taken.append(index)
                level_of[row] = level
                left -= size
                relaxed -= steps["value"][index]
    return np.asarray(taken, dtype=np.int64), price, max(relaxed, 0.0)


def _integer_programme(net: np.ndarray, current: np.ndarray, budgets: list[Budget]) -> Allocation:
    """Several budgets: exact, by HiGHS's mixed-integer solver; each budget priced per group by the
    linear relaxation's dual values."""
    n, k = net.shape
    cost = -net.ravel()  # milp minimises
    rows = np.repeat(np.arange(n), k)
    one_each = sparse.csr_array((np.ones(n * k), (rows, np.arange(n * k))), shape=(n, n * k))
    limits = []
    for budget in budgets:
        groups = np.repeat(budget.groups(n), k)
        weights = budget.uses(n, k).ravel()
        limits.append(
            LinearConstraint(
                sparse.csr_array((weights, (groups, np.arange(n * k))), shape=(len(budget.limit), n * k)),
                -np.inf,
                budget.limit + TOLERANCE,
            )
        )
    solved = milp(
        cost,
        integrality=np.ones(n * k),
        bounds=(0, 1),
        constraints=[LinearConstraint(one_each, 1, 1), *limits],
    )
    if solved.x is None:
        names = ", ".join(budget.name for budget in budgets)
        raise InputError(f"no allocation satisfies the bounds ({names}) together: {solved.message}")
    chosen = solved.x.reshape(n, k).argmax(axis=1)
    prices = _prices(cost, one_each, limits)
    return _allocation(net, current, chosen, dict(zip((b.name for b in budgets), prices, strict=True)), 0.0)


def _prices(cost: np.ndarray, one_each: sparse.csr_array, limits: list[LinearConstraint]) -> list[np.ndarray]:
    """The dual values of each budget's rows in the linear relaxation: what one more unit of it adds
    to the total value, per group."""
    relaxed = linprog(
        cost,
        A_ub=sparse.vstack([limit.A for limit in limits]),
        b_ub=np.concatenate([limit.ub for limit in limits]).astype(np.float64),
        A_eq=one_each,
        b_eq=np.ones(one_each.shape[0]),
        bounds=(0, 1),
        method="highs",
    )
    sizes = [limit.A.shape[0] for limit in limits]
    if relaxed.status != 0:
        return [np.zeros(size) for size in sizes]
    # a marginal is d(cost)/d(bound): the value of one more unit is its negative
    marginals = -np.asarray(relaxed.ineqlin.marginals, dtype=np.float64)
    return [np.maximum(part, 0.0) for part in np.split(marginals, np.cumsum(sizes)[:-1])]


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
