"""The registry at the edge: models logged and registered, sealed, and their aliases moved.

The tracking store is whatever ``MLFLOW_TRACKING_URI`` names; without it, MLflow's default: a
SQLite file ``mlflow.db`` in the working directory. A version is sealed as it is registered
(:mod:`crm_modes.shared.integrity`), and aliases move only under the registry-wide lock.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from sklearn.pipeline import Pipeline

from crm_modes.models.serialization import load_pipeline, save_pipeline
from crm_modes.models.signature import signature
from crm_modes.models.single_model import MODEL_ARTIFACT, PROFILE_ARTIFACT, PROFILE_FILE, output_columns
from crm_modes.shared.errors import RefusedError
from crm_modes.shared.integrity import fetch_verified, seal
from crm_modes.shared.model_loading import model_input

log = logging.getLogger(__name__)
CHALLENGER, CHAMPION, PREVIOUS_CHAMPION = "challenger", "champion", "previous-champion"
#: Where a single model's fitted pipeline lies in its logged files.
MODEL_FILE = "artifacts/model.skops"
#: The file MLflow runs to build a single model (found, not imported: see the advisor's).
SINGLE_ENTRY = Path(importlib.util.find_spec("crm_modes.models").origin).parent / "single_model_entry.py"
#: The packages a logged model needs at load time, shipped with it as code.
MODEL_PACKAGES = ("shared", "data", "features", "models")


@contextmanager
def staged_code() -> Iterator[list[str]]:
    """A copy of the ``crm_modes`` package (shared, data, features, models) to ship with a model."""
    import crm_modes

    with tempfile.TemporaryDirectory() as folder:
        package = Path(folder) / "crm_modes"
        package.mkdir()
        root = Path(crm_modes.__file__).parent
        shutil.copy(root / "__init__.py", package / "__init__.py")
        for name in MODEL_PACKAGES:
            source = Path(__import__(f"crm_modes.{name}", fromlist=["_"]).__file__).parent
            shutil.copytree(source, package / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        yield [str(package)]


def log_and_register(
    pipeline: Pipeline,
    *,
    kind: str,
    registered_name: str,
    example: pd.DataFrame,
    tags: dict[str, str],
    target: str,
    positive_label: object | None = None,
    profile_text: str | None = None,
) -> ModelVersion:
    """Log ``pipeline`` as a pyfunc with named outputs (:mod:`crm_modes.models.single_model`; skops with
    the reviewed trusted types, a signature, an input example) and register it as challenger.

    ``profile_text``: the table profile its rows were checked against (a table of one's own),
    shipped as the artifact ``table_profile.yaml`` so that scoring gates its rows the same way.
    """
    inputs = list(pipeline["features"]["entrance"].feature_names_in_)
    example = model_input(example[inputs].head(5).reset_index(drop=True))
    classes = [str(label) for label in pipeline.classes_]
    columns = output_columns(kind, target, classes, positive_label)
    outputs = Schema([ColSpec("double", name) for name in columns])
    with tempfile.TemporaryDirectory() as folder, staged_code() as code_paths:
        artifacts = {MODEL_ARTIFACT: str(save_pipeline(pipeline, Path(folder) / "model.skops"))}
        if profile_text is not None:
            (Path(folder) / PROFILE_FILE).write_text(profile_text)
            artifacts[PROFILE_ARTIFACT] = str(Path(folder) / PROFILE_FILE)
        return register_pyfunc(
            registered_name,
            SINGLE_ENTRY,
            artifacts=artifacts,
            code_paths=code_paths,
            model_config={"kind": kind, "columns": columns},
            model_signature=signature(inputs, example, outputs),
            example=example,
            tags=tags,
        )


def register_pyfunc(
    registered_name: str,
    entry: Path,
    *,
    artifacts: dict[str, str],
    code_paths: list[str],
    model_config: dict[str, object],
    model_signature: ModelSignature,
    example: pd.DataFrame,
    tags: dict[str, str],
) -> ModelVersion:
    """Log a models-from-code pyfunc (``entry`` is the file MLflow runs to build it) with its
    artifacts, the project's code and pinned requirements, register it, and seal it.

    MLflow's warnings while logging (about the input example, the environment) are silenced: the
    signature is the project's own and the requirements are pinned here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        info = mlflow.pyfunc.log_model(
            name=registered_name,
            python_model=str(entry),
            artifacts=artifacts,
            code_paths=code_paths,
            model_config=model_config,
            signature=model_signature,
            input_example=example,
            pip_requirements=model_requirements(),
            registered_model_name=registered_name,
        )
    return mark_challenger(registered_name, str(info.registered_model_version), tags, model_id=info.model_id)


class RegistryBusyError(RefusedError):
    """Another train or promote holds the registry lock for too long; nothing was changed."""

    what = "registry busy"


#: The registered model whose existence is the registry lock (creating it is atomic in every store).
LOCK_NAME = "crm-modes-registry-lock"


@contextmanager
def registry_lock(
    client: MlflowClient, *, wait_seconds: float = 120.0, stale_seconds: float = 900.0
) -> Iterator[None]:
    """Hold the registry-wide lock while aliases move (``train`` setting challengers, ``promote``).

    The lock is a registered model named :data:`LOCK_NAME`: the registry refuses to create
    a name twice, in SQLite, PostgreSQL and behind a tracking server alike, so exactly one
    promote holds it. A lock older than ``stale_seconds`` (its holder died) is broken.

    Raises:
        RegistryBusyError: another holder kept the lock for ``wait_seconds``.
    """
    holder = f"{socket.gethostname()} pid {os.getpid()}"
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            client.create_registered_model(
                LOCK_NAME,
                tags={"holder": holder},
                description="held by `crm-modes train` or `promote` while it moves aliases; then removed",
            )
            break
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        try:
            held = client.get_registered_model(LOCK_NAME)
        except MlflowException:
            continue  # released meanwhile
        age = time.time() - held.creation_timestamp / 1000
        if age > stale_seconds:
            with contextlib.suppress(MlflowException):  # another waiter may have broken it first
                client.delete_registered_model(LOCK_NAME)
            continue
        if time.monotonic() > deadline:
            raise RegistryBusyError(
                f"another train or promote ({held.tags.get('holder', 'unknown')}) has held the registry lock "
                f"for {age:.0f} s; try again when it ends (a lock older than {stale_seconds:.0f} s is broken)"
            )
        time.sleep(0.2)
    try:
        yield
    finally:
        try:
            client.delete_registered_model(LOCK_NAME)
        except MlflowException as error:  # gone already: broken as stale, or removed by hand
            log.warning("the registry lock was already released: %s", error.message)


def mark_challenger(name: str, version: str, tags: dict[str, str], *, model_id: str) -> ModelVersion:
    """Seal a freshly registered version (:mod:`crm_modes.shared.integrity`) and tag it.

    ``train`` makes its versions ``challenger`` together at the end (:func:`make_challengers`).
    """
    seal(name, version, model_id)
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    return client.get_model_version(name, version)


def make_challengers(versions: dict[str, str]) -> None:
    """Point ``challenger`` at every one of ``versions`` (name -> version) at once, under the registry lock.

    Two trainings registering at the same time leave the challengers of one of them, whole,
    never some models from each (which ``promote`` would have to refuse).
    """
    client = MlflowClient()
    with registry_lock(client):
        for name, version in versions.items():
            set_alias(client, name, CHALLENGER, version)


def set_alias(client: MlflowClient, name: str, alias: str, version: str, attempts: int = 5) -> None:
    """Point ``alias`` at ``version``, retrying the registry's own race.

    MLflow's SQL registry sets an alias by reading and then inserting; two clients setting
    the same alias at the same moment (two trainings registering challengers on a shared
    PostgreSQL registry, as tested) make one of them fail on the unique key. Setting it again
    is safe: the alias ends on the version of whoever set it last.
    """
    for attempt in range(attempts):
        try:
            client.set_registered_model_alias(name, alias, version)
            return
        except MlflowException as error:
            racing = any(
                sign in str(error) for sign in ("duplicate key", "UNIQUE constraint", "UniqueViolation")
            )
            if not racing or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def model_requirements() -> list[str]:
    """Pinned requirements of a logged model: what its shipped code imports at load time."""
    from importlib.metadata import version

    packages = (
        "mlflow",
        "scikit-learn",
        "lightgbm",
        "skops",
        "numpy",
        "scipy",
        "pandas",
        "pyarrow",
        "pyyaml",
        "pydantic",
    )
    return [f"{package}=={version(package)}" for package in packages]


def version_by_alias(name: str, alias: str) -> ModelVersion | None:
    try:
        return MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def load_version(name: str, version: str) -> Pipeline:
    """Fetch a registered version, verify its files, load it with the reviewed trusted types only."""
    return load_pipeline(fetch_verified(name, version) / MODEL_FILE)
