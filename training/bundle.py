"""Log and register the advisor bundle: three pipelines, the economics and the alert policy as one model."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
from sklearn.pipeline import Pipeline

from crm_modes.data.schema import input_names
from crm_modes.models.advisor import (
    ARTIFACT_FILES,
    ARTIFACTS,
    BOOK_ARTIFACT,
    BOOK_PROFILE_ARTIFACT,
    ECONOMICS_ARTIFACT,
    OUTPUT_TYPES,
    PASS_THROUGH,
    POLICY_ARTIFACT,
    PROPENSITY_ARTIFACT,
    READINGS_ARTIFACT,
    REFERENCE_ARTIFACT,
    Advisor,
)
from crm_modes.models.alerts import load_policy
from crm_modes.models.economics import load_economics
from crm_modes.models.mode_readings import ModeReadings
from crm_modes.models.reference import MonitoringReference, fit_profile
from crm_modes.models.serialization import save_pipeline
from crm_modes.models.signature import input_schema
from crm_modes.shared.model_loading import model_input
from crm_modes.training.registration import register_pyfunc, staged_code

#: The file MLflow runs to build the advisor ("models from code"). Found, not imported: importing it
#: would register a model with MLflow as a side effect.
ADVISOR_ENTRY = Path(importlib.util.find_spec("crm_modes.models").origin).parent / "advisor_entry.py"

#: Columns a request may leave out: identifiers are passed through when present.
OPTIONAL_INPUTS = ("client_id", "facility_id", "snapshot_date", "assigned_mode", "other_facilities_mode")


def advisor_signature(example: pd.DataFrame, identity: str) -> ModelSignature:
    """Inputs from the schema; outputs as the advisor writes them; the version as a parameter."""
    columns = [
        name for name in input_names() if name in example.columns or name == "previous_default_probability"
    ]
    inputs = input_schema(columns, example, optional=OPTIONAL_INPUTS)
    outputs = Schema(
        [
            ColSpec("datetime" if name == "snapshot_date" else "string", name, required=False)
            for name in PASS_THROUGH
        ]
        + [ColSpec(kind, name) for name, kind in OUTPUT_TYPES.items()]
    )
    params = ParamSchema([ParamSpec("model_version", "string", identity)])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def log_advisor(
    pipelines: dict[str, Pipeline],
    *,
    policy_path: Path,
    economics_path: Path,
    registered_name: str,
    component_versions: dict[str, str],
    example: pd.DataFrame,
    readings: ModeReadings | None = None,
    propensity: Pipeline | None = None,
    reference_rows: pd.DataFrame | None = None,
    development: dict[str, dict[str, float]] | None = None,
    book: Path | None = None,
    book_profile: Path | None = None,
) -> ModelVersion:
    """Log the bundle (models from code, skops artifacts) and register it as challenger.

    ``reference_rows`` (training rows) and ``development`` (the models' figures on their
    evaluation rows): what monitoring compares a scored book against, shipped as the artifact
    ``monitoring_reference.json`` and verified like every other file (:func:`monitoring_reference`),
    scored as the loaded bundle scores (:meth:`Advisor.as_loaded`).

    ``propensity``: the recorded propensity (:mod:`crm_modes.training.propensity`), shipped as
    ``propensity.skops``; without it the bundle records the committee model's probability.

    ``book``: a bank's book contract, shipped as ``book_contract.yaml``: whoever scores with the
    bundle reads the bank's names, codes and units through it (:mod:`crm_modes.data.bank_file`).
    ``book_profile``: the bank's reviewed profile of its book, shipped as ``book_profile.yaml``:
    every month scored with the bundle is checked against it.
    """
    identity = f"{registered_name} (" + ", ".join(f"{k} v{v}" for k, v in component_versions.items()) + ")"
    policy = load_policy(policy_path)
    example = model_input(example[[c for c in input_names() if c in example.columns]].head(5)).reset_index(
        drop=True
    )
    advisor = Advisor(
        **pipelines,
        policy=policy,
        economics=load_economics(economics_path),
        readings=readings,
        propensity=propensity,
    )
    advisor.advise(example)  # fail here, not at load time, if anything is off
    reference = None
    if reference_rows is not None:
        reference = monitoring_reference(advisor.as_loaded(), reference_rows, development or {})
    with tempfile.TemporaryDirectory() as folder, staged_code() as code_paths:
        artifacts = {
            name: str(save_pipeline(pipelines[name], Path(folder) / f"{name}.skops")) for name in ARTIFACTS
        }
        if propensity is not None:
            saved = save_pipeline(propensity, Path(folder) / f"{PROPENSITY_ARTIFACT}.skops")
            artifacts[PROPENSITY_ARTIFACT] = str(saved)
        # Each under its own file name, whatever the configuration's files are called.
        copied = [(POLICY_ARTIFACT, policy_path), (ECONOMICS_ARTIFACT, economics_path)]
        copied += [(BOOK_ARTIFACT, book)] if book is not None else []
        copied += [(BOOK_PROFILE_ARTIFACT, book_profile)] if book_profile is not None else []
        for artifact, source in copied:
            artifacts[artifact] = str(shutil.copy(source, Path(folder) / ARTIFACT_FILES[artifact]))
        for artifact, saved in ((READINGS_ARTIFACT, readings), (REFERENCE_ARTIFACT, reference)):
            if saved is not None:
                artifacts[artifact] = str(saved.save(Path(folder) / ARTIFACT_FILES[artifact]))
        return register_pyfunc(
            registered_name,
            ADVISOR_ENTRY,
            artifacts=artifacts,
            code_paths=code_paths,
            model_config={"model_version": identity},
            model_signature=advisor_signature(example, identity),
            example=example,
            tags={f"component.{name}": component for name, component in component_versions.items()},
        )


#: Training rows the monitoring reference is learnt on, at most (a fixed sample).
REFERENCE_ROWS = 100_000


def monitoring_reference(
    advisor: Advisor, rows: pd.DataFrame, development: dict[str, dict[str, float]]
) -> MonitoringReference:
    """The profile of ``rows`` (training rows) scored by ``advisor``, with the development figures."""
    if len(rows) > REFERENCE_ROWS:
        rows = rows.sample(n=REFERENCE_ROWS, random_state=0).sort_index()
    inputs = model_input(rows[[c for c in input_names() if c in rows.columns]]).reset_index(drop=True)
    advice = advisor.advise(inputs)
    grades = tuple(grade.max_pd for grade in advisor.policy.risk_grades[:-1])
    profile = fit_profile(rows.reset_index(drop=True), advice, score_edges={"default_probability": grades})
    return MonitoringReference(profile, development)
