"""Shared fixtures: small generated books, built once per session."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from crm_modes.data.generator import generate_book


@pytest.fixture(scope="session")
def book_50k() -> pd.DataFrame:
    """The 50,000-row book the issue's rate bands are checked on."""
    return generate_book(50_000, seed=7)


@pytest.fixture(scope="session")
def small_book() -> pd.DataFrame:
    return generate_book(3_000, seed=11)


@pytest.fixture(scope="session")
def cli() -> str:
    """Path of the installed ``crm-modes`` console script."""
    script = Path(sys.executable).with_name("crm-modes")
    found = str(script) if script.exists() else shutil.which("crm-modes")
    assert found, "the crm-modes console script is not installed; run `make test`"
    return found


REPO = Path(__file__).resolve().parents[1]


def datasets_dir() -> Path:
    """The public datasets folder: $CRM_MODES_DATASETS, else ../shared/datasets beside the repo."""
    import os

    return Path(os.environ.get("CRM_MODES_DATASETS", REPO.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def datasets() -> Path:
    folder = datasets_dir()
    if not (folder / "german_credit.csv").exists():
        pytest.skip(f"public datasets not found in {folder} (set CRM_MODES_DATASETS to their folder)")
    return folder


def quiet_mlflow_env(**extra: str) -> dict[str, str]:
    """Environment for a subprocess that talks to MLflow: no telemetry, no progress bars."""
    import os

    env = dict(os.environ)
    # `mlflow models serve` starts `uvicorn` from PATH: the environment's own bin comes first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        **extra,
    )
    return env


def write_training_config(
    folder: Path, *, rows: int = 30_000, strict: bool = False, only: str | None = None, advisor: bool = False
) -> Path:
    """A small, fast training configuration for tests (lenient gates unless ``strict``)."""
    import yaml

    small = {"max_iter": 60, "learning_rate": 0.1, "max_depth": 3, "min_samples_leaf": 200}
    models = {
        "mode": {
            "kind": "multiclass",
            "target": "assigned_mode",
            "registered_name": "crm-mode",
            "estimator": {"params": small},
            "calibration": "none",
            "gates": {"min_accuracy": 0.5},
        },
        "churn": {
            "kind": "binary",
            "target": "churn_12m",
            "registered_name": "crm-churn",
            "estimator": {"params": small},
            "gates": {"min_auc": 0.55, "max_ece": 0.2},
        },
        "default": {
            "kind": "binary",
            "target": "default_12m",
            "registered_name": "crm-pd",
            "estimator": {"params": small},
            "gates": {"min_auc": 0.999 if strict else 0.6, "max_ece": 0.1},
        },
    }
    if only:
        models = {only: models[only]}
    config = {
        "data": {"generate_rows": rows, "seed": 5},
        "features": str(REPO / "configs" / "features" / "synthetic.yaml"),
        "models": models,
        "mlflow": {"experiment": "tests"},
    }
    if advisor:
        config["advisor"] = {
            "registered_name": "crm-advisor",
            "policy": str(REPO / "configs" / "alert_policy.yaml"),
            "economics": str(REPO / "configs" / "economics.yaml"),
            # the value gate has its own tests (tests/training/test_value_policy.py)
            "value_gate": {"enabled": False, "bootstrap": 50},
        }
    path = folder / (
        "strict.yaml" if strict else f"train-{only or 'all'}{'-advisor' if advisor else ''}.yaml"
    )
    path.write_text(yaml.safe_dump(config))
    return path


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_http(url: str, *, timeout: float = 120.0, process=None) -> None:
    """Poll ``url`` until it answers 200; fail early if ``process`` died."""
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def _run_mlflow_server(tmp_path: Path, backend: str):
    """A real ``mlflow server`` on 127.0.0.1 with ``backend`` and its own artifact folder."""
    import subprocess

    port = free_port()
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            backend,
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
            "--workers",
            "1",
        ],
        cwd=tmp_path,
        env=quiet_mlflow_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def mlflow_server(tmp_path):
    """A real ``mlflow server`` on 127.0.0.1 with its own SQLite database and artifact folder."""
    yield from _run_mlflow_server(tmp_path, f"sqlite:///{tmp_path / 'server.db'}")


@pytest.fixture
def postgres_database():
    """A new database on the PostgreSQL server the machines run; dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"crm_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield f"{POSTGRES}/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def postgres_mlflow_server(tmp_path, postgres_database):
    """A real ``mlflow server`` on 127.0.0.1 whose backend store is a PostgreSQL database."""
    backend = postgres_database.replace("postgresql://", "postgresql+psycopg://")
    yield from _run_mlflow_server(tmp_path, backend)


@pytest.fixture(scope="session")
def advisor_store(tmp_path_factory, cli):
    """A SQLite store with the three models and the advisor bundle trained and promoted."""
    import subprocess

    folder = tmp_path_factory.mktemp("advisor-store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    env = quiet_mlflow_env(MLFLOW_TRACKING_URI=uri)
    config = write_training_config(folder, advisor=True)
    for args in (["train", "--config", str(config)], ["promote", "--config", str(config)]):
        result = subprocess.run(
            [cli, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stderr[-3000:]
    return {"folder": folder, "uri": uri, "env": env, "config": config}


def _fit_pipelines(book: pd.DataFrame, names: tuple[str, ...], *, trees: bool = False) -> tuple[dict, object]:
    """The configured models fitted in-process on ``book`` (fewer boosting rounds; trees if asked),
    and the configured mode readings learnt on their training rows (None without churn and PD)."""
    from crm_modes.data.gate import validate
    from crm_modes.training.config import EstimatorConfig, load_training_config
    from crm_modes.training.fit import fit_model
    from crm_modes.training.trainer import advisor_readings, model_split, training_rows

    config = load_training_config(REPO / "configs" / "train.yaml")
    table = validate(book).valid
    pipelines, fit_rows = {}, {}
    for name in names:
        model = config.models[name]
        estimator = model.estimator
        if trees:
            estimator = EstimatorConfig(
                type="hist_gradient_boosting",
                params={"max_iter": 60, "learning_rate": 0.1, "max_depth": 3, "min_samples_leaf": 500},
            )
        elif estimator.type == "hist_gradient_boosting":
            estimator = estimator.model_copy(update={"params": {**estimator.params, "max_iter": 60}})
        model = model.model_copy(update={"baseline": False, "estimator": estimator})
        split, _ = model_split(table, config, model)
        train_rows, calibration_rows = training_rows(split, model)
        pipelines[name] = fit_model(
            name, model, config.features, table[train_rows], table[calibration_rows]
        ).pipeline
        fit_rows[name] = train_rows | calibration_rows
    readings = advisor_readings(config, table, fit_rows) if {"churn", "default"} <= set(names) else None
    return pipelines, readings


@pytest.fixture(scope="session")
def fitted_advisor(book_50k):
    """An Advisor built from the configured models fitted in-process (no MLflow)."""
    from crm_modes.models.advisor import Advisor
    from crm_modes.models.alerts import load_policy
    from crm_modes.models.economics import load_economics

    pipelines, readings = _fit_pipelines(book_50k, ("mode", "churn", "default"))
    return Advisor(
        **pipelines,
        readings=readings,
        policy=load_policy(REPO / "configs" / "alert_policy.yaml"),
        economics=load_economics(REPO / "configs" / "economics.yaml"),
        model_version="test",
    )


@pytest.fixture(scope="session")
def tree_models(book_50k):
    """Churn and PD as calibrated boosting pipelines: what the tree reasons and fast paths work on."""
    return _fit_pipelines(book_50k, ("churn", "default"), trees=True)[0]


#: The PostgreSQL server the machines run (trust authentication).
POSTGRES = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request, tmp_path):
    """A new, empty state store: a SQLite file, and a new database on the real PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crm_state.db'}"
        return
    yield request.getfixturevalue("postgres_database")
