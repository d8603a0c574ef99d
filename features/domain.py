"""Domain features a credit officer would recognise, computed from named columns.

Each feature is declared once in :data:`DOMAIN_FEATURES` with the columns it reads and a
plain-language description (used as the reason text when it drives an alert).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils.validation import check_is_fitted

from crm_modes.features._input import TableInputMixin, check_table, input_feature_names
from crm_modes.shared.errors import InputError


def _num(frame: pd.DataFrame | Mapping[str, np.ndarray], name: str) -> np.ndarray:
    values = frame[name]
    if isinstance(values, np.ndarray) and values.dtype == np.float64:
        return values
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _band(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Ordinal band 0..len(edges) of each value; NaN stays NaN."""
    banded = np.searchsorted(np.asarray(edges, dtype=float), values, side="right").astype(np.float64)
    return np.where(np.isnan(values), np.nan, banded)


@dataclass(frozen=True)
class DomainFeature:
    name: str
    inputs: tuple[str, ...]
    description: str
    #: reads a DataFrame, or a mapping of column name to float64 array
    compute: Callable[[pd.DataFrame | Mapping[str, np.ndarray]], np.ndarray]


def _in_band(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """1 where ``low <= value <= high``, else 0; NaN stays NaN (a step a linear model can take)."""
    return np.where(np.isnan(values), np.nan, ((values >= low) & (values <= high)).astype(np.float64))


def _ratio(numerator: np.ndarray, denominator: np.ndarray, floor: float) -> np.ndarray:
    return numerator / np.maximum(denominator, floor)


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` where the denominator is positive; NaN (undefined) elsewhere.

    A configured ratio (``ratios`` in a feature configuration) of any table: a balance to a
    limit, a payment to the bill it pays. Trees learn from NaN directly; the numeric
    cleaner imputes it and flags it for linear models.
    """
    positive = denominator > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(positive, numerator / np.where(positive, denominator, 1.0), np.nan)


def _strict_num(frame: pd.DataFrame | Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """A ratio input as float64; text is an error naming the column, never a silent NaN."""
    values = frame[name]
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        return values.astype(np.float64, copy=False)
    try:
        return pd.to_numeric(values).to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise InputError(f"ratio input {name!r} holds values that are not numbers") from None


#: Every domain feature the pipeline can add, by name.
DOMAIN_FEATURES: dict[str, DomainFeature] = {
    feature.name: feature
    for feature in (
        DomainFeature(
            "exposure_to_revenue",
            ("exposure", "annual_revenue"),
            "exposure is large relative to the client's revenue",
            lambda f: _ratio(_num(f, "exposure"), _num(f, "annual_revenue"), 1e-3),
        ),
        DomainFeature(
            "unsecured_exposure",
            ("exposure", "collateral_coverage"),
            "a large part of the exposure is not covered by collateral",
            lambda f: _num(f, "exposure") * np.clip(1.0 - _num(f, "collateral_coverage"), 0.0, 1.0),
        ),
        DomainFeature(
            "tenor_band",
            ("term_months",),
            "long tenor (bands: up to 1, 3, 7 years, longer)",
            lambda f: _band(_num(f, "term_months"), (12, 36, 84)),
        ),
        DomainFeature(
            "leverage_band",
            ("leverage",),
            "high leverage (debt/EBITDA bands: 2, 4, 6)",
            lambda f: _band(_num(f, "leverage"), (2.0, 4.0, 6.0)),
        ),
        DomainFeature(
            "coverage_band",
            ("interest_coverage",),
            "weak interest coverage (EBITDA/interest bands: 1.5, 3, 6)",
            lambda f: _band(_num(f, "interest_coverage"), (1.5, 3.0, 6.0)),
        ),
        DomainFeature(
            "utilization_trend",
            ("utilization", "utilization_change_3m"),
            "utilization rising fast relative to where it was",
            lambda f: _ratio(
                _num(f, "utilization_change_3m"),
                _num(f, "utilization") - _num(f, "utilization_change_3m"),
                0.05,
            ),
        ),
        DomainFeature(
            "worst_delinquency_band",
            ("worst_days_past_due_12m",),
            "payments were late in the last 12 months (bands: 1, 30, 60, 90 days)",
            lambda f: _band(_num(f, "worst_days_past_due_12m"), (1, 30, 60, 90)),
        ),
        *(
            DomainFeature(
                f"late_{low}_{high}",
                ("days_past_due",),
                f"payment {low} to {high} days late at the snapshot",
                lambda f, low=low, high=high: _in_band(_num(f, "days_past_due"), low, high),
            )
            for low, high in ((1, 29), (30, 59), (60, 89))
        ),
        DomainFeature(
            "project_delay_ratio",
            ("project_delay_months", "months_on_book"),
            "the project runs behind its plan",
            lambda f: np.nan_to_num(
                _ratio(_num(f, "project_delay_months"), _num(f, "months_on_book"), 1.0), nan=0.0
            ),
        ),
        DomainFeature(
            "contacts_per_tenure_year",
            ("rm_contacts_90d", "relationship_tenure_years"),
            "few relationship-manager contacts for the length of the relationship",
            lambda f: _ratio(_num(f, "rm_contacts_90d"), _num(f, "relationship_tenure_years"), 0.5),
        ),
        DomainFeature(
            "products_per_tenure_year",
            ("products_held", "relationship_tenure_years"),
            "few products for the length of the relationship",
            lambda f: _ratio(_num(f, "products_held"), _num(f, "relationship_tenure_years"), 0.5),
        ),
        DomainFeature(
            "engagement_decline",
            ("digital_logins_90d", "digital_logins_prev_90d"),
            "the client uses digital banking much less than before",
            lambda f: (
                (_num(f, "digital_logins_prev_90d") - _num(f, "digital_logins_90d"))
                / (_num(f, "digital_logins_prev_90d") + _num(f, "digital_logins_90d") + 1.0)
            ),
        ),
    )
}


def _ratio_of(numerator: str, denominator: str) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
    return lambda columns: ratio(_strict_num(columns, numerator), _strict_num(columns, denominator))


class DomainFeatures(TableInputMixin, TransformerMixin, BaseEstimator):
    """Append the named domain features and configured ratios; the input columns pass through.

    Parameters:
        features: names from :data:`DOMAIN_FEATURES`; an empty tuple adds nothing.
        ratios: ``(name, numerator, denominator)`` triples, each added as :func:`ratio`
            of two input columns.

    Raises (at fit):
        ValueError naming an unknown feature, or the columns a feature or ratio needs that
        the table lacks.
    """

    _parameter_constraints: ClassVar[dict] = {"features": [list, tuple], "ratios": [list, tuple]}

    def __init__(self, *, features: Sequence[str] = (), ratios: Sequence[Sequence[str]] = ()) -> None:
        self.features = features
        self.ratios = ratios

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: pd.DataFrame | np.ndarray, y: object = None) -> DomainFeatures:
        unknown = [name for name in self.features if name not in DOMAIN_FEATURES]
        if unknown:
            raise InputError(f"unknown domain features {unknown}; known: {sorted(DOMAIN_FEATURES)}")
        malformed = [list(triple) for triple in self.ratios if len(triple) != 3]
        if malformed:
            raise InputError(f"ratios must be (name, numerator, denominator) triples, got {malformed}")
        if self.added_names() and not isinstance(X, pd.DataFrame):
            raise ValueError("domain features and ratios need a DataFrame with named columns")
        X = check_table(self, X, reset=True)
        received = set(map(str, X.columns)) if isinstance(X, pd.DataFrame) else set()
        needs = {name: DOMAIN_FEATURES[name].inputs for name in self.features}
        needs |= {name: (numerator, denominator) for name, numerator, denominator in self.ratios}
        for name, inputs in needs.items():
            lacking = [column for column in inputs if column not in received]
            if lacking:
                raise InputError(f"feature {name!r} needs columns {lacking}, which the table lacks")
        return self

    def _ratios(self) -> Sequence[Sequence[str]]:
        # a pipeline saved before ratios existed has no such attribute
        return getattr(self, "ratios", ())

    def added_names(self) -> list[str]:
        """The names of the columns this step appends, in order."""
        return [*self.features, *(name for name, _, _ in self._ratios())]

    def ratio_inputs(self) -> list[str]:
        """The input columns the ratios read."""
        return list(dict.fromkeys(column for _, *pair in self._ratios() for column in pair))

    def compute(self, columns: pd.DataFrame | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The appended columns, computed from a DataFrame or a mapping of float64 arrays."""
        return {name: compute(columns) for name, _, compute in self.parts()}

    def parts(self) -> list[tuple[str, tuple[str, ...], Callable[[Mapping[str, np.ndarray]], np.ndarray]]]:
        """Each appended column: its name, the input columns it reads, and how it is computed."""
        parts = [
            (name, DOMAIN_FEATURES[name].inputs, DOMAIN_FEATURES[name].compute) for name in self.features
        ]
        for name, numerator, denominator in self._ratios():
            parts.append((name, (numerator, denominator), _ratio_of(numerator, denominator)))
        return parts

    def transform(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame | np.ndarray:
        check_is_fitted(self, "n_features_in_")
        X = check_table(self, X, reset=False)
        if not self.added_names():
            return X
        return pd.concat([X, pd.DataFrame(self.compute(X), index=X.index)], axis=1)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        names = input_feature_names(self)
        return np.asarray([*names, *self.added_names()], dtype=object)
