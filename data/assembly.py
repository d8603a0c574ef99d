"""A simulated book's rows as the table: ordered, cut to size, with labels and oracle columns.

4. **Labels** look 12 months ahead: ``default_12m`` (``churn_12m``) is 1 when the facility
   defaulted (churned) in the 12 months after the snapshot. Snapshots whose 12 months
   run past the end of the history get null labels: unknown, never guessed.
5. **Oracle** columns: ``oracle_{default,churn}_probability_{mode}`` are the exact
   12-month probabilities of the row served in each mode from the snapshot on, the chain of
   :mod:`crm_modes.data.hazards` run on the expected path of each score
   (:mod:`crm_modes.data.oracle`); ``oracle_default_probability`` and
   ``oracle_churn_probability`` are those of the mode assigned; ``oracle_policy_mode`` is
   the noiseless policy. They judge models and policies, and are never features.

(Steps 1-3 are the simulation, :mod:`crm_modes.data.simulation`.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_modes.data import hazards, oracle
from crm_modes.data.schema import (
    CUSTOMIZATIONS,
    INDUSTRIES,
    MACRO_CHANGE_MONTHS,
    MARKETS,
    MODES,
    PRODUCTS,
    PROJECT_STAGES,
    REGIONS,
    SCHEMA,
    SEGMENTS,
    Kind,
    Role,
)
from crm_modes.data.simulation import BURN_IN_MONTHS, FIRST_SNAPSHOT, LABEL_HORIZON_MONTHS, IntArray


def assemble_book(
    book: dict[str, np.ndarray], rows: int, *, through: tuple[int, int] | None = None
) -> pd.DataFrame:
    """Order rows by facility then month, keep the first ``rows``, add labels and oracle.

    ``through``: keep instead every row up to this (facility, month), the last row the book the
    seed makes keeps: a scenario's book then holds the same facilities (and, before its
    departure, the same rows), its row count a little above or below ``rows``.
    """
    facility = book["row_facility"]
    order = np.lexsort((book["month"], facility))
    if through is None:
        order = order[:rows]
    else:
        kept = (facility[order] < through[0]) | (
            (facility[order] == through[0]) & (book["month"][order] <= through[1])
        )
        order = order[kept]
    f = facility[order]
    month = book["month"][order]
    client = book["fac_client"][f]
    history_months = int(book["history_months"][0])

    exit_month, exit_kind = book["exit_month"][f], book["exit_kind"][f]
    in_window = (exit_month > month) & (exit_month <= month + LABEL_HORIZON_MONTHS)
    known = month + LABEL_HORIZON_MONTHS <= history_months - 1
    default_12m = pd.array(np.where(known, in_window & (exit_kind == hazards.DEFAULT), 0), dtype="Int8")
    churn_12m = pd.array(np.where(known, in_window & (exit_kind == hazards.CHURN), 0), dtype="Int8")
    default_12m[~known] = pd.NA
    churn_12m[~known] = pd.NA

    cycle = book["cycle"]
    path = cycle[(month + BURN_IN_MONTHS)[:, None] + np.arange(LABEL_HORIZON_MONTHS)[None, :]]
    assigned = book["fac_assigned"][f]
    others = others_mode(book["fac_client"], book["fac_assigned"])[f]
    counterfactual = oracle.counterfactual_oracle(
        oracle.OracleInputs(
            state=book["state"][order],
            credit=book["credit"][order],
            churn=book["churn"][order],
            assigned=assigned,
            others_mode=others,
            rm_contacts_90d=book["rm_contacts_90d"][order].astype(np.float64),
            complaints_12m=book["complaints_12m"][order].astype(np.float64),
            engagement_decline=hazards.engagement_decline(
                book["digital_logins_90d"][order].astype(np.float64),
                book["digital_logins_prev_90d"][order].astype(np.float64),
            ),
            utilization_change_3m=book["utilization_change_3m"][order],
            relationship_tenure_years=np.maximum(book["relationship_tenure_years"][order], 0.0),
            cycle_path=path,
        )
    )
    # The factual oracle is the counterfactual one in the mode actually assigned.
    rows = np.arange(f.shape[0])
    oracle_default, oracle_churn = (
        np.column_stack([counterfactual[f"oracle_{outcome}_probability_{mode}"] for mode in MODES])[
            rows, assigned
        ]
        for outcome in ("default", "churn")
    )

    is_project = book["fac_is_project"][f]
    snapshot = pd.Timestamp(FIRST_SNAPSHOT) + pd.offsets.MonthEnd(0)
    dates = pd.date_range(snapshot, periods=history_months, freq="ME")

    published = month + MACRO_CHANGE_MONTHS + BURN_IN_MONTHS - 1

    def recorded(name: str) -> np.ndarray:
        return book[name][order]

    def categorical(codes: np.ndarray, categories: tuple[str, ...]) -> pd.Categorical:
        return pd.Categorical.from_codes(codes, categories=list(categories))

    project_stage = categorical(np.where(is_project, recorded("project_stage"), -1), PROJECT_STAGES)
    columns: dict[str, object] = {
        "client_id": _identifiers("C", book["fac_client"].max() + 1, 7)[client],
        "facility_id": _identifiers("F", facility.max() + 1, 8)[f],
        "snapshot_date": dates[month],
        # published one month late: the figure of the month before the snapshot, and its change since
        # the figure published a year before (the series starts a year before the burn-in)
        "gdp_growth": book["gdp_growth"][published],
        "gdp_growth_change_12m": book["gdp_growth"][published]
        - book["gdp_growth"][published - MACRO_CHANGE_MONTHS],
        "segment": categorical(book["client_segment"][client], SEGMENTS),
        "industry": categorical(book["client_industry"][client], INDUSTRIES),
        "market": categorical(book["client_market"][client], MARKETS),
        "region": categorical(book["client_region"][client], REGIONS),
        "products_held": book["client_products_held"][client],
        "product": categorical(book["fac_product"][f], PRODUCTS),
        "facility_amount": book["fac_amount"][f],
        "term_months": book["fac_term"][f],
        "collateral_coverage": book["fac_collateral"][f],
        "margin_bps": book["fac_margin_bps"][f],
        "covenant_count": book["fac_covenants"][f],
        "stakeholder_count": book["fac_stakeholders"][f],
        "customization": categorical(book["fac_customization"][f], CUSTOMIZATIONS),
        "project_stage": project_stage,
        "project_completion": np.where(is_project, recorded("project_completion"), np.nan),
        "project_delay_months": np.where(is_project, recorded("project_delay_months"), np.nan),
        "assigned_mode": categorical(book["fac_assigned"][f], MODES),
        "other_facilities_mode": categorical(others + 1, ("none", *MODES)),
        "default_12m": default_12m,
        "churn_12m": churn_12m,
        "oracle_default_probability": oracle_default,
        "oracle_churn_probability": oracle_churn,
        "oracle_policy_mode": categorical(book["fac_policy"][f], MODES),
        **counterfactual,
    }
    book_columns = [
        spec for spec in SCHEMA if spec.feature or spec.role is not Role.CONTEXT or spec.name in columns
    ]
    for spec in book_columns:
        if spec.name not in columns:
            columns[spec.name] = recorded(spec.name)
    frame = pd.DataFrame({spec.name: columns[spec.name] for spec in book_columns})
    for spec in book_columns:
        if spec.kind is Kind.FLOAT:
            frame[spec.name] = frame[spec.name].astype("float64")
        elif spec.kind is Kind.INT:
            frame[spec.name] = frame[spec.name].astype("int64")
    return frame


def others_mode(client: IntArray, assigned: IntArray) -> IntArray:
    """Per facility, the highest mode of the client's other facilities (-1 when it has none)."""
    n_clients = int(client.max()) + 1
    top = np.full(n_clients, -1)
    np.maximum.at(top, client, assigned)
    at_top = assigned == top[client]
    alone_at_top = at_top & (np.bincount(client[at_top], minlength=n_clients)[client] == 1)
    below = np.full(n_clients, -1)
    np.maximum.at(below, client[~at_top], assigned[~at_top])
    return np.where(alone_at_top, below[client], top[client])


def _identifiers(prefix: str, count: int, width: int) -> np.ndarray:
    return np.array([f"{prefix}{i:0{width}d}" for i in range(count)], dtype=object)
