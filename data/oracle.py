"""The simulation's 12-month truth per row and per mode: what a perfect model would predict.

A row's outcome over the next 12 months depends on its attributes in each of those months,
and several attributes the hazards read are short-lived: this month's RM contacts are one
draw around the mode's contact rate, complaints leave the 12-month window as new ones
arrive, a drop in digital logins or a rise in utilization over three months mostly
reverses. Holding the snapshot's values for the whole year (the chain of
:func:`crm_modes.data.hazards.twelve_month_probabilities` with constant scores) keeps each
transient for twelve months where it lasts one to a few; a model fitted to the outcomes
learns better, and beat such an "oracle" on the outcomes themselves.

So the oracle runs the exact six-state chain on the *expected* path of each score: month 1
with the row's own scores (the transition the simulation draws from them), months 2-12 with
each transient attribute replaced by its expected effect ``log E[exp(beta x_{t+k})]`` given
what the row shows (the hazards are close to ``exp`` of the score at these levels):

- contacts: a fresh Poisson draw each month at ``3 x CONTACT_RATE`` of the client's mode
  (doubled while delinquent, outside basic mode), so ``lambda (exp(beta) - 1)``;
- complaints in the last 12 months: each one still in the window after ``k`` months with
  probability ``(12 - k) / 12``, plus new ones at the mode's complaint rate (tripled while
  delinquent);
- engagement decline and the 3-month utilization change: the lag profile of their
  expectation (:data:`DECLINE_LAG`, :data:`UTILIZATION_CHANGE_LAG`, a property of their
  overlapping windows and of the latent processes behind them, measured on simulated
  books: the same to 0.01 for other seeds, see ``tests/data/test_oracle.py``) with the
  residual spread around it;
- tenure: one month older each month.

Slow attributes (rating, leverage, coverage, utilization's level, breaches, project delay)
keep their snapshot value, as the latent credit quality behind them is a random walk whose
expectation is today's value. The cycle path is known.

Under another mode the chain swaps the mode's own levers (churn term and cure share, from
month 1) and the contact and complaint rates of the client's mode (from month 2: this
month's contacts have happened). The client's mode is the highest mode over its
facilities, so serving one facility in a lower mode leaves the client's rates where its
other facilities keep them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from crm_modes.data import hazards
from crm_modes.data.schema import MODES

Array = NDArray[np.float64]
IntArray = NDArray[np.int64]

HORIZON = 12
CHUNK_ROWS = 50_000

#: Regression of the engagement decline ``k`` months ahead on today's (k = 1..11), and the
#: spread around it: measured on 400,000-row books of seeds 7 and 42 (identical to 0.005),
#: re-measured on another seed by the tests.
DECLINE_LAG = np.array([0.627, 0.181, -0.257, -0.232, -0.158, -0.063, -0.059, -0.056, -0.050, -0.046, -0.040])
DECLINE_SPREAD = np.array([0.170, 0.214, 0.210, 0.211, 0.214, 0.216, 0.216, 0.216, 0.216, 0.215, 0.215])
#: The same for the 3-month utilization change.
UTILIZATION_CHANGE_LAG = np.array(
    [0.561, 0.153, -0.252, -0.189, -0.141, -0.108, -0.083, -0.066, -0.048, -0.035, -0.025]
)
UTILIZATION_CHANGE_SPREAD = np.array(
    [0.0275, 0.0327, 0.0319, 0.0323, 0.0325, 0.0326, 0.0326, 0.0327, 0.0327, 0.0327, 0.0327]
)

# Coefficients of the short-lived readings in the hazards' scores.
_CONTACT = hazards.CHURN_ON_CONTACTS
_COMPLAINT = hazards.CHURN_ON_COMPLAINTS
_DECLINE = hazards.CHURN_ON_DECLINE
_UTILIZATION_RISE = hazards.CREDIT_ON_UTILIZATION_RISE
_TENURE = hazards.CHURN_ON_TENURE


@dataclass(frozen=True)
class OracleInputs:
    """What the oracle reads of each row (one entry per row)."""

    state: IntArray  #: delinquency state at the snapshot
    credit: Array  #: the row's credit score (:func:`hazards.credit_score`)
    churn: Array  #: the row's churn score in its assigned mode
    assigned: IntArray  #: index of the assigned mode
    others_mode: IntArray  #: highest mode of the client's other facilities (-1: none)
    rm_contacts_90d: Array
    complaints_12m: Array
    engagement_decline: Array
    utilization_change_3m: Array
    relationship_tenure_years: Array
    cycle_path: Array  #: (rows, 12) cycle in each month after the snapshot


def counterfactual_oracle(rows: OracleInputs) -> dict[str, Array]:
    """``oracle_{default,churn}_probability_{mode}`` of every row (see the module docstring).

    Computed in chunks of rows: the (rows, months, modes) intermediates of a whole book
    would cost more in fresh memory pages than in arithmetic.
    """
    n = rows.state.shape[0]
    parts = [
        _counterfactual_chunk(
            OracleInputs(**{f.name: getattr(rows, f.name)[start : start + CHUNK_ROWS] for f in fields(rows)})
        )
        for start in range(0, n, CHUNK_ROWS)
    ]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]} if parts else {}


def _counterfactual_chunk(rows: OracleInputs) -> dict[str, Array]:
    n = rows.state.shape[0]
    delinquent = rows.state > 0
    credit = np.empty((n, HORIZON), order="F")  # one month contiguous
    credit[:, 0] = rows.credit
    credit[:, 1:] = rows.credit[:, None] + _utilization_rise_shift(rows.utilization_change_3m)
    mode_churn = np.asarray([hazards.MODE_CHURN[mode] for mode in MODES])
    churn_without_mode = rows.churn - mode_churn[rows.assigned]
    common = churn_without_mode[:, None] + _common_churn_shift(rows)
    # month-major memory, so that each month's scores are contiguous
    churn = np.empty((HORIZON, len(MODES), n)).transpose(1, 2, 0)
    for index in range(len(MODES)):
        churn[index, :, 0] = churn_without_mode + mode_churn[index]
        later = churn[index, :, 1:]
        later[...] = common
        later += _rate_shift(rows, np.maximum(rows.others_mode, index), delinquent)
        later += mode_churn[index]
    cure_share = np.asarray([hazards.CURE_SHARE[mode] for mode in MODES])[:, None]
    default, churned = hazards.twelve_month_probabilities_by_mode(
        rows.state, credit, churn, cure_share, rows.cycle_path
    )
    columns: dict[str, Array] = {}
    for index, mode in enumerate(MODES):
        columns[f"oracle_default_probability_{mode}"] = default[index]
        columns[f"oracle_churn_probability_{mode}"] = churned[index]
    return columns


def _utilization_rise_shift(change: Array) -> Array:
    """Months 2-12: expected ``1.5 max(change, 0)`` minus today's, shape (rows, 11).

    ``E[max(x, 0)]`` of a normal ``x`` with mean ``m`` and spread ``s`` is
    ``m Phi(m / s) + s phi(m / s)``; computed in place, the arrays are large.
    """
    spread = UTILIZATION_CHANGE_SPREAD
    standardized = np.multiply(change[:, None], UTILIZATION_CHANGE_LAG / spread)  # m / s
    density = np.square(standardized)
    density *= -0.5
    np.exp(density, out=density)
    density *= spread / np.sqrt(2.0 * np.pi)  # s phi(m / s)
    expected = ndtr(standardized)
    expected *= standardized
    expected *= spread  # m Phi(m / s)
    expected += density
    expected -= np.maximum(change, 0.0)[:, None]
    expected *= _UTILIZATION_RISE
    return expected


def _common_churn_shift(rows: OracleInputs) -> Array:
    """Months 2-12, whatever the mode: today's contacts and complaint terms removed, the
    engagement decline and tenure projected; shape (rows, 11)."""
    k = np.arange(1, HORIZON)
    today = _CONTACT * np.minimum(rows.rm_contacts_90d, hazards.CONTACTS_CAP)
    today += _COMPLAINT * np.minimum(rows.complaints_12m, hazards.COMPLAINTS_CAP)
    today += _DECLINE * rows.engagement_decline
    today += _TENURE * np.minimum(rows.relationship_tenure_years, hazards.TENURE_CAP)
    still_there = (HORIZON - k) / HORIZON
    shift = np.multiply(rows.complaints_12m[:, None], np.log1p(still_there * np.expm1(_COMPLAINT)))
    shift += np.multiply(rows.engagement_decline[:, None], _DECLINE * DECLINE_LAG)
    shift += 0.5 * (_DECLINE * DECLINE_SPREAD) ** 2
    tenure = np.add(rows.relationship_tenure_years[:, None], k / 12.0)
    np.minimum(tenure, hazards.TENURE_CAP, out=tenure)
    tenure *= _TENURE
    shift += tenure
    shift -= today[:, None]
    return shift


def _rate_shift(rows: OracleInputs, client_mode: IntArray, delinquent: NDArray[np.bool_]) -> Array:
    """Months 2-12: expected effect of contacts and of new complaints at the client mode's rates."""
    k = np.arange(1, HORIZON)
    contacts = 3.0 * hazards.CONTACT_RATE[client_mode] * (1.0 + (delinquent & (client_mode > 0)))
    complaints = hazards.COMPLAINT_RATE[client_mode] * (1.0 + 2.0 * delinquent)
    shift = np.multiply(complaints[:, None], k * np.expm1(_COMPLAINT))
    shift += (contacts * np.expm1(_CONTACT))[:, None]
    return shift
