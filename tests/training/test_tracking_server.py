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
        "p = model.predict(rows)[:, 1]\n"
        "print(len(p), float(p.min()), float(p.max()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=consumer, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    count, low, high = result.stdout.split()[-3:]
    assert int(count) == 30
    assert 0.0 <= float(low) <= float(high) <= 1.0
