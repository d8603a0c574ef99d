"""The feature configuration: which columns a model reads and how, parsed once from YAML."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from crm_modes.data.schema import FEATURE_ROLES, NEVER_FEATURE_ROLES, SCHEMA, Kind, Role
from crm_modes.features.domain import DOMAIN_FEATURES
from crm_modes.shared.configuration import FrozenConfig
from crm_modes.shared.errors import InputError

ORACLE_PREFIX = "oracle_"


_NOT_FEATURES = frozenset(c.name for c in SCHEMA if not c.feature)


class LeakageError(InputError):
    """A configuration asks for a column that must never be a feature of this model."""


class FeatureConfig(FrozenConfig):
    """How to turn a table into a model matrix.

    Either ``from_schema: true`` (columns and kinds come from the project's schema: every
    client, facility, behaviour and context column) or explicit ``numeric`` and
    ``categorical`` lists for any other table.
    Each field's docstring says what it is (``crm-modes config-schema features`` prints them).
    """

    from_schema: bool = False
    """Take the columns and their kinds from the project's schema (its book); else name them."""
    numeric: tuple[str, ...] = ()
    """Numeric columns (a table of one's own)."""
    categorical: tuple[str, ...] = ()
    """Categorical columns (a table of one's own)."""
    identifiers: tuple[str, ...] = ()
    """Columns that identify a row; never features."""
    exclude: tuple[str, ...] = ()
    """Columns to leave out although the schema or the lists offer them."""
    log_transform: tuple[str, ...] = ()
    """Heavy-tailed numeric columns (money) taken as ``log1p``."""
    domain: tuple[str, ...] = ()
    """Domain features to add, by name (``features/domain.py``)."""
    ratios: dict[str, tuple[str, str]] = Field(default_factory=dict)
    """Derived numeric features of any table, ``name: [numerator, denominator]``; NaN where the
    denominator is not positive.
    """
    min_category_frequency: int = Field(default=10, ge=1)
    """Rows a category needs at fit to keep a code of its own (rarer ones share ``__other__``)."""
    clip_quantiles: tuple[float, float] | None = (0.001, 0.999)
    """Training quantiles numeric columns are clipped at; null disables."""
    unclipped: tuple[str, ...] = ()
    """Numeric columns never clipped (a macro figure whose new extremes must reach the model)."""
    constraints: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """For a table of one's own: what a column may hold, over its profile (``minimum``, ``maximum``,
    ``integer``, ``nullable``, ``categories``).
    """
    missing_indicators: bool = False
    """Tree models also get a 0/1 column per numeric column with missing values at fit (they read missing
    values natively; linear models always get them).
    """

    @model_validator(mode="after")
    def _consistent(self) -> FeatureConfig:
        if self.from_schema and (self.numeric or self.categorical):
            raise ValueError(
                "with from_schema: true, leave numeric and categorical empty (the schema decides)"
            )
        if not self.from_schema and not (self.numeric or self.categorical):
            raise ValueError("name the numeric and/or categorical columns, or set from_schema: true")
        both = sorted(set(self.numeric) & set(self.categorical))
        if both:
            raise ValueError(f"columns declared both numeric and categorical: {both}")
        unknown = [name for name in self.domain if name not in DOMAIN_FEATURES]
        if unknown:
            raise ValueError(f"unknown domain features {unknown}; known: {sorted(DOMAIN_FEATURES)}")
        taken = {*self.numeric, *self.categorical, *self.identifiers, *self.domain}
        clashing = sorted(name for name in self.ratios if name in taken)
        if clashing:
            raise ValueError(f"ratio names {clashing} are already columns or features; choose new names")
        return self

    def without(self, columns: Iterable[str]) -> FeatureConfig:
        """This configuration for a table that lacks ``columns``: they, and every domain feature, ratio
        and transform that reads them, are left out (a bank's book without some readings)."""
        gone = set(columns)
        if not gone:
            return self
        return self.model_copy(
            update={
                "exclude": tuple(dict.fromkeys([*self.exclude, *sorted(gone)])),
                "numeric": tuple(name for name in self.numeric if name not in gone),
                "categorical": tuple(name for name in self.categorical if name not in gone),
                "log_transform": tuple(name for name in self.log_transform if name not in gone),
                "unclipped": tuple(name for name in self.unclipped if name not in gone),
                "domain": tuple(name for name in self.domain if not gone & set(DOMAIN_FEATURES[name].inputs)),
                "ratios": {name: pair for name, pair in self.ratios.items() if not gone & set(pair)},
            }
        )

    def columns(self, target: str | None) -> tuple[list[str], list[str]]:
        """Numeric and categorical input columns for a model of ``target``, leakage-checked.

        Raises:
            LeakageError: naming every column that may not be a feature of this model, and why.
        """
        if self.from_schema:
            usable = [
                c for c in SCHEMA if c.role in FEATURE_ROLES and c.feature and c.name not in self.exclude
            ]
            numeric = [c.name for c in usable if c.numeric and c.name != target]
            categorical = [c.name for c in usable if c.kind is Kind.CATEGORY and c.name != target]
        else:
            numeric = [name for name in self.numeric if name not in self.exclude]
            categorical = [name for name in self.categorical if name not in self.exclude]
        requested = [*numeric, *categorical, *self.log_transform]
        requested += [column for name in self.domain for column in DOMAIN_FEATURES[name].inputs]
        requested += [column for pair in self.ratios.values() for column in pair]
        self._guard_leakage(requested, target)
        not_numeric = [name for name in self.log_transform if name not in numeric]
        if not_numeric:
            raise InputError(f"log_transform columns {not_numeric} are not numeric feature columns")
        return numeric, categorical

    def _guard_leakage(self, requested: list[str], target: str | None) -> None:
        roles = {c.name: c.role for c in SCHEMA}
        why: dict[str, str] = {}
        for name in dict.fromkeys(requested):
            if name == target:
                why[name] = "the model's own label"
            elif name in self.identifiers:
                why[name] = "an identifier"
            elif name.startswith(ORACLE_PREFIX):
                why[name] = "an oracle column"
            elif roles.get(name) in NEVER_FEATURE_ROLES:
                why[name] = f"a {roles[name].value} column"
            elif roles.get(name) is Role.LABEL:
                why[name] = "a label (a future outcome)"
            elif name in _NOT_FEATURES:
                why[name] = "an earlier model output, not an attribute"
        if why:
            listed = ", ".join(f"{name!r} ({reason})" for name, reason in why.items())
            raise LeakageError(
                f"these columns can never be features of "
                f"{'the model of ' + repr(target) if target else 'this model'}: {listed}"
            )


def load_feature_config(path: str | os.PathLike[str]) -> FeatureConfig:
    """Parse a YAML feature configuration; errors name the file and the offending key."""
    text = Path(path).read_text()
    raw = yaml.safe_load(text) or {}
    return parse_feature_config(raw, source=os.fspath(path))


def parse_feature_config(raw: dict, *, source: str = "feature configuration") -> FeatureConfig:
    from pydantic import ValidationError

    try:
        return FeatureConfig.model_validate(raw)
    except ValidationError as error:
        details = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in error.errors())
        raise InputError(f"{source}: {details}") from None


Flavor = Literal["linear", "tree"]
