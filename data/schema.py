"""The one declaration of the client-facility snapshot table.

Every column of the book is declared here once: its dtype, whether it may be null, its
allowed range or categories, and its role. Validation, the feature pipeline, the MLflow
signature and the REST request model all derive their column lists from :data:`SCHEMA`;
nothing else keeps a copy.

One row is one client facility at a monthly snapshot date. Money amounts are in millions
of the book's currency.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Role(StrEnum):
    """What a column is for; decides where it may flow."""

    ID = "id"
    DATE = "date"
    CLIENT = "client"
    FACILITY = "facility"
    BEHAVIOUR = "behaviour"
    ECONOMY = "economy"
    LABEL = "label"
    ORACLE = "oracle"
    CONTEXT = "context"


class Kind(StrEnum):
    """The logical dtype of a column."""

    STRING = "string"
    DATE = "date"
    INT = "int"
    FLOAT = "float"
    CATEGORY = "category"
    BINARY = "binary"  # 0/1 outcome; null means "not known"


#: What the gate does with a category it does not know (see :attr:`Column.unseen_policy`).
Unseen = Literal["quarantine", "score", "count"]

#: Roles whose columns must be present in every table the gate accepts.
REQUIRED_ROLES = frozenset({Role.ID, Role.DATE, Role.CLIENT, Role.FACILITY, Role.BEHAVIOUR, Role.ECONOMY})
#: Roles that can never become a model input.
NEVER_FEATURE_ROLES = frozenset({Role.ID, Role.DATE, Role.ORACLE})
#: Roles whose columns can feed a model (a model's own label is removed separately).
FEATURE_ROLES = (Role.CLIENT, Role.FACILITY, Role.BEHAVIOUR, Role.ECONOMY, Role.CONTEXT)
#: The economy's direction: ``gdp_growth_change_12m`` is the published growth less the figure
#: published this many months before the snapshot.
MACRO_CHANGE_MONTHS = 12

MODES: tuple[str, ...] = ("basic", "reactive", "responsible")
SEGMENTS: tuple[str, ...] = ("sme", "mid_corporate", "large_corporate", "multinational")
INDUSTRIES: tuple[str, ...] = (
    "agriculture",
    "construction",
    "energy",
    "healthcare",
    "hospitality",
    "manufacturing",
    "real_estate",
    "retail",
    "technology",
    "transport",
)
MARKETS: tuple[str, ...] = ("domestic", "developed", "emerging")
PRODUCTS: tuple[str, ...] = (
    "unsecured_sme_credit",
    "secured_term_loan",
    "revolving_credit",
    "trade_finance",
    "syndicated_loan",
    "project_finance",
)
CUSTOMIZATIONS: tuple[str, ...] = ("standard", "tailored", "bespoke")
REGIONS: tuple[str, ...] = ("north", "south", "east", "west", "central", "international")
PROJECT_STAGES: tuple[str, ...] = ("construction", "ramp_up", "operation")


@dataclass(frozen=True)
class Column:
    """One column of the snapshot table.

    Attributes:
        name: column name as it appears in files and DataFrames.
        kind: logical dtype.
        role: what the column is for (see :class:`Role`).
        description: one line a relationship manager would understand.
        nullable: whether a missing value is allowed.
        minimum, maximum: inclusive bounds for numeric columns (``None``: unbounded).
        categories: allowed values for category columns.
        feature: whether a model may read it (context such as a previous score may not).
        unseen: what the gate does with a value outside ``categories`` (default: by role,
            :attr:`unseen_policy`).
    """

    name: str
    kind: Kind
    role: Role
    description: str
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] = ()
    feature: bool = True
    unseen: Unseen | None = None

    @property
    def unseen_policy(self) -> Unseen:
        """What the gate does with a value of this category column that is not one of its categories:

        - ``score``: a model input (client, facility, behaviour): the row is scored, the models read
          the value as their rare or unknown category, and the row carries a warning;
        - ``count``: a reporting column no model reads: the row is scored and the new value counted;
        - ``quarantine``: anything else (the mode applied, a label, an oracle column): a value no
          rule can read, so the row is quarantined.
        """
        if self.unseen is not None:
            return self.unseen
        inputs = (Role.CLIENT, Role.FACILITY, Role.BEHAVIOUR)
        return "score" if self.feature and self.role in inputs else "quarantine"

    @property
    def required(self) -> bool:
        """Whether every table must carry this column (labels, oracle and context need not)."""
        return self.role in REQUIRED_ROLES

    @property
    def numeric(self) -> bool:
        return self.kind in (Kind.INT, Kind.FLOAT, Kind.BINARY)


def _c(name: str, kind: Kind, role: Role, description: str, **rules: object) -> Column:
    return Column(name=name, kind=kind, role=role, description=description, **rules)  # type: ignore[arg-type]


_ID, _DATE, _CL, _FA, _BE, _EC = Role.ID, Role.DATE, Role.CLIENT, Role.FACILITY, Role.BEHAVIOUR, Role.ECONOMY
_LA, _OR, _CX = Role.LABEL, Role.ORACLE, Role.CONTEXT
_S, _D, _I, _F, _C, _B = Kind.STRING, Kind.DATE, Kind.INT, Kind.FLOAT, Kind.CATEGORY, Kind.BINARY

#: Every column of the client-facility snapshot table, in file order.
SCHEMA: tuple[Column, ...] = (
    _c("client_id", _S, _ID, "client identifier"),
    _c("facility_id", _S, _ID, "facility identifier, unique across clients"),
    _c("snapshot_date", _D, _DATE, "month-end date the row describes"),
    # client
    _c("segment", _C, _CL, "client size segment", categories=SEGMENTS),
    _c("industry", _C, _CL, "client's main industry", categories=INDUSTRIES),
    _c("market", _C, _CL, "market the financed business operates in", categories=MARKETS),
    _c("annual_revenue", _F, _CL, "annual revenue, millions", minimum=0.01, maximum=1e6),
    _c("years_in_business", _I, _CL, "years since the client was founded", minimum=0, maximum=300),
    _c("internal_rating", _I, _CL, "bank's internal rating, 1 best to 10 worst", minimum=1, maximum=10),
    _c("leverage", _F, _CL, "total debt / EBITDA", minimum=0, maximum=50),
    _c("interest_coverage", _F, _CL, "EBITDA / interest expense", minimum=-50, maximum=200),
    _c("ebitda_margin", _F, _CL, "EBITDA / revenue", minimum=-1, maximum=1),
    _c("revenue_growth", _F, _CL, "revenue growth over the last year", minimum=-1, maximum=5),
    _c("relationship_tenure_years", _F, _CL, "years the client has banked with us", minimum=0, maximum=100),
    _c("products_held", _I, _CL, "number of the bank's products the client holds", minimum=1, maximum=30),
    _c(
        "rm_contacts_90d",
        _I,
        _CL,
        "relationship-manager contacts in the last 90 days",
        minimum=0,
        maximum=500,
    ),
    _c(
        "digital_logins_90d", _I, _CL, "digital banking logins in the last 90 days", minimum=0, maximum=10_000
    ),
    _c(
        "digital_logins_prev_90d",
        _I,
        _CL,
        "digital banking logins in the 90 days before those",
        minimum=0,
        maximum=10_000,
    ),
    _c("complaints_12m", _I, _CL, "complaints filed in the last 12 months", minimum=0, maximum=100),
    # facility
    _c("product", _C, _FA, "facility product", categories=PRODUCTS),
    _c("facility_amount", _F, _FA, "committed amount, millions", minimum=0.001, maximum=1e5),
    _c("exposure", _F, _FA, "drawn exposure at the snapshot, millions", minimum=0, maximum=1e5),
    _c("term_months", _I, _FA, "contractual term in months", minimum=1, maximum=480),
    _c("months_on_book", _I, _FA, "months since the facility was opened", minimum=0, maximum=600),
    _c("collateral_coverage", _F, _FA, "collateral value / committed amount", minimum=0, maximum=5),
    _c("margin_bps", _F, _FA, "credit margin over the reference rate, basis points", minimum=0, maximum=3000),
    _c("covenant_count", _I, _FA, "financial covenants in the agreement", minimum=0, maximum=50),
    _c(
        "stakeholder_count",
        _I,
        _FA,
        "parties to the deal (lenders, sponsors, agencies)",
        minimum=1,
        maximum=100,
    ),
    _c(
        "customization",
        _C,
        _FA,
        "how far the terms depart from the standard product",
        categories=CUSTOMIZATIONS,
    ),
    _c(
        "project_stage",
        _C,
        _FA,
        "stage of the financed project (project finance only)",
        nullable=True,
        categories=PROJECT_STAGES,
    ),
    _c(
        "project_completion",
        _F,
        _FA,
        "share of the project completed (project finance only)",
        nullable=True,
        minimum=0,
        maximum=1,
    ),
    _c(
        "project_delay_months",
        _F,
        _FA,
        "months the project runs behind plan (project finance only)",
        nullable=True,
        minimum=0,
        maximum=240,
    ),
    # behaviour, as of the snapshot, from past months only
    _c("utilization", _F, _BE, "exposure / committed amount", minimum=0, maximum=1.5),
    _c(
        "utilization_change_3m",
        _F,
        _BE,
        "change in utilization over the last 3 months",
        minimum=-1.5,
        maximum=1.5,
    ),
    _c("days_past_due", _I, _BE, "days past due at the snapshot", minimum=0, maximum=3650),
    _c(
        "worst_days_past_due_12m",
        _I,
        _BE,
        "worst days past due in the last 12 months",
        minimum=0,
        maximum=3650,
    ),
    _c("covenant_breaches_12m", _I, _BE, "covenant breaches in the last 12 months", minimum=0, maximum=100),
    # economy: published figures as known at the snapshot, the same for every row of a date
    _c(
        "gdp_growth",
        _F,
        _EC,
        "real GDP growth over the last year, percent, as last published (one month behind the snapshot)",
        minimum=-30,
        maximum=30,
    ),
    _c(
        "gdp_growth_change_12m",
        _F,
        _EC,
        "gdp_growth less the gdp_growth published a year before the snapshot, percentage points: "
        "whether the economy is turning up or down",
        minimum=-60,
        maximum=60,
    ),
    # context
    _c("assigned_mode", _C, _CX, "relationship mode the bank applies today", categories=MODES),
    _c(
        "other_facilities_mode",
        _C,
        _CX,
        "highest mode the bank applies to the client's other facilities today (none: no other facility)",
        categories=("none", *MODES),
        feature=False,
    ),
    _c(
        "region",
        _C,
        _CX,
        "the bank's regional unit that books the relationship (for reporting, not a model input)",
        nullable=True,
        categories=REGIONS,
        feature=False,
        unseen="count",
    ),
    _c(
        "previous_default_probability",
        _F,
        _CX,
        "12-month default probability at the previous scoring",
        nullable=True,
        minimum=0,
        maximum=1,
        feature=False,
    ),
    # labels: null when the 12-month window runs past the known history
    _c(
        "default_12m",
        _B,
        _LA,
        "90+ days past due or distressed restructuring within 12 months",
        nullable=True,
    ),
    _c("churn_12m", _B, _LA, "relationship ended within 12 months", nullable=True),
    # oracle: simulation ground truth, evaluation only
    _c(
        "oracle_default_probability",
        _F,
        _OR,
        "true 12-month default probability (simulated)",
        minimum=0,
        maximum=1,
    ),
    _c(
        "oracle_churn_probability",
        _F,
        _OR,
        "true 12-month churn probability (simulated)",
        minimum=0,
        maximum=1,
    ),
    _c("oracle_policy_mode", _C, _OR, "mode the noiseless policy would assign (simulated)", categories=MODES),
    # counterfactual oracle: the same chain with the row served in each mode (everything else as shown)
    *(
        _c(
            f"oracle_{outcome}_probability_{mode}",
            _F,
            _OR,
            f"true 12-month {outcome} probability if served in {mode} mode (simulated)",
            minimum=0,
            maximum=1,
        )
        for outcome in ("default", "churn")
        for mode in MODES
    ),
)

#: The columns that identify one row.
KEY: tuple[str, ...] = ("facility_id", "snapshot_date")

_BY_NAME: dict[str, Column] = {column.name: column for column in SCHEMA}


def column(name: str) -> Column:
    """Return the declaration of ``name``; raise ``KeyError`` naming it if unknown."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a column of the snapshot schema") from None


def names(roles: Iterable[Role] | None = None) -> list[str]:
    """Names of the columns with one of ``roles`` (all columns when ``None``), in schema order."""
    if roles is None:
        return [c.name for c in SCHEMA]
    wanted = set(roles)
    return [c.name for c in SCHEMA if c.role in wanted]


def required_names() -> list[str]:
    """Names of the columns every table must carry."""
    return [c.name for c in SCHEMA if c.required]


def input_names() -> list[str]:
    """Columns a scoring request may carry: everything except labels and oracle columns."""
    return names([Role.ID, Role.DATE, Role.CLIENT, Role.FACILITY, Role.BEHAVIOUR, Role.ECONOMY, Role.CONTEXT])
