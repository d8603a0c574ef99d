"""The oracle is the best prediction of the simulated outcomes, per row and per mode.

Facility rows of one facility share their outcome, so every comparison of observed rates
with oracle means uses a standard error clustered by facility.
"""

import numpy as np
import pandas as pd
import pytest

from crm_modes.data import hazards, oracle
from crm_modes.data.generator import generate_book
from crm_modes.data.schema import MODES


@pytest.fixture(scope="module")
def known_book() -> pd.DataFrame:
    book = generate_book(100_000, seed=7)
    return book[book["churn_12m"].notna()].reset_index(drop=True)


def _clustered_z(rows: pd.DataFrame, outcome: str, column: str) -> float:
    """(observed rate - mean oracle) in standard errors clustered by facility."""
    residual = rows[f"{outcome}_12m"].astype(float) - rows[column]
    per_facility = residual.groupby(rows["facility_id"].astype(str)).sum()
    return float(residual.mean() / (np.sqrt((per_facility**2).sum()) / len(rows)))


def _quintiles(values: pd.Series) -> np.ndarray:
    jitter = np.random.default_rng(0).uniform(0.0, 1e-9, len(values))
    ranks = pd.Series(values.to_numpy(dtype=float) + jitter).rank().to_numpy()
    return np.minimum((ranks / len(ranks) * 5).astype(int), 4)


@pytest.mark.parametrize(
    "attribute", ["engagement_decline", "rm_contacts_90d", "complaints_12m", "utilization_change_3m"]
)
def test_oracle_is_calibrated_across_the_short_lived_attributes(known_book, attribute):
    """Holding a transient reading for 12 months (the old oracle) was off by up to 15 standard
    errors in the extreme quintiles of the engagement decline; the projected oracle is not."""
    if attribute == "engagement_decline":
        values = pd.Series(
            hazards.engagement_decline(
                known_book["digital_logins_90d"].to_numpy(float),
                known_book["digital_logins_prev_90d"].to_numpy(float),
            )
        )
    else:
        values = known_book[attribute]
    bins = _quintiles(values)
    for quintile in range(5):
        z = _clustered_z(known_book[bins == quintile], "churn", "oracle_churn_probability")
        assert abs(z) < 3.5, (attribute, quintile, z)


def test_counterfactual_oracle_matches_the_randomised_assignments(known_book):
    """A share of facilities gets a mode other than the policy's at random: within each policy
    mode, the rows served in another mode show the outcomes the counterfactual columns predict."""
    checked = 0
    for policy in MODES:
        for mode in MODES:
            cell = known_book[
                (known_book["oracle_policy_mode"] == policy) & (known_book["assigned_mode"] == mode)
            ]
            if len(cell) < 800:
                continue
            for outcome in ("churn", "default"):
                z = _clustered_z(cell, outcome, f"oracle_{outcome}_probability_{mode}")
                assert abs(z) < 3.5, (policy, mode, outcome, z)
                checked += 1
    assert checked >= 8


@pytest.mark.parametrize(
    ("attribute", "lag"),
    [("engagement_decline", oracle.DECLINE_LAG), ("utilization_change_3m", oracle.UTILIZATION_CHANGE_LAG)],
)
def test_lag_profiles_are_the_simulation_s_own(attribute, lag):
    """The oracle's lag profiles, re-measured on a book of another seed."""
    book = generate_book(100_000, seed=5).sort_values(["facility_id", "snapshot_date"])
    if attribute == "engagement_decline":
        book[attribute] = hazards.engagement_decline(
            book["digital_logins_90d"].to_numpy(float), book["digital_logins_prev_90d"].to_numpy(float)
        )
    today = book[attribute].to_numpy(float)
    by_facility = book.groupby("facility_id", sort=False)[attribute]
    measured = []
    for k in range(1, len(lag) + 1):
        later = by_facility.shift(-k).to_numpy(float)
        known = ~np.isnan(later)
        covariance = np.cov(today[known], later[known])
        measured.append(covariance[0, 1] / covariance[0, 0])
    np.testing.assert_allclose(measured, lag, atol=0.03)


def test_others_mode_is_the_highest_mode_of_the_client_s_other_facilities():
    from crm_modes.data.assembly import others_mode as _others_mode

    client = np.array([0, 0, 0, 1, 2, 2])
    assigned = np.array([2, 2, 0, 1, 1, 0])
    np.testing.assert_array_equal(_others_mode(client, assigned), [2, 2, 2, -1, 0, 1])
