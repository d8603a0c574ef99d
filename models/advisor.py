"""The advisor: three fitted pipelines and the alert policy, one row of advice per facility.

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
    expected_loss,
    load_policy,
    risk_grades,
)
from crm_modes.models.reasons import top_reasons
from crm_modes.models.serialization import load_pipeline

#: Identifier columns passed through to the output, in order.
PASS_THROUGH = ("client_id", *KEY)
PROBABILITY_COLUMNS = tuple(f"probability_{mode}" for mode in MODES)
#: Every output column after the identifiers, in order, with its MLflow type.
OUTPUT_TYPES: dict[str, str] = {
    "recommended_mode": "string",
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
POLICY_ARTIFACT = "alert_policy"


@dataclass
class Advisor:
    """Recommend a mode, predict churn and default, raise alerts with reasons."""

    mode: Pipeline
    churn: Pipeline
    default: Pipeline
    policy: AlertPolicy
    model_version: str = "crm-advisor"

    def __post_init__(self) -> None:
        # The churn and PD models are trained on the same rows with the same feature
        # configuration, so their fitted feature pipelines are usually identical: then the
        # matrix is computed once for both.
        self._shared_features = same_state(self.churn["features"], self.default["features"])

    def _features(self, scored: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """The churn and PD models' feature matrices (one computation when they are the same)."""
        default = fast.transform(self.default["features"], scored)
        churn = default if self._shared_features else fast.transform(self.churn["features"], scored)
        return {"churn": churn, "default": default}

    def advise(self, frame: pd.DataFrame, *, model_version: str | None = None) -> pd.DataFrame:
        """One row of advice per input row, in input order.

        ``frame`` carries the scoring columns of the schema (identifiers optional,
        ``assigned_mode`` and ``previous_default_probability`` optional). Rows without the
        mode applied today are scored as if served in the recommended mode.
        """
        frame = frame.reset_index(drop=True)
        n = len(frame)
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
            recommended = probabilities.argmax(axis=1)
            given = _mode_index(frame.get("assigned_mode"), n)
            mode_given = given >= 0
            mode_today = np.where(mode_given, given, recommended)
            scored = frame.assign(assigned_mode=np.asarray(MODES, dtype=object)[mode_today])
            matrices = self._features(scored)
            churn = self.churn["model"].predict_proba(matrices["churn"])[:, 1]
            default = self.default["model"].predict_proba(matrices["default"])[:, 1]

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
            reasons = self._reasons(scored, matrices, alerts)

        names = np.asarray(MODES, dtype=object)
        output = {name: frame[name].to_numpy() for name in PASS_THROUGH if name in frame}
        output["recommended_mode"] = names[recommended]
        for index, column in enumerate(PROBABILITY_COLUMNS):
            output[column] = probabilities[:, index]
        output["churn_probability"] = churn
        output["default_probability"] = default
        output["risk_grade"] = risk_grades(default, self.policy)
        output["expected_loss"] = expected_loss(
            default,
            _column(frame, "exposure", n),
            _column(frame, "collateral_coverage", n),
            mode_today,
            self.policy,
        )
        output["alert_level"] = np.asarray(self.policy.levels, dtype=object)[alerts.level]
        output["alert_codes"] = alerts.codes
        output["alert_reasons"] = reasons
        output["recommended_action"] = actions(alerts, self.policy)
        output["mode_change"] = np.where(
            mode_given & (recommended != mode_today), names[mode_today] + " -> " + names[recommended], ""
        )
        output["model_version"] = np.full(n, model_version or self.model_version, dtype=object)
        output = pd.DataFrame(output)
        return output

    def _reasons(self, scored: pd.DataFrame, matrices: dict[str, pd.DataFrame], alerts: Alerts) -> list[str]:
        """Reasons for predictive alerts only, so the quiet majority costs nothing."""
        top = self.policy.reasons.get("top", 3)
        reasons = [""] * len(scored)
        for label, name, codes in (("PD", "default", PREDICTIVE_PD), ("churn", "churn", PREDICTIVE_CHURN)):
            rows = np.flatnonzero(alerts.fired(codes))
            texts = top_reasons(getattr(self, name), scored.iloc[rows], top, matrix=matrices[name].iloc[rows])
            for row, text in zip(rows, texts, strict=True):
                entry = f"{label} up because: {text}"
                reasons[row] = f"{reasons[row]} | {entry}" if reasons[row] else entry
        return reasons


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
        version = (context.model_config or {}).get("model_version", "crm-advisor")
        self.advisor = Advisor(**pipelines, policy=policy, model_version=version)

    def predict(
        self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        version = (params or {}).get("model_version") or None
        return self.advisor.advise(model_input, model_version=version)
