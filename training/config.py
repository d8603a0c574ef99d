"""The training configuration, parsed once from YAML into frozen, typed objects.

Paths inside a configuration are relative to the configuration file. ``${VAR}`` and
``${VAR:-default}`` in paths are read from the environment, so a configuration can find a
table through, for example, ``${CRM_MODES_DATASETS:-../shared/datasets}``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import yaml
from pydantic import Field, ValidationError, model_validator
from pydantic.json_schema import SkipJsonSchema

from crm_modes.data.book_contract import BookContract
from crm_modes.data.generator import HISTORY_MONTHS, MODE_NOISE
from crm_modes.features.config import FeatureConfig, load_feature_config
from crm_modes.shared.configuration import FrozenConfig, invalid_file, load_yaml_model
from crm_modes.shared.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from crm_modes.models.capacity import Budget

ModelKind = Literal["binary", "multiclass"]


class DataConfig(FrozenConfig):
    """Where the table comes from: a generated synthetic book, or a CSV/Parquet file."""

    renamed_keys: ClassVar[Mapping[str, str]] = {
        "schema_table": "`layout: book` (the project's schema) or `layout: own` (a table of your own)"
    }

    generate_rows: int | None = Field(default=None, ge=1)
    """Simulate a synthetic book of this many snapshots (the project's own book); or set ``path``."""
    seed: int = 42
    """Seed of the simulated book: the same seed and size give the same book."""
    history_months: int = Field(default=HISTORY_MONTHS, gt=12)
    """Months of snapshots in a generated book (more than the 12-month label horizon)."""
    mode_noise: float = Field(default=MODE_NOISE, ge=0, lt=1)
    """Share of a generated book's facilities whose mode deviates at random from the committee's rule: the
    book's exploration, which off-policy evaluation learns from
    (docs/decisions/004-value-gate-off-on-the-synthetic-book.md).
    """
    path: str | None = None
    """A CSV or Parquet table to train on, relative to this file; ``${VAR}`` and ``${VAR:-default}`` read
    the environment.
    """
    layout: Literal["book", "own"] = "book"
    """``book``: the table follows the project's schema and goes through its validation gate; ``own``: a
    table of one's own, whose columns the ``features`` section names and whose profile gates it.
    """
    profile: str | None = None
    """A table of one's own: its reviewed profile (``crm-modes profile``), the declarations every row is
    checked against. Without one, the table is profiled from itself (only rows whose numbers do not
    parse are caught), and a warning says so.
    """
    quarantine: str | None = None
    """Where rows that break the profile (or the schema) are written, with their reasons (default:
    ``<table>.quarantine.csv`` in the working directory).
    """
    max_quarantined_share: float = Field(default=0.05, ge=0, le=1)
    """More quarantined rows than this share stops the job: a wrong file is not "cleaned" into nothing."""
    book: str | None = None
    """A bank's own book: its book contract (e.g. ``configs/books/example_bank.yaml``), under which
    ``crm-modes labels`` wrote ``path``. The inputs the bank does not have are left out of every model,
    the signature, the reasons and the monitoring reference; scoring reads the bank's names and codes.
    """

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if (self.generate_rows is None) == (self.path is None):
            raise ValueError("set exactly one of data.generate_rows and data.path")
        if self.book is not None and (self.path is None or self.layout != "book"):
            raise ValueError("data.book needs data.path (the book `crm-modes labels` wrote) and layout: book")
        return self

    def book_contract(self) -> BookContract | None:
        """The bank's book contract (``book``), or None for the project's own book."""
        return None if self.book is None else load_yaml_model(self.book, BookContract)


class SplitConfig(FrozenConfig):
    """How rows are split into train, calibration and evaluation.

    ``out_of_time``: evaluation is the last ``evaluation_months`` months whose labels are
    known; training and calibration rows end ``horizon_months`` before the evaluation
    starts, so no training label looks into the evaluation period; calibration is the
    last ``calibration_months`` of those. ``holdout_column``: a boolean column marks the
    evaluation rows; calibration is a stratified share of the rest. ``random``: stratified.
    """

    kind: Literal["out_of_time", "holdout_column", "random"] = "out_of_time"
    """``out_of_time`` (by a date column), ``holdout_column`` (a column marks the evaluation rows) or
    ``random`` (stratified).
    """
    date_column: str = "snapshot_date"
    """The snapshot date of an out-of-time split."""
    evaluation_months: int = Field(default=12, ge=1)
    """Out of time: the last months with known outcomes that are evaluated on."""
    calibration_months: int = Field(default=6, ge=1)
    """Out of time: the last training months set aside to calibrate on."""
    horizon_months: int = Field(default=12, ge=0)
    """Out of time: months a label looks ahead; training labels close this long before evaluation starts."""
    holdout_column: str | None = None
    """A column whose true (``true``, ``1``, ``yes``) rows are the evaluation rows."""
    evaluation_share: float = Field(default=0.25, gt=0, lt=1)
    """Random split: the stratified share of rows evaluated on."""
    calibration_share: float = Field(default=0.2, gt=0, lt=1)
    """The share of the remaining rows set aside to calibrate on."""
    seed: int = 0
    """Seed of the random split and of the calibration rows."""


class EstimatorConfig(FrozenConfig):
    type: Literal["hist_gradient_boosting", "lightgbm", "logistic_regression"] = "hist_gradient_boosting"
    """``lightgbm``, ``hist_gradient_boosting`` (tree features) or ``logistic_regression`` (linear
    features).
    """
    params: dict[str, Any] = Field(default_factory=dict)
    """The estimator's own parameters by their names (e.g. ``n_estimators``, ``C``); they override the
    defaults.
    """


class GateConfig(FrozenConfig):
    """Quality gates a challenger must pass before it may become champion."""

    renamed_keys: ClassVar[Mapping[str, str]] = {"tolerance": "`max_worse_than_champion`"}

    min_auc: float | None = None
    """A binary challenger's AUC on the evaluation rows must be at least this."""
    max_ece: float | None = None
    """A binary challenger's expected calibration error must be at most this."""
    max_brier: float | None = None
    """A binary challenger's Brier score must be at most this."""
    min_accuracy: float | None = None
    """A multi-class challenger's accuracy must be at least this."""
    min_macro_f1: float | None = None
    """A multi-class challenger's macro-F1 must be at least this."""
    max_worse_than_champion: float = Field(default=0.005, ge=0)
    """How much worse than the champion, on the same evaluation rows, is still acceptable."""


class TuningConfig(FrozenConfig):
    """A budgeted hyperparameter search (successive halving over random candidates).

    It runs on the training rows only, with its own inner cross-validation, so when
    ``crm-modes evaluate`` cross-validates a tuned model the search is nested inside
    every outer fold and never sees the fold it is scored on.
    """

    enabled: bool = False
    """Search the estimator's parameters before fitting (nested inside ``evaluate``'s folds)."""
    candidates: int = Field(default=24, ge=2)
    """Parameter combinations drawn for the first round."""
    factor: int = Field(default=3, ge=2)
    """Each round keeps the best 1/factor of the candidates, with factor times the rows."""
    inner_folds: int = Field(default=3, ge=2)
    """Folds of the search's own cross-validation, on the training rows only."""
    min_resources: int = Field(default=1_000, ge=50)
    """Rows the first (cheapest) round uses; too few make its choices noise."""
    seed: int = 0
    """Seed of the candidates and of the inner folds."""
    space: dict[str, list[Any]] = Field(default_factory=dict)
    """estimator parameter -> the values to draw from"""

    @model_validator(mode="after")
    def _space_given(self) -> TuningConfig:
        if self.enabled and not self.space:
            raise ValueError("tuning.space: name at least one parameter and its values")
        return self


class ModelConfig(FrozenConfig):
    """One model: its label, estimator, calibration, registered name and gates."""

    renamed_keys: ClassVar[Mapping[str, str]] = {
        "benchmark": "`baseline`",
        "benchmark_rows": "`baseline_rows`",
    }

    @model_validator(mode="after")
    def _calibration_folds_need_a_method(self) -> ModelConfig:
        if self.calibration_folds is not None and self.calibration not in ("isotonic", "sigmoid"):
            raise ValueError("calibration_folds needs calibration: isotonic or sigmoid")
        return self

    @model_validator(mode="after")
    def _mode_effect_order_needs_a_logistic_model(self) -> ModelConfig:
        order = self.mode_effect_order
        if order is None:
            return self
        from crm_modes.data.schema import MODES

        if self.kind != "binary" or self.estimator.type != "logistic_regression":
            raise ValueError("mode_effect_order needs a binary model with estimator logistic_regression")
        if self.calibration_folds is not None:
            raise ValueError("mode_effect_order cannot be combined with calibration_folds")
        if len(set(order)) != len(order) or len(order) < 2 or not set(order) <= set(MODES):
            raise ValueError(
                f"mode_effect_order must name at least two distinct modes of {list(MODES)}, got {order}"
            )
        return self

    kind: ModelKind
    """``binary`` (probability of an event) or ``multiclass`` (one probability per class)."""
    target: str
    """The label column; it can never be a feature of this model."""
    registered_name: str
    """The MLflow registered model the version is registered under."""
    positive_label: str | int | None = None
    """Which value of the target is the event (e.g. ``bad``); without it, the target must be 0/1."""
    estimator: EstimatorConfig = Field(default_factory=EstimatorConfig)
    """The estimator and its parameters."""
    calibration: Literal["auto", "isotonic", "sigmoid", "none"] = "auto"
    """``sigmoid``, ``isotonic``, ``auto`` (the better of the two on held-out calibration rows) or
    ``none``.
    """
    calibration_folds: int | None = Field(default=None, ge=2)
    """Calibrate by K-fold cross-fitting on the training rows instead of a held-out calibration split: for
    small tables, where every row is needed for training.
    """
    baseline: bool = True
    """Train a logistic regression beside it, on the same features, for comparison."""
    baseline_rows: int | None = Field(default=100_000, ge=1_000)
    """The baseline is fitted on a fixed random sample of at most this many of the model's training rows
    (``null``: all of them); its evaluation rows are the model's own.
    """
    gates: GateConfig = Field(default_factory=GateConfig)
    """What a challenger must reach before ``promote`` makes it champion."""
    mode_effect_order: list[str] | None = None
    """Modes from the highest effect on the event's log-odds to the lowest (e.g. ``[basic, reactive,
    responsible]``: more attention never raises default risk). The fitted effects of ``assigned_mode``
    are first counted per client (a client's snapshots are not independent evidence:
    docs/decisions/027-mode-effects-counted-per-client.md), then kept in that order: where the
    estimates break it, every coefficient takes its posterior mean under the order
    (docs/decisions/023-mode-effects-in-the-domain-order.md). ``null``: unconstrained, as fitted.
    """
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    """An optional parameter search."""


class ValueGateConfig(FrozenConfig):
    """When ``promote`` accepts a bundle's value policy (off-policy, on the evaluation rows)."""

    enabled: bool = True
    """``promote`` checks the value policy's gain over the committee policy (doubly robust, off-policy)."""
    min_gain_lower_bound: float = 0.0
    """The doubly robust lower bound of the value policy's gain over the committee policy (millions,
    summed over the evaluation rows) must be at least this.
    """
    confidence: float = Field(default=0.95, gt=0, lt=1)
    """Two-sided coverage of the bootstrap interval whose lower bound is checked."""
    propensity_floor: float = Field(default=0.01, gt=0, lt=1)
    """Propensities below this are clipped (and the clipped rows counted)."""
    bootstrap: int = Field(default=200, ge=20)
    """Bootstrap resamples (of clients) for the interval of the gain."""
    seed: int = 0
    """Seed of the bootstrap and of the cross-fitting."""
    propensity_type: Literal["hist_gradient_boosting", "lightgbm", "logistic_regression"] = "lightgbm"
    """The cross-fitted propensity model: the committee model's features less the readings the mode moves,
    its own estimator (more strongly regularized than the committee model, so that its probabilities stay
    honest).
    """
    propensity_params: dict[str, Any] = Field(
        default_factory=lambda: {
            "n_estimators": 60,
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_child_samples": 500,
            "reg_lambda": 1.0,
        }
    )
    """Parameters of the propensity model's estimator."""
    outcome_folds: int = Field(default=3, ge=1)
    """Folds (by client) of the evaluation rows: the doubly robust estimate's churn and PD models are refit
    on the other folds for each, so no row is valued by a model that saw it or chose its policy (1: the
    bundle's own values, which grade their own homework).
    """
    concentration_clients: int = Field(default=10, ge=1)
    """How many clients :attr:`max_concentration` counts: those with the largest terms in the gain."""
    max_concentration: float = Field(default=0.5, gt=0, le=1)
    """The largest share of the gain's variance between clients that its ``concentration_clients``
    largest terms may carry. Above it a few outcomes decide the estimate, its interval cannot be trusted
    and ``promote`` refuses (1: never; docs/decisions/004-value-gate-off-on-the-synthetic-book.md).
    """
    propensity_calibration: Literal["isotonic", "none"] = "isotonic"
    """How the cross-fitted propensities are recalibrated, per mode and out of fold, so that each mode's
    mean inverse-propensity weight is near one (``none``: as the model gives them).
    """


class ModeReadingsConfig(FrozenConfig):
    """Inputs the mode itself moves, and which models see them move (models/mode_readings.py)."""

    renamed_keys: ClassVar[Mapping[str, str]] = {"readings": "`inputs`"}

    inputs: list[str] = Field(min_length=1)
    """Numeric inputs the mode itself moves (e.g. ``rm_contacts_90d``): they move with the mode in the
    counterfactual.
    """
    models: list[Literal["churn", "default"]] = Field(min_length=1)
    """The advisor's models that see them move (``churn``, ``default``)."""

    @model_validator(mode="after")
    def _numeric_schema_columns(self) -> ModeReadingsConfig:
        from crm_modes.data.schema import SCHEMA, Role

        allowed = {c.name for c in SCHEMA if c.numeric and c.feature and c.role is not Role.LABEL}
        unknown = [name for name in self.inputs if name not in allowed]
        if unknown:
            raise ValueError(f"mode_readings: {unknown} are not numeric input columns of the schema")
        return self


class CapacityConfig(FrozenConfig):
    """The bank's capacity for the value policy (models/capacity.py): responsible slots, RM hours and
    moves per run.

    Each bound is a share of the facilities judged together, or hours per facility (a count follows
    from it); leave one out for no bound. With ``per`` the responsible share and the RM hours apply
    within each value of that column (each region's or segment's team its own capacity); the moves
    are book-wide. The allocation maximises the book's total value within them, orders the moves
    most valuable first and prices each bound (what one more slot, hour or move would add). One
    bound is solved by its price in a fraction of a second for a whole book; several together as an
    integer programme, which takes seconds for ten thousand facilities.
    """

    responsible_share: float | None = Field(default=None, ge=0, le=1)
    """At most this share of the facilities in responsible mode (in each group with ``per``)."""
    responsible_shares: dict[str, float] = Field(default_factory=dict)
    """With ``per``: the share of some groups, in place of ``responsible_share`` there."""
    rm_hours_per_facility: float | None = Field(default=None, ge=0)
    """Relationship managers' hours a month, on average per facility judged (in each group with
    ``per``): the hours the modes may use together."""
    hours_by_mode: dict[str, float] | None = None
    """The hours a month a facility needs in each mode (every mode); with ``rm_hours_per_facility``."""
    per: str | None = None
    """A column whose values each have their own capacity, e.g. ``region`` or ``segment``."""
    moves_share: float | None = Field(default=None, ge=0, le=1)
    """At most this share of the facilities leave today's mode in one run."""

    @model_validator(mode="after")
    def _consistent(self) -> CapacityConfig:
        from crm_modes.data.schema import MODES, SCHEMA

        if self.responsible_shares and self.per is None:
            raise ValueError("responsible_shares needs per: the column whose groups they name")
        outside = {name: share for name, share in self.responsible_shares.items() if not 0 <= share <= 1}
        if outside:
            raise ValueError(f"responsible_shares must lie in [0, 1]: {outside}")
        known = {column.name: column.categories for column in SCHEMA}.get(self.per or "", ())
        unknown = sorted(set(self.responsible_shares) - set(known)) if known else []
        if unknown:
            raise ValueError(f"responsible_shares names {unknown}, not values of {self.per}: {list(known)}")
        if (self.rm_hours_per_facility is None) != (self.hours_by_mode is None):
            raise ValueError("rm_hours_per_facility and hours_by_mode come together")
        if self.hours_by_mode is not None:
            if set(self.hours_by_mode) != set(MODES):
                raise ValueError(
                    f"hours_by_mode needs every mode {list(MODES)}: got {sorted(self.hours_by_mode)}"
                )
            negative = {mode: hours for mode, hours in self.hours_by_mode.items() if hours < 0}
            if negative:
                raise ValueError(f"hours_by_mode may not be negative: {negative}")
        return self

    def bounds(self, facilities: int) -> tuple[int | None, int | None]:
        """The book-wide responsible slots and the moves, as counts, for ``facilities`` judged together."""
        return tuple(
            None if share is None else math.floor(share * facilities + 1e-9)
            for share in (self.responsible_share, self.moves_share)
        )

    def budgets(self, current: np.ndarray, table: pd.DataFrame | None = None) -> list[Budget]:
        """The bounds as budgets (:class:`crm_modes.models.capacity.Budget`) for the facilities judged
        together: their modes today ``current`` and, with ``per``, their rows ``table``.

        Raises:
            InputError: ``per`` is set and ``table`` lacks that column.
        """
        import pandas as pd

        from crm_modes.models.capacity import moves_per_run, responsible_slots, rm_hours

        n = len(current)
        group, labels = None, ("book",)
        if self.per is not None:
            if table is None or self.per not in table:
                raise InputError(
                    f"capacity per {self.per!r}: the facilities judged have no column {self.per!r}"
                )
            codes, names = pd.factorize(table[self.per].astype("string").fillna("(none)"), sort=True)
            group, labels = codes.astype(np.int64), tuple(str(name) for name in names)
        counts = np.bincount(group, minlength=len(labels)) if group is not None else np.array([n])
        budgets = []
        if self.responsible_share is not None or self.responsible_shares:
            shares = [self.responsible_shares.get(label, self.responsible_share) for label in labels]
            slots = [
                count if share is None else math.floor(share * count + 1e-9)  # no share: no bound there
                for share, count in zip(shares, counts.tolist(), strict=True)
            ]
            budgets.append(responsible_slots(np.array(slots), group, labels))
        if self.rm_hours_per_facility is not None and self.hours_by_mode is not None:
            budgets.append(rm_hours(self.hours_by_mode, self.rm_hours_per_facility * counts, group, labels))
        _, moves = self.bounds(n)
        if moves is not None:
            budgets.append(moves_per_run(moves, current))
        return budgets


class AdvisorConfig(FrozenConfig):
    """The advisor bundle: the mode, churn and default models, the economics and the alert policy."""

    registered_name: str = "crm-advisor"
    """The registered name of the advisor bundle."""
    policy: Path
    """The alert policy file (``configs/alert_policy.yaml``), relative to this file."""
    economics: Path
    """The economics file (``configs/economics.yaml``), relative to this file."""
    value_gate: ValueGateConfig = Field(default_factory=ValueGateConfig)
    """When ``promote`` accepts the bundle's value policy."""
    mode_readings: ModeReadingsConfig | None = None
    """None: a counterfactual row differs from the row only in its mode."""
    capacity: CapacityConfig | None = None
    """The bank's capacity for the value policy (None: none); the policy report judges it within that."""
    recorded_propensity: EstimatorConfig | None = Field(
        default_factory=lambda: EstimatorConfig(
            type="lightgbm",
            params={
                "n_estimators": 30,
                "learning_rate": 0.1,
                "num_leaves": 7,
                "min_child_samples": 5_000,
                "reg_lambda": 1.0,
            },
        )
    )
    """The model of the probability the bank's practice gave each mode, recorded with every decision
    as ``assigned_propensity`` (what a later off-policy evaluation of the decisions divides by): the
    committee model's features less the readings the mode moves, fitted on the training months and
    calibrated per mode by isotonic regression on the calibration months. Its leaves are large so that
    it cannot recognise a facility it trained on (docs/decisions/025-recorded-propensities.md).
    ``null``: the committee model's own probability, uncalibrated.
    """


class MlflowConfig(FrozenConfig):
    experiment: str = "crm-modes"
    """The MLflow experiment the runs are logged in."""


class TrainingConfig(FrozenConfig):
    """Everything one ``crm-modes train`` needs."""

    base: str | None = None
    """Another training configuration this one starts from (relative to this file): its sections are
    merged key by key, this file's keys winning; ``null`` clears a key (e.g. ``data.generate_rows``)."""
    data: DataConfig
    """Where the table comes from, and how its rows are checked."""
    split: SplitConfig = Field(default_factory=SplitConfig)
    """How rows are split into training, calibration and evaluation."""
    features: FeatureConfig
    """Which columns the models read and how: a feature configuration, or the path of its file."""
    models: dict[str, ModelConfig]
    """The models to train, by name (the advisor needs ``mode``, ``churn`` and ``default``)."""
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    """Where the runs are logged."""
    advisor: AdvisorConfig | None = None
    """The advisor bundle built from the mode, churn and default models (the project's book only)."""
    source_path: SkipJsonSchema[Path | None] = None
    """Set by the loader: the file this configuration was read from (not a key to write)."""
    source_text: SkipJsonSchema[str] = ""
    """Set by the loader: the file's text, logged with every run (not a key to write)."""

    @model_validator(mode="after")
    def _models_present(self) -> TrainingConfig:
        if not self.models:
            raise ValueError("models: name at least one model to train")
        if self.advisor is not None:
            missing = [name for name in ("mode", "churn", "default") if name not in self.models]
            if missing:
                raise ValueError(f"advisor: needs the models mode, churn and default; missing {missing}")
        return self


_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def expand(value: str) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}`` with the environment's values."""

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name in os.environ:
            return os.environ[name]
        if default is None:
            raise InputError(f"environment variable {name} is not set and has no default")
        return default

    return _VARIABLE.sub(substitute, value)


def load_training_config(path: str | os.PathLike[str]) -> TrainingConfig:
    """Parse the training configuration at ``path``.

    The ``features`` entry is either a path to a feature configuration file or the
    feature configuration itself. A ``base`` names another configuration this one starts from:
    its sections are merged key by key, this file's keys winning (``null`` clears one). Errors
    name the file and the offending key.
    """
    path = Path(path)
    raw, text = _resolved(path, ())
    try:
        config = TrainingConfig.model_validate({**raw, "source_path": path.resolve(), "source_text": text})
    except ValidationError as error:
        raise invalid_file(path, error) from None
    return on_book(config)


def _resolved(path: Path, seen: tuple[Path, ...]) -> tuple[dict[str, Any], str]:
    """The configuration at ``path`` with its paths resolved and its ``base`` merged in, and the text
    of every file read (the base's after this one's)."""
    if not path.exists():
        raise InputError(f"{path}: no such configuration file")
    if path.resolve() in seen:
        raise InputError(f"{path}: its base configurations form a cycle")
    text = path.read_text()
    raw = yaml.safe_load(text) or {}
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a mapping at the top level")
    folder = path.parent
    raw = dict(raw)
    features = raw.get("features")
    if isinstance(features, str):
        raw["features"] = load_feature_config(folder / expand(features))
    data = dict(raw.get("data") or {})
    for key in ("path", "profile", "quarantine", "book"):
        if isinstance(data.get(key), str):
            data[key] = str((folder / expand(data[key])).resolve())
    raw["data"] = data
    advisor = raw.get("advisor")
    if isinstance(advisor, dict):
        raw["advisor"] = {
            **advisor,
            **{
                key: (folder / expand(advisor[key])).resolve()
                for key in ("policy", "economics")
                if isinstance(advisor.get(key), str)
            },
        }
    base = raw.get("base")
    if not isinstance(base, str):
        return raw, text
    base_path = (folder / expand(base)).resolve()
    inherited, base_text = _resolved(base_path, (*seen, path.resolve()))
    merged = _merged(inherited, raw)
    merged["base"] = str(base_path)
    return merged, f"{text}\n# --- {base_path.name} (base) ---\n{base_text}"


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over``'s keys over ``base``'s, mappings merged key by key."""
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        merged[key] = _merged(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
    return merged


def on_book(config: TrainingConfig) -> TrainingConfig:
    """``config`` for the book its ``data.book`` contract describes (unchanged without a contract)."""
    contract = config.data.book_contract()
    return config if contract is None else without_inputs(config, contract.missing_inputs())


def without_inputs(config: TrainingConfig, missing: list[str]) -> TrainingConfig:
    """``config`` for a book that lacks the inputs ``missing``: they leave the features (with every
    domain feature and ratio that reads them) and the readings the mode moves."""
    update: dict[str, object] = {"features": config.features.without(missing)}
    readings = config.advisor.mode_readings if config.advisor is not None else None
    if readings is not None:
        kept = [name for name in readings.inputs if name not in missing]
        update["advisor"] = config.advisor.model_copy(
            update={"mode_readings": readings.model_copy(update={"inputs": kept}) if kept else None}
        )
    return config.model_copy(update=update)
