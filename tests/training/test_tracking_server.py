"""The same flow against a shared tracking server, as a team would run it."""

import subprocess
import sys

import pytest
from mlflow import MlflowClient

from tests.conftest import quiet_mlflow_env, write_training_config

pytestmark = pytest.mark.integration


def test_train_promote_and_load_through_a_tracking_server(cli, mlflow_server, tmp_path):
    work = tmp_path / "trainer"  # the trainer's folder holds no store: everything goes to the server
    work.mkdir()
    env = quiet_mlflow_env(MLFLOW_TRACKING_URI=mlflow_server)
    config = write_training_config(work, only="default")
    for args in (["train", "--config", str(config)], ["promote", "--config", str(config)]):
        result = subprocess.run([cli, *args], cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    assert not (work / "mlflow.db").exists()
    assert not (work / "mlruns").exists()
    assert any((tmp_path / "server-artifacts").rglob("model.skops"))

    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    assert str(client.get_model_version_by_alias("crm-pd", "champion").version) == "1"

    consumer = tmp_path / "consumer"
    consumer.mkdir()
    script = (
        "import mlflow\n"
        "from crm_modes.data.generator import generate_book\n"
        "model = mlflow.pyfunc.load_model('models:/crm-pd@champion')\n"
        "rows = generate_book(30, seed=1)\n"
        "rows = rows.astype({c: object for c in rows.select_dtypes('category').columns})\n"
        "p = model.predict(rows)['probability_default_12m']\n"
        "print(len(p), float(p.min()), float(p.max()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=consumer, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    count, low, high = result.stdout.split()[-3:]
    assert int(count) == 30
    assert 0.0 <= float(low) <= float(high) <= 1.0


CONSUMER = """
import sys
from pathlib import Path
from crm_modes.shared.model_loading import load_model
from crm_modes.data.generator import generate_book
rows = generate_book(200, seed=2)
stop = Path(sys.argv[1])
while True:
    last = stop.exists()
    try:
        model = load_model("models:/crm-advisor@champion")
    except ValueError as error:  # before the first promotion there is no champion
        assert "no such registered model or alias" in str(error), error
        print("none", flush=True)
    else:
        print(model.version, len(model.predict(rows.head(3))), flush=True)
    if last:
        break
"""


def test_a_team_on_a_postgresql_registry(cli, postgres_mlflow_server, tmp_path):
    """Two trainings register at once; a promotion runs while a consumer loads the champion; consistent."""
    env = quiet_mlflow_env(MLFLOW_TRACKING_URI=postgres_mlflow_server)
    trainers = []
    for name in ("ana", "ben"):
        work = tmp_path / name
        work.mkdir()
        config = write_training_config(work, rows=15_000, advisor=True)
        trainers.append(
            subprocess.Popen(
                [cli, "train", "--config", str(config)],
                cwd=work,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for trainer in trainers:
        out, err = trainer.communicate(timeout=900)
        assert trainer.returncode == 0, err[-3000:]
    client = MlflowClient(tracking_uri=postgres_mlflow_server, registry_uri=postgres_mlflow_server)
    for name in ("crm-mode", "crm-churn", "crm-pd", "crm-advisor"):
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
        assert versions == [1, 2], (name, versions)
    for bundle in client.search_model_versions(
        "name = 'crm-advisor'"
    ):  # each bundle: its own run's components
        runs = {
            client.get_model_version(component, version).tags["training_run_id"]
            for component, version in (
                (key.removeprefix("component."), value)
                for key, value in bundle.tags.items()
                if key.startswith("component.")
            )
        }
        parents = {client.get_run(run).data.tags.get("mlflow.parentRunId") for run in runs}
        assert len(parents) == 1, bundle.tags

    work = tmp_path / "ana"
    config = work / "train-all-advisor.yaml"
    stop = tmp_path / "stop"
    consumer = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, str(stop)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert consumer.stdout.readline().strip() == "none"  # loading, before any champion exists
    result = subprocess.run(
        [cli, "promote", "--config", str(config)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    stop.touch()
    out, err = consumer.communicate(timeout=300)
    assert consumer.returncode == 0, err[-3000:]
    champion = client.get_model_version_by_alias("crm-advisor", "champion")
    loads = ["none", *out.split("\n")[:-1]]
    assert loads[-1] == f"crm-advisor v{champion.version} 3"  # the load after the promote: the new champion
    assert set(loads) <= {"none", f"crm-advisor v{champion.version} 3"}  # never a half-moved state
    for key, value in champion.tags.items():  # the champion bundle's components are the champions
        if key.startswith("component."):
            assert (
                str(client.get_model_version_by_alias(key.removeprefix("component."), "champion").version)
                == value
            )
