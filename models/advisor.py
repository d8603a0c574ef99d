"""The advisor: three fitted pipelines, the economics and the alert policy, one row of advice per facility.

Two views of the mode, kept apart. The **committee model** (the ``mode`` pipeline)
imitates what the bank's practice would assign (``committee_mode`` and one probability per
mode; the probability each decision records of its mode comes from the bundle's own calibrated
propensity model, :mod:`crm_modes.training.propensity`, where it ships one). The **value policy**
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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from crm_modes.data.schema import KEY, MODES
from crm_modes.features import fast
from crm_modes.features.columns import Columns, Labels
from crm_modes.features.entrance import UnusedColumnsWarning
from crm_modes.models import gain_uncertainty, sklearn_adapter
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
    value_slopes,
)
from crm_modes.models.mode_readings import ModeReadings, load_mode_readings, mode_index
from crm_modes.models.reasons import top_reasons
from crm_modes.models.scored_values import GAIN_ERROR_COLUMNS, VALUE_COLUMNS
from crm_modes.models.serialization import load_pipeline
from crm_modes.shared.errors import InputError

#: Identifier columns passed through to the output, in order.
PASS_THROUGH = ("client_id", *KEY)
PROBABILITY_COLUMNS = tuple(f"probability_{mode}" for mode in MODES)
#: Every output column after the identifiers, in order, with its MLflow type.
OUTPUT_TYPES: dict[str, str] = {
    "recommended_mode": "string",
    "recommendation_reason": "string",
    **dict.fromkeys(VALUE_COLUMNS, "double"),
    **dict.fromkeys(GAIN_ERROR_COLUMNS, "double"),
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
    "assigned_mode": "string",
    "assigned_propensity": "double",
    "model_version": "string",
}
ARTIFACTS = ("mode", "churn", "default")
#: The recorded propensity's pipeline (optional: a bundle without it records the committee model's).
PROPENSITY_ARTIFACT = "propensity"
MODE_NAMES = np.asarray(MODES, dtype=object)
POLICY_ARTIFACT = "alert_policy"
ECONOMICS_ARTIFACT = "economics"
READINGS_ARTIFACT = "mode_readings"
REFERENCE_ARTIFACT = "monitoring_reference"
BOOK_ARTIFACT = "book_contract"
BOOK_PROFILE_ARTIFACT = "book_profile"
#: The file each of the bundle's configuration artifacts is logged as.
ARTIFACT_FILES = {
    POLICY_ARTIFACT: "alert_policy.yaml",
    ECONOMICS_ARTIFACT: "economics.yaml",
    READINGS_ARTIFACT: "mode_readings.json",
    REFERENCE_ARTIFACT: "monitoring_reference.json",
    BOOK_ARTIFACT: "book_contract.yaml",
    BOOK_PROFILE_ARTIFACT: "book_profile.yaml",
}


def artifact_path(model_root: Path, artifact: str) -> Path:
    """Where the (verified) copy of a registered bundle at ``model_root`` keeps ``artifact``."""
    return model_root / "artifacts" / ARTIFACT_FILES[artifact]


def is_advisor(model_root: Path) -> bool:
    """Whether the copy of a registered version at ``model_root`` is the advisor bundle (it ships an
    alert policy); otherwise it is a single model, which answers probabilities only."""
    return artifact_path(model_root, POLICY_ARTIFACT).exists()


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
    #: The probability the bank's practice gave each mode, calibrated, recorded with each decision
    #: (``assigned_propensity``; None: the committee model's own probability).
    propensity: Pipeline | None = None

    def __post_init__(self) -> None:
        # The churn and PD models are trained on the same rows with the same feature
        # configuration, so their fitted feature pipelines are usually identical: then the
        # matrices are computed once for both.
        self._shared_features = same_state(self.churn["features"], self.default["features"])

    def as_loaded(self) -> Advisor:
        """A copy that scores as the loaded model will: the fast paths installed on copies of the
        pipelines (:func:`sklearn_adapter.loaded_copy`), this advisor's own left as they are (they
        may still be saved, and a pipeline with a fast path installed is not one the serializer takes)."""
        pipelines = {name: getattr(self, name) for name in (*ARTIFACTS, PROPENSITY_ARTIFACT)}
        return replace(
            self,
            **{
                name: sklearn_adapter.loaded_copy(pipeline)
                for name, pipeline in pipelines.items()
                if pipeline is not None
            },
        )

    def counterfactual(self, rows: pd.DataFrame | Columns) -> Counterfactual:
        """Score every row once per mode, the mode column replaced (columns in MODES order).

        A counterfactual probability is exactly the model's prediction for that row with
        ``assigned_mode`` set to the mode and, for the models named in ``readings``, the
        mode-driven readings moved with it (:meth:`ModeReadings.in_every_mode`). The input is
        read once (:class:`~crm_modes.features.columns.Columns`). A logistic model (plain or calibrated)
        scores each copy as a linear product without the one-hot matrix (:func:`fast.dot`);
        for any other model the three copies of its matrix are written into one array and go
        through the model in one call.
        """
        rows = Columns.of(rows)
        n = len(rows)
        variants = {name: self._variants(name, rows) for name in ("churn", "default")}
        predicted = {name: self._linear_by_mode(name, variants[name]) for name in ("churn", "default")}
        same = self._shared_features and self._moves_readings("churn") == self._moves_readings("default")
        matrices: dict[str, np.ndarray] = {}  # each model's three copies, stacked; shared when the same
        for name in ("default", "churn"):
            if predicted[name] is None:
                key = "both" if same else name
                if key not in matrices:
                    matrices[key] = _stacked_matrix(getattr(self, name)["features"], variants[name])
                predicted[name] = _positive(getattr(self, name), matrices[key]).reshape(len(MODES), n).T
        return Counterfactual(**predicted)

    def _linear_by_mode(self, name: str, variants: list[Columns]) -> np.ndarray | None:
        """Model ``name``'s probabilities in each mode, shape (n, modes), for a logistic
        model: the linear product without the wide matrix (:func:`linear_positive`). None otherwise."""
        probabilities = [linear_positive(getattr(self, name), variant) for variant in variants]
        if any(positive is None for positive in probabilities):
            return None  # the plain path, whose checks name the problem
        return np.column_stack(probabilities)

    def _variants(self, name: str, rows: Columns) -> list[Columns]:
        """``rows`` as model ``name`` sees them in each mode, in MODES order."""
        if self._moves_readings(name):
            return self.readings.in_every_mode(rows)
        return [rows.replaced(assigned_mode=Labels.constant(mode, len(rows))) for mode in MODES]

    def _moves_readings(self, name: str) -> bool:
        return self.readings is not None and name in self.readings.models

    def advise(self, frame: pd.DataFrame, *, model_version: str | None = None) -> pd.DataFrame:
        """One row of advice per input row, in input order.

        ``frame`` carries the scoring columns of the schema (identifiers optional,
        ``assigned_mode`` and ``previous_default_probability`` optional). Churn, PD, grade
        and alerts are those of the mode applied today; rows that do not say it are judged
        in the recommended mode.
        """
        if not frame.index.equals(pd.RangeIndex(len(frame))):  # reset_index copies every column
            frame = frame.reset_index(drop=True)
        columns = Columns(frame)  # every input column is converted once, on first use
        n = len(frame)
        rows = np.arange(n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnusedColumnsWarning)
            probabilities = _probabilities_by_mode(self.mode, columns)
            committee = probabilities.argmax(axis=1)
            given = mode_index(columns, "assigned_mode") if "assigned_mode" in columns else np.full(n, -1)
            mode_given = given >= 0
            predicted = self.counterfactual(columns)
            exposure = _column(columns, "exposure")
            collateral = _column(columns, "collateral_coverage")
            parts = value_parts(
                predicted.default,
                predicted.churn,
                exposure=exposure,
                margin_bps=_column(columns, "margin_bps"),
                collateral_coverage=collateral,
                economics=self.economics,
            )
            values = parts.values()
            confidence = self.economics.move_confidence
            uncertainty = self.gain_errors(frame, given) if confidence > 0 else None
            recommended = choose_modes(
                values, given, self.economics.switching_cost, uncertainty=uncertainty, confidence=confidence
            )
            mode_today = np.where(mode_given, given, recommended)
            churn = predicted.churn[rows, mode_today]
            default = predicted.default[rows, mode_today]

            signals = Signals(
                mode_today=mode_today,
                recommended_mode=recommended,
                mode_given=mode_given,
                default_probability=default,
                previous_default_probability=_column(columns, "previous_default_probability"),
                churn_probability=churn,
                days_past_due=_column(columns, "days_past_due"),
                project_delay_months=_column(columns, "project_delay_months"),
                covenant_breaches_12m=_column(columns, "covenant_breaches_12m"),
            )
            alerts = evaluate_alerts(signals, self.policy)
            reasons = self._reasons(columns, mode_today, alerts)
            logging = probabilities
            if self.propensity is not None:
                logging = self.logging_probabilities(columns, mode_given)

        output = {name: frame[name].to_numpy(copy=True) for name in PASS_THROUGH if name in frame}
        output["recommended_mode"] = MODE_NAMES[recommended]
        output["recommendation_reason"] = recommendation_reasons(
            parts, recommended, _reference_modes(values, recommended, mode_today)
        )
        for index, column in enumerate(VALUE_COLUMNS):
            output[column] = values[:, index]
        for index, column in enumerate(GAIN_ERROR_COLUMNS):
            output[column] = uncertainty[:, index] if uncertainty is not None else np.full(n, np.nan)
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
        # The mode applied and the probability the logging policy gave it: what an off-policy
        # evaluation of recorded decisions needs later.
        applied = np.maximum(given, 0)
        output["assigned_mode"] = np.where(mode_given, MODE_NAMES[applied], None)
        output["assigned_propensity"] = np.where(mode_given, logging[rows, applied], np.nan)
        output["model_version"] = np.full(n, model_version or self.model_version, dtype=object)
        return pd.DataFrame(output, copy=False)  # the arrays are this call's own

    def logging_probabilities(self, columns: Columns, rows: np.ndarray) -> np.ndarray:
        """The recorded propensity's probability of each mode (MODES order) for ``rows`` (a mask);
        zero for the other rows, which are not scored."""
        probabilities = np.zeros((len(columns), len(MODES)))
        if not rows.any():
            return probabilities
        scored = (
            columns
            if rows.all()
            else Columns(columns.frame.iloc[np.flatnonzero(rows)].reset_index(drop=True))
        )
        probabilities[rows] = _probabilities_by_mode(self.propensity, scored)
        return probabilities

    def gain_errors(self, frame: pd.DataFrame, mode_today: np.ndarray) -> np.ndarray:
        """The standard error of each mode's value less today's, shape (rows, modes), through the
        churn and PD models' coefficients (:mod:`crm_modes.models.gain_uncertainty`), in chunks.

        Raises:
            InputError: an outcome model carries no coefficient covariance (not logistic).
        """
        whole = Columns(frame)
        default_slope, churn_slope = value_slopes(
            exposure=_column(whole, "exposure"),
            margin_bps=_column(whole, "margin_bps"),
            collateral_coverage=_column(whole, "collateral_coverage"),
            economics=self.economics,
        )
        errors = np.zeros((len(frame), len(MODES)))
        for start in range(0, len(frame), gain_uncertainty.CHUNK_ROWS):
            chunk = slice(start, start + gain_uncertainty.CHUNK_ROWS)
            columns = Columns(frame.iloc[chunk].reset_index(drop=True))
            models = [
                (self.churn, self._variants("churn", columns), churn_slope[chunk]),
                (self.default, self._variants("default", columns), default_slope[chunk]),
            ]
            try:
                errors[chunk] = gain_uncertainty.gain_standard_errors(models, mode_today[chunk])
            except ValueError as error:
                raise InputError(f"economics.move_confidence: {error}") from error
        return errors

    def _reasons(self, columns: Columns, mode_today: np.ndarray, alerts: Alerts) -> list[str]:
        """Reasons for predictive alerts only, so the quiet majority costs nothing: the rows whose
        alert fired are explained in the mode applied today. When every row fired (one record that
        raised an alert, say), the rows already read are explained as they are, the mode set."""
        top = self.policy.reasons.get("top", 3)
        reasons = [""] * len(columns)
        for label, name, codes in (("PD", "default", PREDICTIVE_PD), ("churn", "churn", PREDICTIVE_CHURN)):
            rows = np.flatnonzero(alerts.fired(codes))
            if not rows.size:
                continue
            if rows.size == len(columns):
                scored = columns.replaced(assigned_mode=Labels(mode_today.astype(np.intp), MODE_NAMES))
            else:
                scored = columns.frame.iloc[rows].assign(assigned_mode=MODE_NAMES[mode_today[rows]])
            texts = top_reasons(getattr(self, name), scored, top)
            for row, text in zip(rows, texts, strict=True):
                entry = f"{label} up because: {text}"
                reasons[row] = f"{reasons[row]} | {entry}" if reasons[row] else entry
        return reasons


def in_mode_order(probabilities: np.ndarray, classes: Iterable[object]) -> np.ndarray:
    """A classifier's probabilities (rows x its ``classes``) as one column per mode, in MODES order;
    zero for a mode it never saw."""
    names = [str(label) for label in classes]
    return np.column_stack(
        [
            probabilities[:, names.index(mode)] if mode in names else np.zeros(len(probabilities))
            for mode in MODES
        ]
    )


def _probabilities_by_mode(pipeline: Pipeline, rows: Columns) -> np.ndarray:
    """The mode classifier ``pipeline``'s probability of each mode for ``rows``, in MODES order."""
    features = pipeline["features"]
    predicted = sklearn_adapter.predict_proba(
        pipeline["model"], fast.matrix(features, rows), fast.feature_names(features)
    )
    return in_mode_order(predicted, pipeline.classes_)


def _stacked_matrix(features: Pipeline, variants: list[Columns]) -> np.ndarray:
    """The feature matrices of ``variants`` (same rows) one under the other, in one array."""
    first = fast.matrix(features, variants[0])
    n = len(first)
    stacked = np.empty((len(variants) * n, first.shape[1]))
    stacked[:n] = first
    for index, variant in enumerate(variants[1:], start=1):
        fast.matrix(features, variant, out=stacked[index * n : (index + 1) * n])
    return stacked


def _positive(pipeline: Pipeline, matrix: np.ndarray) -> np.ndarray:
    """The probability of the positive class of each row of ``matrix`` (the pipeline's features)."""
    return sklearn_adapter.predict_proba(pipeline["model"], matrix, fast.feature_names(pipeline["features"]))[
        :, 1
    ]


def linear_positive(pipeline: Pipeline, rows: Columns) -> np.ndarray | None:
    """The probability of the positive class of each of ``rows`` for a logistic model with its
    direct form installed (:func:`sklearn_adapter.install`), from the linear product without the
    wide matrix (:func:`fast.dot`). None when the model has no direct form or the product is not
    finite: then the plain path scores the rows, and its checks name the problem."""
    linear = sklearn_adapter.linear_logistic(pipeline["model"])
    if linear is None:
        return None
    product = fast.dot(pipeline["features"], rows, linear.coef)
    if product is None or not np.isfinite(product).all():
        return None
    return linear.positive(product)


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


def _column(rows: Columns, name: str) -> np.ndarray:
    """A numeric input as float64; all NaN when the rows lack it (an optional input)."""
    return rows.number(name) if name in rows else np.full(len(rows), np.nan)


def advisor_from_files(files: Mapping[str, str], *, model_version: str = "crm-advisor") -> Advisor:
    """The advisor from its artifact files (``files``: artifact name -> path), as the pyfunc loads it.

    Loaded copies only (never saved again) get the in-memory fast paths.
    """
    pipelines = {name: sklearn_adapter.install(load_pipeline(files[name])) for name in ARTIFACTS}
    readings_path = files.get(READINGS_ARTIFACT)
    propensity_path = files.get(PROPENSITY_ARTIFACT)
    return Advisor(
        **pipelines,
        propensity=sklearn_adapter.install(load_pipeline(propensity_path)) if propensity_path else None,
        policy=load_policy(files[POLICY_ARTIFACT]),
        economics=load_economics(files[ECONOMICS_ARTIFACT]),
        model_version=model_version,
        readings=load_mode_readings(readings_path) if readings_path else None,
    )


def bundle_advisor(model_root: Path, *, model_version: str = "crm-advisor") -> Advisor:
    """The advisor of the verified copy of a registered bundle at ``model_root``, loaded from its files
    (for what needs its parts, e.g. the policy report's refits; scoring goes through the pyfunc)."""
    files = {name: str(model_root / "artifacts" / f"{name}.skops") for name in ARTIFACTS}
    propensity = model_root / "artifacts" / f"{PROPENSITY_ARTIFACT}.skops"
    if propensity.exists():
        files[PROPENSITY_ARTIFACT] = str(propensity)
    for artifact in (POLICY_ARTIFACT, ECONOMICS_ARTIFACT, READINGS_ARTIFACT):
        if artifact_path(model_root, artifact).exists():
            files[artifact] = str(artifact_path(model_root, artifact))
    return advisor_from_files(files, model_version=model_version)


class AdvisorModel(mlflow.pyfunc.PythonModel):
    """MLflow shell: load the pipelines and policy from artifacts; delegate to :class:`Advisor`."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        version = (context.model_config or {}).get("model_version", "crm-advisor")
        self.advisor = advisor_from_files(context.artifacts, model_version=version)

    def predict(
        self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        version = (params or {}).get("model_version") or None
        return self.advisor.advise(model_input, model_version=version)
