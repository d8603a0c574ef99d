"""The advisor: three fitted pipelines, the economics and the alert policy, one row of advice per facility.

Two views of the mode, kept apart. The **committee model** (the ``mode`` pipeline)
imitates what the bank's practice would assign (``committee_mode`` and one probability per
mode; it is also the propensity model of the off-policy estimate). The **value policy**
decides: the churn and PD models take the mode as an input, so each row is scored as if
served in each of the three modes (counterfactual prediction, an "S-learner", with the
readings the mode itself moves moved with it: :mod:`crm_modes.models.mode_readings`); the
economics prices each mode (:mod:`crm_modes.models.economics`), and ``recommended_mode``
is the mode of highest 12-month expected value, leaving today's mode only when the gain
exceeds the switching cost.

:class:`Advisor` is the plain-Python core (testable on an in-memory DataFrame);
:class:`AdvisorModel` is the thin MLflow pyfunc shell around it that loads the pipelines
from the model's artifacts (skops, reviewed trusted types) in ``load_context``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import mlflow.pyfunc
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from crm_modes.data.schema import KEY, MODES
from crm_modes.features import fast
from crm_modes.features.entrance import UnusedColumnsWarning
from crm_modes.models import fast_paths
from crm_modes.models.alerts import (
    PREDICTIVE_CHURN,
    PREDICTIVE_PD,
    AlertPolicy,
    Alerts,
    Signals,
    actions,
    evaluate_alerts,
    load_policy,
    risk_grades,
)
from crm_modes.models.economics import (
    Economics,
    choose_modes,
    expected_loss,
    load_economics,
    recommendation_reasons,
    value_parts,
)
from crm_modes.models.mode_readings import ModeReadings, load_mode_readings
from crm_modes.models.reasons import top_reasons
from crm_modes.models.serialization import load_pipeline

#: Identifier columns passed through to the output, in order.
PASS_THROUGH = ("client_id", *KEY)
PROBABILITY_COLUMNS = tuple(f"probability_{mode}" for mode in MODES)
VALUE_COLUMNS = tuple(f"value_{mode}" for mode in MODES)
#: Every output column after the identifiers, in order, with its MLflow type.
OUTPUT_TYPES: dict[str, str] = {
    "recommended_mode": "string",
    "recommendation_reason": "string",
    **dict.fromkeys(VALUE_COLUMNS, "double"),
    "committee_mode": "string",
    **dict.fromkeys(PROBABILITY_COLUMNS, "double"),
    "churn_probability": "double",
    "default_probability": "double",
    "risk_grade": "string",
    "expected_loss": "double",
    "alert_level": "string",
    "alert_codes": "string",
    "alert_reasons": "string",
    "recommended_action": "string",
    "mode_change": "string",
    "model_version": "string",
}
ARTIFACTS = ("mode", "churn", "default")
MODE_NAMES = np.asarray(MODES, dtype=object)
POLICY_ARTIFACT = "alert_policy"
ECONOMICS_ARTIFACT = "economics"
READINGS_ARTIFACT = "mode_readings"


@dataclass(frozen=True)
class Counterfactual:
    """Churn and default probabilities of each row as if served in each mode, shape (n, modes)."""

    churn: np.ndarray
    default: np.ndarray


@dataclass
class Advisor:
    """Recommend a mode, predict churn and default, raise alerts with reasons."""

    mode: Pipeline
    churn: Pipeline
    default: Pipeline
    policy: AlertPolicy
    economics: Economics
    model_version: str = "crm-advisor"
    #: Mode-driven readings and the models that see them move (None: only the mode moves).
    readings: ModeReadings | None = None

    def __post_init__(self) -> None:
        # The churn and PD models are trained on the same rows with the same feature
        # configuration, so their fitted feature pipelines are usually identical: then the
        # matrix is computed once for both.
        self._shared_features = same_state(self.churn["features"], self.default["features"])
        # model name -> {mode: {matrix column: value}} for the columns the mode alone decides
        self._mode_swaps: dict[str, dict[str, dict[str, float]] | None] = {}

    def counterfactual(self, frame: pd.DataFrame) -> Counterfactual:
        """Score every row once per mode, the mode column replaced (columns in MODES order).

        A counterfactual probability is exactly the model's prediction for that row with
        ``assigned_mode`` set to the mode and, for the models named in ``readings``, the
        mode-driven readings moved with it (:meth:`ModeReadings.in_mode`). Otherwise the
        feature matrix is computed once and, for each mode, only the matrix columns that the
        mode alone decides are swapped in; the three copies go through each model in one call.
        """
        n = len(frame)
        stacked = {"default": self._mode_matrices("default", frame)}
        stacked["churn"] = (
            stacked["default"]
            if self._shared_features and self._moves_readings("churn") == self._moves_readings("default")
            else self._mode_matrices("churn", frame)
        )
        return Counterfactual(
            **{
                name: getattr(self, name)["model"].predict_proba(stacked[name])[:, 1].reshape(len(MODES), n).T
                for name in ("churn", "default")
            }
        )

    def _mode_matrices(self, name: str, frame: pd.DataFrame) -> pd.DataFrame:
        """Model ``name``'s feature matrix of ``frame`` in each mode, stacked in MODES order."""
        features = getattr(self, name)["features"]
        if self._moves_readings(name):  # the readings move with the mode: every copy differs
            return _transform_each(features, self.readings.in_every_mode(frame))
        if name not in self._mode_swaps:  # learnt once, from the first rows scored
            self._mode_swaps[name] = _mode_columns(features, frame)
        swaps = self._mode_swaps[name]
        if swaps is None:  # the mode reaches other columns too: transform every copy
            return _transform_each(features, [frame.assign(assigned_mode=mode) for mode in MODES])
        base = fast.transform(features, frame.assign(assigned_mode=MODES[0]))
        n = len(base)
        stacked = np.vstack([base.to_numpy()] * len(MODES))
        positions = {column: base.columns.get_loc(column) for column in swaps[MODES[0]]}
        for index, mode in enumerate(MODES):
            for column, value in swaps[mode].items():
                stacked[index * n : (index + 1) * n, positions[column]] = value
        return pd.DataFrame(stacked, columns=base.columns, copy=False)

    def _moves_readings(self, name: str) -> bool:
        return self.readings is not None and name in self.readings.models

    def advise(self, frame: pd.DataFrame, *, model_version: str | None = None) -> pd.DataFrame:
        """One row of advice per input row, in input order.

        ``frame`` carries the scoring columns of the schema (identifiers optional,
        ``assigned_mode`` and ``previous_default_probability`` optional). Churn, PD, grade
        and alerts are those of the mode applied today; rows that do not say it are judged
        in the recommended mode.
        """
        frame = frame.reset_index(drop=True)
        n = len(frame)
        rows = np.arange(n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnusedColumnsWarning)
            mode_probabilities = self.mode["model"].predict_proba(
                fast.transform(self.mode["features"], frame)
            )
            classes = [str(label) for label in self.mode.classes_]
            probabilities = np.column_stack(
                [
                    mode_probabilities[:, classes.index(mode)] if mode in classes else np.zeros(n)
                    for mode in MODES
                ]
            )
            committee = probabilities.argmax(axis=1)
            given = _mode_index(frame.get("assigned_mode"), n)
            mode_given = given >= 0
            predicted = self.counterfactual(frame)
            exposure = _column(frame, "exposure", n)
            collateral = _column(frame, "collateral_coverage", n)
            parts = value_parts(
                predicted.default,
                predicted.churn,
                exposure=exposure,
                margin_bps=_column(frame, "margin_bps", n),
                collateral_coverage=collateral,
                economics=self.economics,
            )
            values = parts.values()
            recommended = choose_modes(values, given, self.economics.switching_cost)
            mode_today = np.where(mode_given, given, recommended)
            churn = predicted.churn[rows, mode_today]
            default = predicted.default[rows, mode_today]

            signals = Signals(
                mode_today=mode_today,
                recommended_mode=recommended,
                mode_given=mode_given,
                default_probability=default,
                previous_default_probability=_column(frame, "previous_default_probability", n),
                churn_probability=churn,
                days_past_due=_column(frame, "days_past_due", n),
                project_delay_months=_column(frame, "project_delay_months", n),
                covenant_breaches_12m=_column(frame, "covenant_breaches_12m", n),
            )
            alerts = evaluate_alerts(signals, self.policy)
            reasons = self._reasons(frame.assign(assigned_mode=MODE_NAMES[mode_today]), alerts)

        output = {name: frame[name].to_numpy() for name in PASS_THROUGH if name in frame}
        output["recommended_mode"] = MODE_NAMES[recommended]
        output["recommendation_reason"] = recommendation_reasons(
            parts, recommended, _reference_modes(values, recommended, mode_today)
        )
        for index, column in enumerate(VALUE_COLUMNS):
            output[column] = values[:, index]
        output["committee_mode"] = MODE_NAMES[committee]
        for index, column in enumerate(PROBABILITY_COLUMNS):
            output[column] = probabilities[:, index]
        output["churn_probability"] = churn
        output["default_probability"] = default
        output["risk_grade"] = risk_grades(default, self.policy)
        output["expected_loss"] = expected_loss(default, exposure, collateral, mode_today, self.economics)
        output["alert_level"] = np.asarray(self.policy.levels, dtype=object)[alerts.level]
        output["alert_codes"] = alerts.codes
        output["alert_reasons"] = reasons
        output["recommended_action"] = actions(alerts, self.policy)
        output["mode_change"] = np.where(
            mode_given & (recommended != mode_today),
            MODE_NAMES[mode_today] + " -> " + MODE_NAMES[recommended],
            "",
        )
        output["model_version"] = np.full(n, model_version or self.model_version, dtype=object)
        return pd.DataFrame(output)

    def _reasons(self, scored: pd.DataFrame, alerts: Alerts) -> list[str]:
        """Reasons for predictive alerts only, so the quiet majority costs nothing."""
        top = self.policy.reasons.get("top", 3)
        reasons = [""] * len(scored)
        for label, name, codes in (("PD", "default", PREDICTIVE_PD), ("churn", "churn", PREDICTIVE_CHURN)):
            rows = np.flatnonzero(alerts.fired(codes))
            if not rows.size:
                continue
            texts = top_reasons(getattr(self, name), scored.iloc[rows], top)
            for row, text in zip(rows, texts, strict=True):
                entry = f"{label} up because: {text}"
                reasons[row] = f"{reasons[row]} | {entry}" if reasons[row] else entry
        return reasons


def _transform_each(features: Pipeline, frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The feature matrices of ``frames`` (same length) one under the other, written into one
    array: the models read it without a copy."""
    first = fast.transform(features, frames[0])
    n = len(first)
    stacked = np.empty((len(frames) * n, first.shape[1]))
    stacked[:n] = first.to_numpy()
    for index, frame in enumerate(frames[1:], start=1):
        fast.transform(features, frame, out=stacked[index * n : (index + 1) * n])
    return pd.DataFrame(stacked, columns=first.columns, copy=False)


def _mode_columns(features: Pipeline, frame: pd.DataFrame) -> dict[str, dict[str, float]] | None:
    """Matrix columns that depend on ``assigned_mode`` alone, and their value for each mode.

    Found by transforming two different rows of ``frame`` in every mode: a column whose value
    changes with the mode must take the same value in both rows for each mode (it reads the
    mode and nothing else). ``None`` when that does not hold (then nothing can be swapped).
    """
    probe_rows = frame.iloc[[0, len(frame) - 1]] if len(frame) > 1 else frame.iloc[[0, 0]]
    probes = {mode: fast.transform(features, probe_rows.assign(assigned_mode=mode)) for mode in MODES}
    first = probes[MODES[0]]
    changing = [
        column
        for column in first.columns
        if any(not np.array_equal(probes[mode][column], first[column], equal_nan=True) for mode in MODES[1:])
    ]
    for mode in MODES:
        values = probes[mode][changing].to_numpy()
        if not np.array_equal(values[0], values[-1], equal_nan=True):
            return None
    return {mode: {column: probes[mode][column].iloc[0] for column in changing} for mode in MODES}


def _reference_modes(values: np.ndarray, recommended: np.ndarray, mode_today: np.ndarray) -> np.ndarray:
    """What a recommendation is explained against: today's mode, or the next best when it stays."""
    ranked = np.argsort(-values, axis=1)
    runner_up = np.where(ranked[:, 0] == recommended, ranked[:, 1], ranked[:, 0])
    return np.where(recommended != mode_today, mode_today, runner_up)


def same_state(first: object, second: object) -> bool:
    """Whether two fitted objects hold the same state (types, parameters, learned arrays)."""
    if type(first) is not type(second):
        return False
    if isinstance(first, np.ndarray):
        return first.shape == second.shape and bool(
            np.array_equal(first, second, equal_nan=first.dtype.kind == "f")
        )
    if isinstance(first, dict):
        return first.keys() == second.keys() and all(same_state(first[k], second[k]) for k in first)
    if isinstance(first, list | tuple):
        return len(first) == len(second) and all(same_state(a, b) for a, b in zip(first, second, strict=True))
    if hasattr(first, "__dict__") and not isinstance(first, type):
        return same_state(vars(first), vars(second))
    return bool(first == second)


def _column(frame: pd.DataFrame, name: str, n: int) -> np.ndarray:
    if name not in frame:
        return np.full(n, np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _mode_index(values: pd.Series | None, n: int) -> np.ndarray:
    """Index into MODES of each value; -1 where absent or not a mode."""
    if values is None:
        return np.full(n, -1)
    return pd.Index(MODES).get_indexer(values.astype(object).where(values.notna(), None))


class AdvisorModel(mlflow.pyfunc.PythonModel):
    """MLflow shell: load the pipelines and policy from artifacts; delegate to :class:`Advisor`."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        # Loaded copies only (never saved again) get the in-memory fast paths.
        pipelines = {name: fast_paths.install(load_pipeline(context.artifacts[name])) for name in ARTIFACTS}
        policy = load_policy(context.artifacts[POLICY_ARTIFACT])
        economics = load_economics(context.artifacts[ECONOMICS_ARTIFACT])
        version = (context.model_config or {}).get("model_version", "crm-advisor")
        readings_path = context.artifacts.get(READINGS_ARTIFACT)
        readings = load_mode_readings(readings_path) if readings_path else None
        self.advisor = Advisor(
            **pipelines, policy=policy, economics=economics, model_version=version, readings=readings
        )

    def predict(
        self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        version = (params or {}).get("model_version") or None
        return self.advisor.advise(model_input, model_version=version)
