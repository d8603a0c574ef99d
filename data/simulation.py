"""The monthly simulation of a synthetic loan book: clients, facilities, and month after month.

Deterministic for a random generator's state (:func:`crm_modes.data.generator.generate_book`
makes it from the seed):

1. **Clients** get a segment, industry, market, revenue (log-normal by segment), age,
   tenure, products held and a latent credit quality ``q`` (higher is better). A client whose
   first facility opens during the history is a new relationship: its tenure starts at 0 and
   its age is drawn as of that month, so the book's tenure and age mix stay stationary. ``q``
   drifts every month: mean reversion to the client's own level, the economic cycle, an
   industry shock shared by all clients of the industry, and idiosyncratic noise. The
   client's financial ratios and (quarterly reviewed) internal rating are readings of
   ``q`` with a client-specific bias; ``q`` itself is never written.
2. **Facilities** get a product that depends on the segment, and terms that depend on
   the product (amount relative to revenue, term, collateral, margin, covenants,
   stakeholders, customization). The mode the bank applies (``assigned_mode``) is the
   noiseless policy of :mod:`crm_modes.data.committee_rule` with human noise: a share
   ``mode_noise`` of facilities gets one of the two other modes at random.
3. **Months**: after a burn-in (so rolling 12-month figures are filled), every month each
   live facility writes one row with point-in-time behaviour (utilization and its
   3-month change, days past due, worst days past due and covenant breaches over the last
   12 months; project progress and delay for project finance), then moves to its next
   delinquency state, defaults or churns with the probabilities of
   :func:`crm_modes.data.hazards.outcome_probabilities`. A defaulted or churned facility
   writes no more rows; a matured one is renewed in place.

The economic cycle is ``CYCLE_AMPLITUDE x sin(2 pi (t + phase) / CYCLE_MONTHS)`` with a
phase drawn from the seed; positive values are downturns. Nobody observes the cycle itself:
every row carries ``gdp_growth``, the GDP growth a statistics office would have published
one month before the snapshot, ``GDP_TREND - GDP_ON_CYCLE x cycle`` plus a measurement
error drawn once per month, and ``gdp_growth_change_12m``, that figure less the one published a
year before (the signals a point-in-time model reads the phase and its direction from). A
scenario (:mod:`crm_modes.data.scenarios`) changes the cycle and the affected clients'
credit quality from its departure on.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from crm_modes.data import hazards
from crm_modes.data.committee_rule import policy_mode
from crm_modes.data.scenarios import SCENARIOS, Scenario
from crm_modes.data.schema import (
    CUSTOMIZATIONS,
    INDUSTRIES,
    MACRO_CHANGE_MONTHS,
    MARKETS,
    MODES,
    PRODUCTS,
    REGIONS,
    SEGMENTS,
)

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Seven years of monthly snapshots: with the 12-month label horizon and a 12-month
#: out-of-time evaluation, the training years still span most of one economic cycle
#: (CYCLE_MONTHS), so a model can learn how the published macro signal and its direction move
#: the risks (a longer history, measured: docs/decisions/026-the-economy-s-direction.md).
HISTORY_MONTHS = 84
BURN_IN_MONTHS = 12
LABEL_HORIZON_MONTHS = 12
FIRST_SNAPSHOT = "2020-01-31"
CYCLE_AMPLITUDE = 0.8
CYCLE_MONTHS = 72
MODE_NOISE = 0.07
#: Monthly pull of a client's latent credit quality back to its own mean (and of an industry's
#: shared level back to 0).
QUALITY_REVERSION = 0.01
#: Share of facilities on the book when the history starts; the others open during it. At the
#: book's exit rates this share is what the inflow sustains, so the book neither shrinks nor
#: ages (docs/decisions/016-a-stationary-synthetic-book.md).
ON_BOOK_AT_START = 0.3
#: Published GDP growth (percent): trend, response to the cycle, measurement error (sd).
GDP_TREND = 2.0
GDP_ON_CYCLE = 2.5
GDP_NOISE = 0.2

SEGMENT_SHARE = (0.62, 0.24, 0.10, 0.04)
#: Median annual revenue (millions) and log-sd by segment.
REVENUE_MEDIAN = (6.0, 80.0, 700.0, 6000.0)
REVENUE_SIGMA = 0.6
EXTRA_FACILITIES = (0.2, 0.4, 0.6, 0.8)  # Poisson mean of facilities beyond the first
#: P(market) by segment.
MARKET_SHARE = ((0.92, 0.05, 0.03), (0.70, 0.18, 0.12), (0.45, 0.30, 0.25), (0.10, 0.45, 0.45))
#: P(product) by segment, in PRODUCTS order.
PRODUCT_SHARE = (
    (0.42, 0.22, 0.10, 0.06, 0.00, 0.20),
    (0.05, 0.17, 0.15, 0.08, 0.15, 0.40),
    (0.00, 0.12, 0.15, 0.10, 0.28, 0.35),
    (0.00, 0.05, 0.15, 0.15, 0.30, 0.35),
)
#: Median committed amount as a share of revenue, by product.
AMOUNT_SHARE = (0.08, 0.25, 0.12, 0.08, 0.20, 0.25)
TERM_RANGE = ((12, 36), (36, 84), (12, 60), (3, 12), (36, 84), (96, 240))
COLLATERAL_RANGE = ((0.0, 0.0), (0.8, 1.5), (0.0, 0.6), (0.5, 1.0), (0.3, 1.0), (0.6, 1.3))
MARGIN_BASE = (350.0, 180.0, 150.0, 120.0, 140.0, 250.0)
COVENANT_RANGE = ((0, 0), (1, 3), (1, 3), (0, 1), (3, 6), (4, 10))
STAKEHOLDER_RANGE = ((1, 1), (1, 2), (1, 2), (2, 3), (4, 15), (3, 12))
#: P(customization) by product.
CUSTOMIZATION_SHARE = (
    (0.98, 0.02, 0.00),
    (0.70, 0.28, 0.02),
    (0.62, 0.34, 0.04),
    (0.95, 0.05, 0.00),
    (0.15, 0.79, 0.06),
    (0.00, 0.93, 0.07),
)
UTILIZATION_BASE = (0.85, 0.92, 0.55, 0.60, 0.80, 0.75)
INDUSTRY_MARGIN = (0.10, 0.07, 0.18, 0.14, 0.12, 0.11, 0.25, 0.06, 0.20, 0.09)
LOGIN_RATE = (12.0, 25.0, 40.0, 60.0)
#: P(region) of a client whose business is domestic (the five domestic units); one abroad is
#: booked by the international unit with probability INTERNATIONAL_SHARE, else like a domestic one.
DOMESTIC_REGION_SHARE = (0.25, 0.20, 0.20, 0.15, 0.20)
INTERNATIONAL_SHARE = 0.7


@dataclass(frozen=True)
class _Clients:
    segment: IntArray
    industry: IntArray
    market: IntArray
    revenue: Array
    years_in_business: IntArray
    tenure_years: Array
    products_held: IntArray
    quality_mean: Array
    quality: Array
    rating_bias: Array
    leverage_bias: Array
    coverage_bias: Array
    margin_bias: Array
    growth_bias: Array
    review_phase: IntArray


@dataclass(frozen=True)
class _Facilities:
    client: IntArray
    product: IntArray
    amount: Array
    term: IntArray
    collateral: Array
    margin_bps: Array
    covenants: IntArray
    stakeholders: IntArray
    customization: IntArray
    entry: IntArray
    months_on_book_at_entry: IntArray
    construction_months: IntArray
    utilization_base: Array
    policy: IntArray
    assigned: IntArray


def economic_cycle(months: IntArray | range, phase: float) -> Array:
    """Cycle value at month offsets ``months`` from the first snapshot (positive = downturn)."""
    t = np.asarray(months, dtype=float)
    return CYCLE_AMPLITUDE * np.sin(2.0 * np.pi * (t + phase) / CYCLE_MONTHS)


def draw_regions(rng: np.random.Generator, market: IntArray) -> IntArray:
    """The unit that books each client (index into REGIONS); see DOMESTIC_REGION_SHARE."""
    domestic = rng.choice(len(DOMESTIC_REGION_SHARE), size=market.shape[0], p=DOMESTIC_REGION_SHARE)
    abroad = (market != MARKETS.index("domestic")) & (rng.random(market.shape[0]) < INTERNATIONAL_SHARE)
    return np.where(abroad, REGIONS.index("international"), domestic)


def _draw_clients(rng: np.random.Generator, n: int) -> _Clients:
    segment = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_SHARE)
    market_cdf = np.cumsum(np.asarray(MARKET_SHARE), axis=1)[segment]
    market = (rng.random(n)[:, None] > market_cdf).sum(axis=1)
    revenue = np.asarray(REVENUE_MEDIAN)[segment] * np.exp(REVENUE_SIGMA * rng.standard_normal(n))
    quality_mean = rng.normal(0.0, 0.8, n) + np.array([-0.3, 0.0, 0.3, 0.4])[segment]
    return _Clients(
        segment=segment,
        industry=rng.integers(0, len(INDUSTRIES), n),
        market=market,
        revenue=revenue,
        years_in_business=rng.integers(1, 60, n) + 5 * segment,
        tenure_years=rng.gamma(2.0, 3.0, n),
        products_held=1 + rng.poisson(1.0 + segment, n),
        quality_mean=quality_mean,
        quality=quality_mean + rng.normal(0.0, 0.3, n),
        rating_bias=rng.normal(0.0, 0.4, n),
        leverage_bias=rng.normal(0.0, 0.25, n),
        coverage_bias=rng.normal(0.0, 0.25, n),
        margin_bias=rng.normal(0.0, 0.03, n),
        growth_bias=rng.normal(0.0, 0.04, n),
        review_phase=rng.integers(0, 3, n),
    )


def _uniform_int(rng: np.random.Generator, ranges: IntArray) -> IntArray:
    low, high = ranges[:, 0], ranges[:, 1]
    return low + np.floor(rng.random(low.shape[0]) * (high - low + 1)).astype(np.int64)


def _draw_facilities(
    rng: np.random.Generator, clients: _Clients, history_months: int, mode_noise: float
) -> _Facilities:
    per_client = 1 + rng.poisson(np.asarray(EXTRA_FACILITIES)[clients.segment])
    client = np.repeat(np.arange(per_client.shape[0]), per_client)
    n = client.shape[0]
    segment = clients.segment[client]
    product_cdf = np.cumsum(np.asarray(PRODUCT_SHARE), axis=1)[segment]
    product = np.minimum((rng.random(n)[:, None] > product_cdf).sum(axis=1), len(PRODUCTS) - 1)
    customization_cdf = np.cumsum(np.asarray(CUSTOMIZATION_SHARE), axis=1)[product]
    # Larger clients negotiate further from the standard terms.
    customization_draw = rng.random(n) ** (1.0 + 0.35 * segment)
    customization = np.minimum(
        (customization_draw[:, None] > customization_cdf).sum(axis=1), len(CUSTOMIZATIONS) - 1
    )
    amount = np.clip(
        clients.revenue[client] * np.asarray(AMOUNT_SHARE)[product] * np.exp(0.7 * rng.standard_normal(n)),
        0.01,
        1e5,
    )
    amount = np.where(product == PRODUCTS.index("unsecured_sme_credit"), np.minimum(amount, 2.0), amount)
    term = _uniform_int(rng, np.asarray(TERM_RANGE)[product])
    collateral_range = np.asarray(COLLATERAL_RANGE)[product]
    collateral = collateral_range[:, 0] + rng.random(n) * (collateral_range[:, 1] - collateral_range[:, 0])
    rating_at_origination = np.clip(np.round(5.5 - 1.6 * clients.quality[client]), 1, 10)
    margin_bps = np.clip(
        np.asarray(MARGIN_BASE)[product] + 30.0 * (rating_at_origination - 5.0) + rng.normal(0, 25, n),
        25,
        2500,
    )
    covenants = _uniform_int(rng, np.asarray(COVENANT_RANGE)[product])
    stakeholders = _uniform_int(rng, np.asarray(STAKEHOLDER_RANGE)[product])
    market = np.asarray(MARKETS, dtype=object)[clients.market[client]]
    policy = policy_mode(
        product=np.asarray(PRODUCTS, dtype=object)[product],
        facility_amount=amount,
        term_months=term,
        customization=np.asarray(CUSTOMIZATIONS, dtype=object)[customization],
        market=market,
        stakeholder_count=stakeholders,
    )
    deviates = rng.random(n) < mode_noise
    assigned = np.where(deviates, (policy + rng.integers(1, len(MODES), n)) % len(MODES), policy)
    on_book_from_start = rng.random(n) < ON_BOOK_AT_START
    entry = np.where(
        on_book_from_start, -BURN_IN_MONTHS, rng.integers(-BURN_IN_MONTHS + 1, history_months, n)
    )
    months_on_book_at_entry = np.where(on_book_from_start, np.floor(rng.random(n) * term).astype(np.int64), 0)
    return _Facilities(
        client=client,
        product=product,
        amount=amount,
        term=term,
        collateral=collateral,
        margin_bps=margin_bps,
        covenants=covenants,
        stakeholders=stakeholders,
        customization=customization,
        entry=entry,
        months_on_book_at_entry=months_on_book_at_entry,
        construction_months=rng.integers(18, 43, n),
        utilization_base=np.asarray(UTILIZATION_BASE)[product] + rng.normal(0.0, 0.08, n),
        policy=policy,
        assigned=assigned,
    )


@dataclass(frozen=True)
class _Terms:
    """What the monthly steps read and never change: per-facility risk and mode terms, and who is new."""

    client_mode: IntArray  # the highest mode the bank applies to any of the client's facilities
    client_start: IntArray  # the month the client's first facility opens
    new_client: NDArray[np.bool_]  # a relationship that starts during the history
    is_project: NDArray[np.bool_]
    segment_risk: Array
    industry_risk: Array
    market_risk: Array
    mode_churn: Array
    segment_churn: Array
    cure_share: Array


@dataclass
class _State:
    """The simulation's time-varying state, updated in place month after month."""

    quality: Array
    revenue: Array
    engagement: Array
    rating: Array
    logins: Array  # (6, clients): the last six months' digital logins
    complaints: Array  # (12, clients)
    utilization_history: Array  # (4, facilities)
    delinquency: IntArray  # the facility's delinquency state (hazards.STATE_*)
    dpd_history: IntArray  # (12, facilities)
    breaches: Array  # (12, facilities)
    delay: Array
    exit_month: IntArray
    exit_kind: IntArray


@dataclass(frozen=True)
class _ClientMonth:
    """A month's readings of every client (ratios and growth), from its latent credit quality."""

    leverage: Array
    coverage: Array
    ebitda_margin: Array
    growth: Array


@dataclass(frozen=True)
class _FacilityMonth:
    """A month's behaviour of every facility, as of its snapshot."""

    utilization: Array
    utilization_change: Array
    months_on_book: IntArray
    completion: Array
    stage: IntArray
    dpd: IntArray
    worst_dpd: IntArray
    breaches_12m: Array


def _terms(clients: _Clients, fac: _Facilities, n_clients: int, history_months: int) -> _Terms:
    client_mode = np.zeros(n_clients, dtype=np.int64)
    np.maximum.at(client_mode, fac.client, fac.assigned)
    client_start = np.full(n_clients, history_months, dtype=np.int64)
    np.minimum.at(client_start, fac.client, fac.entry)
    return _Terms(
        client_mode=client_mode,
        client_start=client_start,
        new_client=client_start > -BURN_IN_MONTHS,
        is_project=fac.product == PRODUCTS.index("project_finance"),
        segment_risk=np.asarray([hazards.SEGMENT_RISK[s] for s in SEGMENTS])[clients.segment][fac.client],
        industry_risk=np.asarray([hazards.INDUSTRY_RISK[i] for i in INDUSTRIES])[clients.industry][
            fac.client
        ],
        market_risk=np.asarray([hazards.MARKET_RISK[m] for m in MARKETS])[clients.market][fac.client],
        mode_churn=np.asarray([hazards.MODE_CHURN[m] for m in MODES])[fac.assigned],
        segment_churn=np.asarray([hazards.SEGMENT_CHURN[s] for s in SEGMENTS])[clients.segment][fac.client],
        cure_share=np.asarray([hazards.CURE_SHARE[m] for m in MODES])[fac.assigned],
    )


def _initial_state(rng: np.random.Generator, clients: _Clients, fac: _Facilities) -> _State:
    n_clients, n_fac = clients.segment.shape[0], fac.client.shape[0]
    engagement = rng.normal(0.0, 0.4, n_clients)
    utilization = np.clip(fac.utilization_base, 0.0, 1.2)
    return _State(
        quality=clients.quality.copy(),
        revenue=clients.revenue.copy(),
        engagement=engagement,
        rating=np.clip(np.round(5.5 - 1.6 * clients.quality + clients.rating_bias), 1, 10),
        logins=np.zeros((6, n_clients)),
        complaints=np.zeros((12, n_clients)),
        utilization_history=np.repeat(utilization[None, :], 4, axis=0),
        delinquency=np.zeros(n_fac, dtype=np.int64),
        dpd_history=np.zeros((12, n_fac), dtype=np.int64),
        breaches=np.zeros((12, n_fac)),
        delay=np.zeros(n_fac),
        exit_month=np.full(n_fac, np.iinfo(np.int64).max),
        exit_kind=np.full(n_fac, -1, dtype=np.int64),
    )


def _client_month(
    rng: np.random.Generator,
    step: int,
    clients: _Clients,
    state: _State,
    cycle: Array,
    industry_shocks: Array,
    drift: Array | float,
    departure: int,
) -> _ClientMonth:
    """Move every client's latent quality one month on, and read its ratios, rating, revenue and
    digital engagement from it (the rating is reviewed quarterly)."""
    c = cycle[step]
    c_previous = cycle[step - 1] if step else c
    state.quality += (
        QUALITY_REVERSION * (clients.quality_mean - state.quality)
        - 0.10 * (c - c_previous)
        + industry_shocks[step, clients.industry]
        + 0.05 * rng.standard_normal(clients.segment.shape[0])
    )
    if step >= departure:
        state.quality += drift
    quality = state.quality
    reviewed = (step % 3) == clients.review_phase
    state.rating = np.where(
        reviewed, np.clip(np.round(5.5 - 1.6 * quality + clients.rating_bias), 1, 10), state.rating
    )
    month = _ClientMonth(
        leverage=np.clip(np.exp(1.0 - 0.35 * quality + clients.leverage_bias), 0.0, 50.0),
        coverage=np.clip(np.exp(1.6 + 0.40 * quality + clients.coverage_bias) - 1.0, -50.0, 200.0),
        ebitda_margin=np.clip(
            np.asarray(INDUSTRY_MARGIN)[clients.industry] + 0.03 * quality + clients.margin_bias, -1.0, 1.0
        ),
        growth=np.clip(0.03 + 0.04 * quality - 0.05 * c + clients.growth_bias, -1.0, 5.0),
    )
    state.revenue *= np.exp(month.growth / 12.0)
    state.engagement = 0.9 * state.engagement + rng.normal(0.0, 0.22, clients.segment.shape[0])
    state.logins[step % 6] = rng.poisson(
        np.asarray(LOGIN_RATE)[clients.segment] * np.exp(state.engagement) / 3.0
    )
    return month


def _relationship_month(
    rng: np.random.Generator, step: int, live_clients: IntArray, terms: _Terms, state: _State
) -> IntArray:
    """Complaints and relationship-manager contacts this month, by the client's mode; both rise
    while a client has a facility in arrears. Returns the contacts; complaints are kept in ``state``."""
    delinquent = np.zeros(terms.client_mode.shape[0], dtype=bool)
    delinquent[live_clients] = True
    state.complaints[step % 12] = rng.poisson(
        hazards.COMPLAINT_RATE[terms.client_mode] * (1.0 + 2.0 * delinquent)
    )
    return rng.poisson(
        3.0 * hazards.CONTACT_RATE[terms.client_mode] * (1.0 + delinquent * (terms.client_mode > 0))
    )


def _facility_month(
    rng: np.random.Generator, step: int, t: int, fac: _Facilities, terms: _Terms, state: _State
) -> _FacilityMonth:
    """Every facility's behaviour this month: utilization, project progress and delay, covenant
    breaches and days past due (entrants start with a clean history)."""
    n_fac = fac.client.shape[0]
    quality = state.quality[fac.client]
    entered = fac.entry <= t
    entrants = fac.entry == t
    state.utilization_history[:, entrants] = np.clip(fac.utilization_base[entrants], 0.0, 1.2)
    state.dpd_history[:, entrants] = 0
    state.breaches[:, entrants] = 0
    target = fac.utilization_base - 0.06 * quality
    utilization = np.clip(
        0.75 * state.utilization_history[(step - 1) % 4] + 0.25 * target + rng.normal(0.0, 0.02, n_fac),
        0.0,
        1.2,
    )
    state.utilization_history[step % 4] = utilization
    utilization_change = utilization - state.utilization_history[(step - 3) % 4]
    # Matured facilities are renewed in place; project finance runs to the end of the project.
    months_since_opening = fac.months_on_book_at_entry + (t - fac.entry)
    months_on_book = np.where(terms.is_project, months_since_opening, months_since_opening % fac.term)
    under_construction = entered & terms.is_project & (months_on_book < fac.construction_months + state.delay)
    slips = under_construction & (rng.random(n_fac) < hazards.sigmoid(-2.8 - 0.8 * quality))
    state.delay += slips
    planned_end = fac.construction_months + state.delay
    completion = np.minimum(1.0, months_on_book / planned_end)
    stage = np.where(completion < 1.0, 0, np.where(months_on_book < planned_end + 12, 1, 2))
    breach_p = hazards.sigmoid(-5.0 - 1.1 * quality + 0.12 * fac.covenants)
    state.breaches[step % 12] = (fac.covenants > 0) & (rng.random(n_fac) < breach_p)
    low, high = hazards.STATE_DPD_LOW[state.delinquency], hazards.STATE_DPD_HIGH[state.delinquency]
    dpd = low + np.floor(rng.random(n_fac) * (high - low + 1)).astype(np.int64)
    state.dpd_history[step % 12] = dpd
    return _FacilityMonth(
        utilization=utilization,
        utilization_change=utilization_change,
        months_on_book=months_on_book,
        completion=completion,
        stage=stage,
        dpd=dpd,
        worst_dpd=state.dpd_history.max(axis=0),
        breaches_12m=state.breaches.sum(axis=0),
    )


def _exits(
    rng: np.random.Generator,
    t: int,
    idx: IntArray,
    credit: Array,
    churn: Array,
    c: float,
    terms: _Terms,
    state: _State,
) -> None:
    """Move every live facility to its next delinquency state, or out of the book (default, churn)."""
    moves = hazards.outcome_probabilities(state.delinquency[idx], credit, churn, terms.cure_share[idx], c)
    draw = rng.random(idx.shape[0])
    outcome = (draw[:, None] > np.cumsum(moves, axis=1)).sum(axis=1)
    outcome = np.minimum(outcome, hazards.N_OUTCOMES - 1)
    exits = outcome >= hazards.DEFAULT
    state.exit_month[idx[exits]] = t + 1
    state.exit_kind[idx[exits]] = outcome[exits]
    state.delinquency[idx[~exits]] = outcome[~exits]


def simulate_book(
    rng: np.random.Generator,
    n_clients: int,
    history_months: int,
    mode_noise: float,
    *,
    scenario: Scenario = SCENARIOS["none"],
    gdp_noise: Array | None = None,
) -> dict[str, np.ndarray]:
    """Run the monthly simulation; return row-level arrays (time-major) and exits.

    ``scenario`` changes the cycle and the affected clients' credit quality from its departure
    step on; ``gdp_noise``: the published-GDP errors to use (default: drawn after the simulation).
    The random draws come in a fixed order (clients, facilities, the cycle's phase, industry
    shocks, engagement, then month by month), so the same generator state gives the same book.
    """
    clients = _draw_clients(rng, n_clients)
    fac = _draw_facilities(rng, clients, history_months, mode_noise)
    total_months = BURN_IN_MONTHS + history_months
    departure = total_months - scenario.months  # the step of the scenario's first snapshot
    phase = rng.uniform(0.0, CYCLE_MONTHS)
    cycle = economic_cycle(range(-BURN_IN_MONTHS, history_months + LABEL_HORIZON_MONTHS), phase)
    cycle = scenario.cycle(cycle, departure)
    # the year before the burn-in, for the published growth's change over a year (no scenario departs
    # that early)
    earlier = economic_cycle(range(-BURN_IN_MONTHS - MACRO_CHANGE_MONTHS, -BURN_IN_MONTHS), phase)
    drift = scenario.quality_drift * scenario.affected(clients.industry)
    industry_shocks = scenario.industry_shocks(
        rng.normal(0.0, 0.03, (total_months, len(INDUSTRIES))), 1.0 - QUALITY_REVERSION, departure
    )
    terms = _terms(clients, fac, n_clients, history_months)
    state = _initial_state(rng, clients, fac)
    recorded: dict[str, list[np.ndarray]] = defaultdict(list)
    for step in range(total_months):
        t = step - BURN_IN_MONTHS
        month = _client_month(rng, step, clients, state, cycle, industry_shocks, drift, departure)
        idx = np.flatnonzero((fac.entry <= t) & (state.exit_month > t))
        cl = fac.client[idx]
        contacts = _relationship_month(rng, step, cl[state.delinquency[idx] > 0], terms, state)
        behaviour = _facility_month(rng, step, t, fac, terms, state)
        snap = _Snapshot(t, idx, cl, month, _readings(step, t, clients, terms, state), behaviour, contacts)
        credit, churn = _hazard_scores(snap, clients, fac, terms, state)
        if t >= 0:
            _record_month(recorded, snap, clients, fac, state, credit, churn)
        if t < history_months - 1:
            _exits(rng, t, idx, credit, churn, cycle[step], terms, state)
    return _book_arrays(
        recorded, rng, (earlier, cycle), gdp_noise, history_months, clients, fac, terms, state
    )


@dataclass(frozen=True)
class _Readings:
    """What the bank reads of every client this month from the recent past: tenure, age,
    digital logins over 90 days (and the 90 days before) and complaints over 12 months."""

    tenure: Array
    years_in_business: IntArray
    logins_90d: Array
    logins_prev_90d: Array
    complaints_12m: Array


@dataclass(frozen=True)
class _Snapshot:
    """One month of the live facilities (``idx``) and their clients (``cl``), as a row shows it."""

    t: int
    idx: IntArray
    cl: IntArray
    client: _ClientMonth
    readings: _Readings
    facility: _FacilityMonth
    contacts: IntArray


def _readings(step: int, t: int, clients: _Clients, terms: _Terms, state: _State) -> _Readings:
    # A client on the book from the start has banked with us for years; a client whose first
    # facility opens later is a new relationship, and its age is drawn as of that month, so
    # the book's tenure and age mix stay as they were while the early clients grow older.
    since_start = np.maximum(t - terms.client_start, 0)
    return _Readings(
        tenure=np.where(terms.new_client, since_start / 12.0, clients.tenure_years + t / 12.0),
        years_in_business=clients.years_in_business + np.where(terms.new_client, since_start // 12, t // 12),
        logins_90d=state.logins[[(step - i) % 6 for i in range(3)]].sum(axis=0),
        logins_prev_90d=state.logins[[(step - i) % 6 for i in range(3, 6)]].sum(axis=0),
        complaints_12m=state.complaints.sum(axis=0),
    )


def _hazard_scores(
    snap: _Snapshot, clients: _Clients, fac: _Facilities, terms: _Terms, state: _State
) -> tuple[Array, Array]:
    """The credit and churn scores of the live facilities, from what their rows show."""
    idx, cl, behaviour, readings = snap.idx, snap.cl, snap.facility, snap.readings
    delay_for_score = np.where(terms.is_project, state.delay, 0.0)
    credit = hazards.credit_score(
        internal_rating=state.rating[cl],
        leverage=snap.client.leverage[cl],
        interest_coverage=snap.client.coverage[cl],
        utilization=behaviour.utilization[idx],
        utilization_change_3m=behaviour.utilization_change[idx],
        covenant_breaches_12m=behaviour.breaches_12m[idx],
        project_delay_months=delay_for_score[idx],
        segment_risk=terms.segment_risk[idx],
        industry_risk=terms.industry_risk[idx],
        market_risk=terms.market_risk[idx],
    )
    churn = hazards.churn_score(
        mode_churn=terms.mode_churn[idx],
        segment_churn=terms.segment_churn[idx],
        complaints_12m=readings.complaints_12m[cl],
        digital_logins_90d=readings.logins_90d[cl],
        digital_logins_prev_90d=readings.logins_prev_90d[cl],
        products_held=clients.products_held[cl].astype(float),
        relationship_tenure_years=np.maximum(readings.tenure[cl], 0.0),
        margin_bps=fac.margin_bps[idx],
        internal_rating=state.rating[cl],
        rm_contacts_90d=snap.contacts[cl].astype(float),
    )
    return credit, churn


def _record_month(
    recorded: dict[str, list[np.ndarray]],
    snap: _Snapshot,
    clients: _Clients,
    fac: _Facilities,
    state: _State,
    credit: Array,
    churn: Array,
) -> None:
    """Append the month's row of every live facility, column by column."""
    idx, cl, client, readings, behaviour = snap.idx, snap.cl, snap.client, snap.readings, snap.facility
    columns = {
        "facility": idx,
        "month": np.full(idx.shape[0], snap.t),
        "state": state.delinquency[idx],
        "credit": credit,
        "churn": churn,
        "annual_revenue": state.revenue[cl],
        "years_in_business": readings.years_in_business[cl],
        "internal_rating": state.rating[cl].astype(np.int64),
        "leverage": client.leverage[cl],
        "interest_coverage": client.coverage[cl],
        "ebitda_margin": client.ebitda_margin[cl],
        "revenue_growth": client.growth[cl],
        "relationship_tenure_years": readings.tenure[cl],
        "rm_contacts_90d": snap.contacts[cl],
        "digital_logins_90d": readings.logins_90d[cl].astype(np.int64),
        "digital_logins_prev_90d": readings.logins_prev_90d[cl].astype(np.int64),
        "complaints_12m": readings.complaints_12m[cl].astype(np.int64),
        "exposure": (behaviour.utilization * fac.amount)[idx],
        "months_on_book": behaviour.months_on_book[idx],
        "project_stage": behaviour.stage[idx],
        "project_completion": behaviour.completion[idx],
        "project_delay_months": state.delay[idx],
        "utilization": behaviour.utilization[idx],
        "utilization_change_3m": behaviour.utilization_change[idx],
        "days_past_due": behaviour.dpd[idx],
        "worst_days_past_due_12m": behaviour.worst_dpd[idx],
        "covenant_breaches_12m": behaviour.breaches_12m[idx].astype(np.int64),
    }
    for name, values in columns.items():
        recorded[name].append(values)


#: Facility and client attributes the assembly of rows reads, beside the monthly columns.
_FACILITY_FIELDS = (
    "client",
    "product",
    "amount",
    "term",
    "collateral",
    "margin_bps",
    "covenants",
    "stakeholders",
    "customization",
    "policy",
    "assigned",
)
_CLIENT_FIELDS = ("segment", "industry", "market", "products_held")


def _book_arrays(
    recorded: dict[str, list[np.ndarray]],
    rng: np.random.Generator,
    cycles: tuple[Array, Array],
    gdp_noise: Array | None,
    history_months: int,
    clients: _Clients,
    fac: _Facilities,
    terms: _Terms,
    state: _State,
) -> dict[str, np.ndarray]:
    """The simulation's output: the monthly columns, the economy, the exits and the static terms.

    ``cycles``: the cycle in the year before the burn-in, and from the burn-in on. ``gdp_growth`` is
    the growth published for each month from the year before the burn-in on (MACRO_CHANGE_MONTHS
    before ``cycle``'s first month).
    """
    earlier, cycle = cycles
    book = {name: np.concatenate(parts) for name, parts in recorded.items()}
    book["row_facility"] = book.pop("facility")
    book["cycle"] = cycle
    # drawn after the simulation, so that the rest of the book does not depend on them; the year
    # before the burn-in's last, so that the months from the burn-in on keep the errors they had
    if gdp_noise is None:
        from_burn_in = rng.normal(0.0, GDP_NOISE, cycle.shape[0])
        gdp_noise = np.concatenate([rng.normal(0.0, GDP_NOISE, earlier.shape[0]), from_burn_in])
    book["gdp_noise"] = gdp_noise
    book["gdp_growth"] = GDP_TREND - GDP_ON_CYCLE * np.concatenate([earlier, cycle]) + gdp_noise
    book["exit_month"] = state.exit_month
    book["exit_kind"] = state.exit_kind
    book["history_months"] = np.array([history_months])
    for name in _FACILITY_FIELDS:
        book[f"fac_{name}"] = getattr(fac, name)
    book["fac_is_project"] = terms.is_project
    for name in _CLIENT_FIELDS:
        book[f"client_{name}"] = getattr(clients, name)
    return book
