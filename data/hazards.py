"""Monthly default and churn hazards of the simulated book, and the 12-month oracle.

The simulation and the oracle columns share these functions, so the true probabilities
are computed from exactly the rules that draw the outcomes.

Each facility is, every month, in one delinquency state: 0 current, 1 = 1-29 days past
due, 2 = 30-59, 3 = 60-89. In the month after a snapshot it moves to one of six outcomes:
the four states, ``DEFAULT`` (rolling past 90 days, or a distressed restructuring) or
``CHURN`` (the relationship ends). The move depends on two scores computed from columns
the row shows, plus the economic cycle:

- the credit score ``z`` (log-odds of falling behind) from rating, leverage, coverage,
  utilization and its trend, covenant breaches, project delay, segment, industry and
  market (:func:`credit_score`), shifted by ``CYCLE_ON_CREDIT x cycle``;
- the churn score ``w`` (log-odds of leaving this month) from the mode applied,
  complaints, engagement, products, tenure, margin, rating and segment
  (:func:`churn_score`), shifted by ``CYCLE_ON_CHURN x cycle``.

The relationship mode matters: responsible mode cures more delinquencies (lower default
risk, lower loss) and keeps more clients; basic mode loses more clients.

The 12-month probabilities (:func:`twelve_month_probabilities`) run this six-state chain
forward exactly for 12 months from a row's delinquency state, with a score for each month
and the known cycle path. :mod:`crm_modes.data.oracle` feeds it the expected path of the
scores, which makes the oracle columns.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from crm_modes.data.schema import INDUSTRIES, MARKETS, MODES, SEGMENTS

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

N_DELINQUENCY_STATES = 4
DEFAULT, CHURN = 4, 5
N_OUTCOMES = 6

#: Lower bound of days past due of each delinquency state; state k covers [k_low, next_low).
STATE_DPD_LOW = np.array([0, 1, 30, 60])
STATE_DPD_HIGH = np.array([0, 29, 59, 89])

INDUSTRY_RISK = dict(
    zip(INDUSTRIES, (0.15, 0.35, 0.10, -0.25, 0.40, 0.05, 0.30, 0.20, -0.10, 0.10), strict=True)
)
SEGMENT_RISK = dict(zip(SEGMENTS, (0.45, 0.10, -0.25, -0.40), strict=True))
MARKET_RISK = dict(zip(MARKETS, (0.0, -0.10, 0.35), strict=True))
#: Share of delinquencies that cure each month when they neither roll nor restructure.
CURE_SHARE = dict(zip(MODES, (0.45, 0.55, 0.70), strict=True))
MODE_CHURN = dict(zip(MODES, (0.45, 0.0, -0.60), strict=True))
SEGMENT_CHURN = dict(zip(SEGMENTS, (0.30, 0.10, -0.10, -0.20), strict=True))
#: Coefficients (and caps) of the short-lived readings in the scores; the oracle projects them.
CREDIT_ON_UTILIZATION_RISE = 1.50
CHURN_ON_CONTACTS, CONTACTS_CAP = -0.05, 15.0
CHURN_ON_COMPLAINTS, COMPLAINTS_CAP = 0.30, 6.0
CHURN_ON_DECLINE = 1.20
CHURN_ON_TENURE, TENURE_CAP = -0.04, 20.0
#: Monthly rates by the client's highest mode (indexed like MODES): RM contacts and complaints.
CONTACT_RATE = np.array([0.15, 0.6, 2.0])
COMPLAINT_RATE = np.array([0.05, 0.03, 0.015])

CREDIT_INTERCEPT = -5.45
CHURN_INTERCEPT = -4.35
CYCLE_ON_CREDIT = 0.55
CYCLE_ON_CHURN = -0.30  # clients refinance elsewhere more easily in good times
#: Added to the credit score for the roll rate out of states 1, 2 and 3.
ROLL_OFFSET = np.array([0.0, 2.6, 3.2, 3.8])
RESTRUCTURE_OFFSET = -4.8
RESTRUCTURE_PER_STATE = 1.4
#: Churn hazard multiplier while delinquent: a client in arrears rarely refinances away.
DELINQUENT_CHURN_FACTOR = 0.3


def sigmoid(x: FloatArray) -> FloatArray:
    return 1.0 / (1.0 + np.exp(-x))


def state_from_days_past_due(days_past_due: IntArray) -> IntArray:
    """Delinquency state (0-3) implied by days past due."""
    return np.searchsorted(STATE_DPD_LOW, days_past_due, side="right") - 1


def credit_score(
    *,
    internal_rating: FloatArray,
    leverage: FloatArray,
    interest_coverage: FloatArray,
    utilization: FloatArray,
    utilization_change_3m: FloatArray,
    covenant_breaches_12m: FloatArray,
    project_delay_months: FloatArray,
    segment_risk: FloatArray,
    industry_risk: FloatArray,
    market_risk: FloatArray,
) -> FloatArray:
    """Log-odds of a current facility falling behind next month, before the cycle.

    ``project_delay_months`` is 0 for facilities that are not project finance.
    """
    return (
        CREDIT_INTERCEPT
        + 0.30 * (internal_rating - 5.0)
        + 0.30 * np.log(np.maximum(leverage, 0.1))
        - 0.25 * np.log1p(np.maximum(interest_coverage, 0.0))
        + 0.90 * (utilization - 0.5)
        + CREDIT_ON_UTILIZATION_RISE * np.maximum(utilization_change_3m, 0.0)
        + 0.30 * covenant_breaches_12m
        + 0.05 * np.minimum(project_delay_months, 24.0)
        + segment_risk
        + industry_risk
        + market_risk
    )


def engagement_decline(logins: FloatArray, logins_before: FloatArray) -> FloatArray:
    """Drop in digital logins over the last 90 days against the 90 before, in (-1, 1)."""
    return (logins_before - logins) / (logins_before + logins + 1.0)


def churn_score(
    *,
    mode_churn: FloatArray,
    segment_churn: FloatArray,
    complaints_12m: FloatArray,
    digital_logins_90d: FloatArray,
    digital_logins_prev_90d: FloatArray,
    products_held: FloatArray,
    relationship_tenure_years: FloatArray,
    margin_bps: FloatArray,
    internal_rating: FloatArray,
    rm_contacts_90d: FloatArray,
) -> FloatArray:
    """Log-odds of a current facility's relationship ending next month, before the cycle."""
    return (
        CHURN_INTERCEPT
        + mode_churn
        + segment_churn
        + CHURN_ON_COMPLAINTS * np.minimum(complaints_12m, COMPLAINTS_CAP)
        + CHURN_ON_DECLINE * engagement_decline(digital_logins_90d, digital_logins_prev_90d)
        - 0.15 * (np.minimum(products_held, 8.0) - 3.0)
        + CHURN_ON_TENURE * np.minimum(relationship_tenure_years, TENURE_CAP)
        + 0.003 * (margin_bps - 200.0)
        - 0.10 * (internal_rating - 5.0)
        + CHURN_ON_CONTACTS * np.minimum(rm_contacts_90d, CONTACTS_CAP)
    )


def outcome_probabilities(
    state: IntArray, credit: FloatArray, churn: FloatArray, cure_share: FloatArray, cycle: float
) -> FloatArray:
    """Probabilities of the six outcomes next month, one row per facility.

    Args:
        state: current delinquency state, 0-3.
        credit: :func:`credit_score` of each facility.
        churn: :func:`churn_score` of each facility.
        cure_share: :data:`CURE_SHARE` of the mode each facility is in.
        cycle: the economic cycle this month (positive is a downturn).

    Returns:
        Array of shape (n, 6) whose rows sum to 1: states 0-3, DEFAULT, CHURN.
    """
    n = state.shape[0]
    z = credit + CYCLE_ON_CREDIT * cycle
    roll = sigmoid(z + ROLL_OFFSET[state])  # from state 0 "rolling" means falling behind
    restructure = np.minimum(sigmoid(z + RESTRUCTURE_OFFSET + RESTRUCTURE_PER_STATE * state), 1.0 - roll)
    rest = 1.0 - roll - restructure
    cure = np.where(state > 0, rest * cure_share, 0.0)
    stay = rest - cure

    moves = np.zeros((n, N_OUTCOMES))
    rows = np.arange(n)
    moves[rows, state] += stay
    moves[rows, 0] += cure
    rolls_to_default = state == N_DELINQUENCY_STATES - 1
    moves[rows, np.where(rolls_to_default, DEFAULT, state + 1)] += roll
    moves[:, DEFAULT] += restructure

    leave = sigmoid(churn + CYCLE_ON_CHURN * cycle) * np.where(state > 0, DELINQUENT_CHURN_FACTOR, 1.0)
    survive = 1.0 - moves[:, DEFAULT]
    moves[:, :N_DELINQUENCY_STATES] *= (1.0 - leave)[:, None]
    moves[:, CHURN] = survive * leave
    return moves


def twelve_month_probabilities(
    state: IntArray,
    credit: FloatArray,
    churn: FloatArray,
    cure_share: FloatArray,
    cycle_path: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Exact 12-month default and churn probabilities of the six-state chain.

    The same transitions as :func:`outcome_probabilities`, run forward on the
    distribution over delinquency states, one month at a time; each month needs one
    exponential of the credit score and one of the churn score for all four states
    (``sigmoid(z + k) = 1 / (1 + exp(-z) exp(-k))``).

    Args:
        state, cure_share: as for :func:`outcome_probabilities`.
        credit, churn: the scores of :func:`outcome_probabilities`, either one per facility
            (held for the 12 months) or shape (n, 12), one per facility and month.
        cycle_path: shape (n, 12), the cycle in each of the 12 months after each snapshot.

    Returns:
        ``(default_probability, churn_probability)``: probability of reaching DEFAULT,
        respectively CHURN, within 12 months.
    """
    defaulted, churned = twelve_month_probabilities_by_mode(
        state, credit, churn[None], np.asarray(cure_share)[None], cycle_path
    )
    return defaulted[0], churned[0]


def twelve_month_probabilities_by_mode(
    state: IntArray,
    credit: FloatArray,
    churn: FloatArray,
    cure_share: FloatArray,
    cycle_path: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """:func:`twelve_month_probabilities` for several modes at once, shape (modes, n).

    The credit side of the chain (falling behind, rolling, restructuring) does not depend on
    the mode, so it is computed once per month for all modes.

    Args:
        state, credit, cycle_path: as for :func:`twelve_month_probabilities`.
        churn: shape (modes, n) or (modes, n, 12).
        cure_share: shape (modes, n), or broadcastable to it.
    """
    modes, n = churn.shape[0], state.shape[0]
    mass = [
        np.repeat((state == s).astype(np.float64)[None], modes, axis=0) for s in range(N_DELINQUENCY_STATES)
    ]
    cure_share = np.broadcast_to(cure_share, (modes, n))
    defaulted = np.zeros((modes, n))
    churned = np.zeros((modes, n))
    roll_factor = np.exp(-ROLL_OFFSET)
    restructure_factor = np.exp(
        -(RESTRUCTURE_OFFSET + RESTRUCTURE_PER_STATE * np.arange(N_DELINQUENCY_STATES))
    )
    for month in range(cycle_path.shape[1]):
        odds_against = np.exp(-(_in_month(credit, month, 2) + CYCLE_ON_CREDIT * cycle_path[:, month]))
        leave_current = sigmoid(_in_month(churn, month, 3) + CYCLE_ON_CHURN * cycle_path[:, month])
        following = [np.zeros((modes, n)) for _ in range(N_DELINQUENCY_STATES)]
        for s in range(N_DELINQUENCY_STATES):
            if not mass[s].any():
                continue
            roll = 1.0 / (1.0 + odds_against * roll_factor[s])
            restructure = np.minimum(1.0 / (1.0 + odds_against * restructure_factor[s]), 1.0 - roll)
            rest = 1.0 - roll - restructure
            to_default = restructure + roll if s == N_DELINQUENCY_STATES - 1 else restructure
            leave = leave_current * DELINQUENT_CHURN_FACTOR if s > 0 else leave_current
            stays = mass[s] * (1.0 - leave)
            defaulted += mass[s] * to_default
            churned += mass[s] * (1.0 - to_default) * leave
            if s > 0:
                cure = stays * rest * cure_share
                following[0] += cure
                following[s] += stays * rest - cure
            else:
                following[s] += stays * rest
            if s < N_DELINQUENCY_STATES - 1:
                following[s + 1] += stays * roll
        mass = following
    return defaulted, churned


def _in_month(score: FloatArray, month: int, ndim_by_month: int) -> FloatArray:
    """The scores of one month: ``score[..., month]`` when it has a month axis."""
    return score[..., month] if score.ndim == ndim_by_month else score
