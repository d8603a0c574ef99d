"""Scenarios: the same book with its last months made to depart, so that monitoring meets known truth.

A scenario keeps the simulated book exactly as the seed makes it up to its departure (the
first of its last ``months`` snapshots) and then changes the economy from that month on
(``none``, the default, changes nothing: the book as the seed makes it, whose last year may
sit at any phase of the cycle, a boom or a trough):

- ``baseline``: the economy of the last 12 months eases, within six months, to the average
  of the cycle over the months before and stays there, and so does each industry's shared
  condition (the industry shocks' running level): nothing unusual happens, so monitoring it
  against its training months should flag nothing to act on;
- ``downturn``: a recession in the last year: the economic cycle climbs to twice the
  deepest downturn of the history within six months and stays there, and every client's
  credit quality erodes a little each month. Ratings, leverage, coverage and utilization
  deteriorate, published GDP growth falls below anything seen before, and defaults rise;
- ``industry_shock``: one industry (construction) is hit in the last year of an ordinary
  economy (as in ``baseline``): its clients' credit quality erodes each month (a sector-wide
  loss of orders), the rest of the book is untouched. Its ratings fall by about two and a half
  notches over the year, its ratios deteriorate and its defaults rise several times over.

Rows before the departure are the baseline book's rows (the same clients, facilities and
readings; published GDP growth included); labels and oracle columns of those rows look 12
months ahead and so see the departure, as they should.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crm_modes.data.schema import INDUSTRIES
from crm_modes.shared.errors import InputError


@dataclass(frozen=True)
class Scenario:
    """How the last ``months`` of a book depart from the baseline.

    Attributes:
        name, description: what ``crm-modes generate --scenario`` takes and says.
        months: snapshots at the end of the history that depart (0: none).
        cycle_peak: the cycle level reached (positive is a downturn; None: the book's own cycle).
        cycle_to_average: reach the average cycle of the months before the departure instead.
        ramp_months: months the cycle takes to reach ``cycle_peak`` from its level at the departure.
        quality_drift: added to the latent credit quality of the affected clients every month.
        industry: the only industry affected (None: every client).
        industries_to_average: each industry's shared condition (the running level of its
            shocks) eases over ``ramp_months`` to its average of the months before the departure.
    """

    name: str
    description: str
    months: int = 0
    cycle_peak: float | None = None
    cycle_to_average: bool = False
    ramp_months: int = 6
    quality_drift: float = 0.0
    industry: str | None = None
    industries_to_average: bool = False

    @property
    def departs(self) -> bool:
        return self.months > 0

    def cycle(self, cycle: np.ndarray, departure: int) -> np.ndarray:
        """The cycle (one value per simulated step) with this scenario's path from step ``departure`` on."""
        if not self.departs or (self.cycle_peak is None and not self.cycle_to_average):
            return cycle
        target = float(cycle[:departure].mean()) if self.cycle_to_average else self.cycle_peak
        changed = cycle.copy()
        steps = np.arange(cycle.shape[0] - departure)
        ramp = np.minimum(1.0, (steps + 1) / self.ramp_months)
        changed[departure:] = cycle[departure] + ramp * (target - cycle[departure])
        return changed

    def industry_shocks(self, shocks: np.ndarray, decay: float, departure: int) -> np.ndarray:
        """The monthly industry shocks (steps x industries) with this scenario's path from ``departure`` on.

        An industry's level follows ``level[s] = decay * level[s - 1] + shocks[s]`` (from 0); with
        ``industries_to_average`` the shocks from the departure on are those that move each level
        in a straight line, over ``ramp_months``, to its average before the departure, then hold it.
        """
        if not self.departs or not self.industries_to_average or departure <= 0:
            return shocks
        level = np.zeros_like(shocks)
        running = np.zeros(shocks.shape[1])
        for step in range(departure):
            running = decay * running + shocks[step]
            level[step] = running
        start, target = level[departure - 1], level[:departure].mean(axis=0)
        changed = shocks.copy()
        previous = start
        for step in range(departure, shocks.shape[0]):
            ramp = min(1.0, (step - departure + 1) / self.ramp_months)
            wanted = start + ramp * (target - start)
            changed[step] = wanted - decay * previous
            previous = wanted
        return changed

    def affected(self, client_industry: np.ndarray) -> np.ndarray:
        """Which clients' credit quality drifts (all, or those of ``industry``)."""
        if self.industry is None:
            return np.ones(client_industry.shape[0], dtype=bool)
        return client_industry == INDUSTRIES.index(self.industry)


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario("none", "the book as the seed makes it"),
        Scenario(
            "baseline",
            "the last 12 months in an ordinary economy: the cycle and each industry's condition ease "
            "to their averages of the months before and stay there",
            months=12,
            cycle_to_average=True,
            industries_to_average=True,
        ),
        Scenario(
            "downturn",
            "a recession in the last 12 months: the cycle at twice the deepest downturn seen, "
            "credit quality eroding; ratings, ratios and utilization deteriorate, defaults rise",
            months=12,
            cycle_peak=1.6,
            quality_drift=-0.04,
        ),
        Scenario(
            "industry_shock",
            "construction hit in the last 12 months of an ordinary economy (as baseline): its "
            "clients' credit quality erodes every month; the rest of the book untouched",
            months=12,
            cycle_to_average=True,
            industries_to_average=True,
            quality_drift=-0.15,
            industry="construction",
        ),
    )
}


def scenario_named(name: str | Scenario) -> Scenario:
    """The scenario called ``name``; raise naming the known ones otherwise."""
    if isinstance(name, Scenario):
        return name
    try:
        return SCENARIOS[name]
    except KeyError:
        raise InputError(f"unknown scenario {name!r}; known: {sorted(SCENARIOS)}") from None
