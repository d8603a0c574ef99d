"""The 12-month oracle equals the monthly chain the simulation draws from, stepped naively."""

import numpy as np
import pytest

from crm_modes.data import hazards


def _chain_by_monthly_steps(state, credit, churn, cure_share, cycle_path):
    """Reference: push the distribution through :func:`outcome_probabilities` month by month."""
    n = state.shape[0]
    distribution = np.zeros((n, hazards.N_DELINQUENCY_STATES))
    distribution[np.arange(n), state] = 1.0
    defaulted, churned = np.zeros(n), np.zeros(n)
    for month in range(cycle_path.shape[1]):
        following = np.zeros_like(distribution)
        for from_state in range(hazards.N_DELINQUENCY_STATES):
            z = (credit[:, month] if credit.ndim == 2 else credit) + hazards.CYCLE_ON_CREDIT * cycle_path[
                :, month
            ]
            w = (churn[:, month] if churn.ndim == 2 else churn) + hazards.CYCLE_ON_CHURN * cycle_path[
                :, month
            ]
            moves = hazards.outcome_probabilities(np.full(n, from_state), z, w, cure_share, 0.0)
            mass = distribution[:, from_state]
            following += mass[:, None] * moves[:, : hazards.N_DELINQUENCY_STATES]
            defaulted += mass * moves[:, hazards.DEFAULT]
            churned += mass * moves[:, hazards.CHURN]
        distribution = following
    return defaulted, churned


@pytest.mark.parametrize("per_month", [False, True], ids=["scores held", "scores per month"])
def test_twelve_month_probabilities_equal_the_chain_stepped_month_by_month(per_month):
    rng = np.random.default_rng(7)
    n = 2_000
    state = rng.integers(0, hazards.N_DELINQUENCY_STATES, n)
    shape = (n, 12) if per_month else n
    credit = rng.normal(-5.0, 1.5, shape)
    churn = rng.normal(-4.0, 1.0, shape)
    cure_share = rng.choice(list(hazards.CURE_SHARE.values()), n)
    cycle_path = rng.normal(0.0, 0.6, (n, 12))
    fast = hazards.twelve_month_probabilities(state, credit, churn, cure_share, cycle_path)
    reference = _chain_by_monthly_steps(state, credit, churn, cure_share, cycle_path)
    np.testing.assert_allclose(fast[0], reference[0], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(fast[1], reference[1], rtol=1e-10, atol=1e-14)
    assert ((fast[0] + fast[1]) <= 1.0 + 1e-12).all()
