import numpy as np
import pandas as pd
import pytest

from crm_modes.data import hazards
from crm_modes.data.committee_rule import policy_mode
from crm_modes.data.gate import validate
from crm_modes.data.generator import HISTORY_MONTHS, LABEL_HORIZON_MONTHS, generate_book
from crm_modes.data.schema import MODES, SCHEMA


def test_same_seed_same_book_and_other_seed_other_book():
    first, again, other = (
        generate_book(4_000, seed=3),
        generate_book(4_000, seed=3),
        generate_book(4_000, seed=4),
    )
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)
    assert not np.allclose(first["leverage"].to_numpy(), other["leverage"].to_numpy())


def test_a_seed_makes_the_book_it_always_made():
    """The simulation's random draws come in a fixed order: a seed's book is pinned here, so a change
    that reorders or adds a draw (even one that leaves the statistics alone) is seen."""
    book = generate_book(3000, seed=5)
    counts = {
        "rows": len(book),
        "facilities": book["facility_id"].nunique(),
        "clients": book["client_id"].nunique(),
        "defaults": int(book["default_12m"].sum()),
        "churns": int(book["churn_12m"].sum()),
        "modes": book["assigned_mode"].value_counts().to_dict(),
        "days_past_due": int(book["days_past_due"].sum()),
        "logins": int(book["digital_logins_90d"].sum()),
        "contacts": int(book["rm_contacts_90d"].sum()),
        "ratings": int(book["internal_rating"].sum()),
        "complaints": int(book["complaints_12m"].sum()),
        "breaches": int(book["covenant_breaches_12m"].sum()),
        "delay": float(book["project_delay_months"].sum()),
    }
    assert counts == {
        "rows": 3000,
        "facilities": 86,
        "clients": 63,
        "defaults": 74,
        "churns": 404,
        "modes": {"reactive": 1071, "basic": 1031, "responsible": 898},
        "days_past_due": 2857,
        "logins": 87295,
        "contacts": 8963,
        "ratings": 16543,
        "complaints": 1001,
        "breaches": 508,
        "delay": 765.0,
    }
    assert book["exposure"].sum() == pytest.approx(651591.111557, rel=1e-9)
    assert book["utilization"].mean() == pytest.approx(0.775967329213, rel=1e-9)
    assert book["gdp_growth"].mean() == pytest.approx(1.766201064385, rel=1e-9)
    assert book["gdp_growth_change_12m"].mean() == pytest.approx(-0.146033635664, rel=1e-9)
    assert book["oracle_default_probability"].mean() == pytest.approx(0.026254649873, rel=1e-9)


@pytest.mark.parametrize("rows", [1, 17, 2_500])
def test_exact_row_count_and_schema_columns(rows):
    book = generate_book(rows, seed=1)
    assert len(book) == rows
    assert list(book.columns) == [c.name for c in SCHEMA if c.name != "previous_default_probability"]


def test_generated_book_passes_the_gate(book_50k):
    result = validate(book_50k)
    assert len(result.quarantine) == 0, result.quarantine["quarantine_reason"].head().tolist()
    assert len(result.valid) == len(book_50k)


def test_label_rates_and_mode_mix_in_the_bands(book_50k):
    known = book_50k.dropna(subset=["default_12m"])
    default_rate = known["default_12m"].astype(float).mean()
    churn_rate = known["churn_12m"].astype(float).mean()
    mix = book_50k["assigned_mode"].value_counts(normalize=True)
    assert 0.01 <= default_rate <= 0.05
    assert 0.08 <= churn_rate <= 0.20
    assert 0.40 <= mix["basic"] <= 0.60
    assert 0.25 <= mix["reactive"] <= 0.40
    assert 0.10 <= mix["responsible"] <= 0.25
    assert 0.05 <= (book_50k["assigned_mode"] != book_50k["oracle_policy_mode"]).mean() <= 0.10


def test_smes_default_more_than_multinationals(book_50k):
    known = book_50k.dropna(subset=["default_12m"])
    by_segment = known.groupby("segment", observed=True)["default_12m"].apply(
        lambda s: s.astype(float).mean()
    )
    assert by_segment["sme"] > 2 * by_segment["multinational"]


def test_oracle_probabilities_match_observed_rates_per_segment(book_50k):
    known = book_50k.dropna(subset=["default_12m"])
    for label, oracle in (
        ("default_12m", "oracle_default_probability"),
        ("churn_12m", "oracle_churn_probability"),
    ):
        grouped = known.groupby("segment", observed=True)
        observed = grouped[label].apply(lambda s: s.astype(float).mean())
        predicted = grouped[oracle].mean()
        counts = grouped.size()
        # Rows of one facility share outcomes; allow four binomial standard errors on a
        # sample a tenth the size (about ten monthly rows per independent outcome).
        tolerance = 4 * np.sqrt(predicted * (1 - predicted) / (counts / 10)) + 0.002
        assert (np.abs(observed - predicted) <= tolerance).all(), pd.DataFrame(
            {"observed": observed, "predicted": predicted, "tolerance": tolerance}
        )
        overall = known[label].astype(float).mean()
        assert abs(known[oracle].mean() - overall) <= 0.15 * overall


def test_unknown_labels_exactly_where_the_window_runs_past_the_history(book_50k):
    last = book_50k["snapshot_date"].max()
    months_left = (last.year - book_50k["snapshot_date"].dt.year) * 12 + (
        last.month - book_50k["snapshot_date"].dt.month
    )
    unknown = book_50k["default_12m"].isna()
    assert (unknown == (months_left < LABEL_HORIZON_MONTHS)).all()
    assert (unknown == book_50k["churn_12m"].isna()).all()


def test_no_rows_after_default_or_churn(book_50k):
    book = book_50k.assign(month=book_50k["snapshot_date"].dt.year * 12 + book_50k["snapshot_date"].dt.month)
    last_month = book["month"].max()
    per_facility = book.groupby("facility_id", observed=True)["month"]
    # Monthly rows without gaps: a facility never comes back.
    assert (per_facility.max() - per_facility.min() + 1 == per_facility.size()).all()
    # After a positive label the facility stops within the window.
    positive = book[(book["default_12m"] == 1) | (book["churn_12m"] == 1)]
    facility_end = per_facility.max()
    assert (facility_end[positive["facility_id"]].to_numpy() - positive["month"].to_numpy() <= 11).all()
    # A facility that stops early with a known window stopped because of an event...
    ends = book[book["month"] == book["facility_id"].map(facility_end)]
    early = ends[(ends["month"] < last_month) & ends["default_12m"].notna()]
    early = early[early["facility_id"] != book["facility_id"].iloc[-1]]  # the cut at exactly N rows
    assert ((early["default_12m"] == 1) | (early["churn_12m"] == 1)).all()
    # ...and never both.
    assert not ((book["default_12m"] == 1) & (book["churn_12m"] == 1)).any()


def test_oracle_policy_mode_is_the_policy_of_the_row(small_book):
    recomputed = policy_mode(
        product=small_book["product"].astype(str).to_numpy(),
        facility_amount=small_book["facility_amount"].to_numpy(),
        term_months=small_book["term_months"].to_numpy(),
        customization=small_book["customization"].astype(str).to_numpy(),
        market=small_book["market"].astype(str).to_numpy(),
        stakeholder_count=small_book["stakeholder_count"].to_numpy(),
    )
    assert (np.asarray(MODES)[recomputed] == small_book["oracle_policy_mode"].astype(str).to_numpy()).all()


def test_project_fields_only_on_project_finance(small_book):
    is_project = small_book["product"] == "project_finance"
    for name in ("project_stage", "project_completion", "project_delay_months"):
        assert small_book.loc[~is_project, name].isna().all()
        assert small_book.loc[is_project, name].notna().all()


def test_days_past_due_states_round_trip():
    days = np.array([0, 1, 29, 30, 59, 60, 89])
    assert hazards.state_from_days_past_due(days).tolist() == [0, 1, 1, 2, 2, 3, 3]


def test_outcome_probabilities_are_distributions_and_mode_matters():
    n = 3
    state = np.array([0, 1, 3])
    credit, churn = np.full(n, -4.0), np.full(n, -4.5)
    moves = hazards.outcome_probabilities(state, credit, churn, np.full(n, 0.45), 0.3)
    assert np.allclose(moves.sum(axis=1), 1.0)
    assert (moves >= 0).all()
    responsible = hazards.outcome_probabilities(
        state, credit, churn, np.full(n, hazards.CURE_SHARE["responsible"]), 0.3
    )
    assert responsible[1, 0] > moves[1, 0]  # more cures under responsible monitoring
    pd_basic, _ = hazards.twelve_month_probabilities(
        state, credit, churn, np.full(n, 0.45), np.zeros((n, 12))
    )
    pd_resp, _ = hazards.twelve_month_probabilities(
        state, credit, churn, np.full(n, hazards.CURE_SHARE["responsible"]), np.zeros((n, 12))
    )
    assert (pd_resp < pd_basic).all()
    assert pd_basic[2] > pd_basic[1] > pd_basic[0]  # further behind, likelier to default


def test_generator_rejects_bad_arguments():
    with pytest.raises(ValueError, match="rows must be at least 1"):
        generate_book(0, seed=1)
    with pytest.raises(ValueError, match="history_months must exceed 12"):
        generate_book(10, seed=1, history_months=12)
    assert HISTORY_MONTHS > LABEL_HORIZON_MONTHS


def test_counterfactual_oracle_under_the_assigned_mode_is_the_factual_oracle(small_book):
    from crm_modes.data.schema import MODES

    assigned = small_book["assigned_mode"].astype(str).to_numpy()
    for outcome in ("default", "churn"):
        per_mode = small_book[[f"oracle_{outcome}_probability_{mode}" for mode in MODES]].to_numpy()
        factual = per_mode[np.arange(len(small_book)), [MODES.index(mode) for mode in assigned]]
        np.testing.assert_allclose(factual, small_book[f"oracle_{outcome}_probability"], rtol=1e-12)
    # responsible mode keeps more clients (every row) and cures more delinquencies; fewer defaults on
    # average (a client who stays longer also stays exposed to default longer, so not on every row)
    churn = small_book[["oracle_churn_probability_basic", "oracle_churn_probability_responsible"]].to_numpy()
    default = small_book[["oracle_default_probability_basic", "oracle_default_probability_responsible"]]
    leaves = churn[:, 0] > 1e-12  # a facility about to default for certain (PD 1.0) cannot leave
    assert (churn[leaves, 1] < churn[leaves, 0]).all()
    assert (churn[~leaves, 1] <= 1e-12).all()
    assert default.to_numpy()[:, 1].mean() < default.to_numpy()[:, 0].mean()


def test_published_gdp_growth_is_one_figure_per_date_moving_against_the_cycle(book_50k):
    """The macro signal: the same for every row of a date, different across dates, and a
    downturn (more defaults) shows as lower growth."""
    by_date = book_50k.groupby("snapshot_date")["gdp_growth"]
    assert (by_date.nunique() == 1).all()
    published = by_date.first()
    assert published.nunique() == len(published)
    assert published.min() > -5.0
    assert published.max() < 8.0
    known = book_50k.dropna(subset=["default_12m"])
    default_rate = known.groupby("snapshot_date")["oracle_default_probability"].mean()
    assert np.corrcoef(published.loc[default_rate.index], default_rate)[0, 1] < -0.5


def test_the_economy_s_direction_is_the_published_growth_less_the_figure_a_year_before(book_50k):
    """``gdp_growth_change_12m``: one figure per date, the published growth less the growth published
    twelve months earlier (the first year's against the year before the first snapshot)."""
    by_date = book_50k.groupby("snapshot_date")[["gdp_growth", "gdp_growth_change_12m"]]
    assert (by_date.nunique() == 1).all().all()
    series = by_date.first()
    assert series["gdp_growth_change_12m"].notna().all()
    assert np.allclose(
        series["gdp_growth_change_12m"].iloc[12:], series["gdp_growth"].diff(12).iloc[12:], atol=1e-12
    )
    # turning up and turning down both happen in the history a model learns from
    assert series["gdp_growth_change_12m"].min() < -1.0 < 1.0 < series["gdp_growth_change_12m"].max()
