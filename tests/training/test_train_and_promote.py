"""Train, register, promote, refuse, roll back and load: the real command line, a real SQLite store."""

import json
import subprocess
import sys

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from crm_modes.training.registration import load_version
from tests.conftest import quiet_mlflow_env, write_training_config

pytestmark = pytest.mark.integration
NAMES = ("crm-mode", "crm-churn", "crm-pd")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow-store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    env = quiet_mlflow_env(MLFLOW_TRACKING_URI=uri)
    lenient = write_training_config(folder)
    strict = write_training_config(folder, strict=True)
    with_bundle = write_training_config(folder, advisor=True)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    yield {
        "folder": folder,
        "uri": uri,
        "env": env,
        "lenient": lenient,
        "strict": strict,
        "with_bundle": with_bundle,
        "client": MlflowClient(tracking_uri=uri, registry_uri=uri),
    }
    mlflow.set_tracking_uri(previous)


def crm(cli, store, *args):
    return subprocess.run(
        [cli, *args], cwd=store["folder"], env=store["env"], capture_output=True, text=True, timeout=600
    )


def twice_at_once(cli, store, *args) -> list[tuple[int, str, str]]:
    """Run the same command twice at once; (exit code, stdout, stderr) of each."""
    processes = [
        subprocess.Popen(
            [cli, *args],
            cwd=store["folder"],
            env=store["env"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    return [(process.wait(timeout=600), *process.communicate()) for process in processes]


def alias(store, name, which):
    return str(store["client"].get_model_version_by_alias(name, which).version)


def test_train_registers_every_model_as_challenger_with_its_evidence(cli, store):
    result = crm(cli, store, "train", "--config", str(store["with_bundle"]))  # and the bundle, crm-advisor v1
    assert result.returncode == 0, result.stderr[-3000:]
    assert "registered as @challenger" in result.stdout
    client = store["client"]
    for name in NAMES:
        version = client.get_model_version_by_alias(name, "challenger")
        assert str(version.version) == "1"
        assert len(version.tags["data_hash"]) == 64
        assert version.tags["git_commit"]
    parent = client.search_runs(
        [client.get_experiment_by_name("tests").experiment_id], filter_string="tags.mlflow.runName = 'train'"
    )[0]
    assert parent.data.tags["data_hash"] == client.get_model_version("crm-pd", "1").tags["data_hash"]
    assert [a.path for a in client.list_artifacts(parent.info.run_id, "config")] == [
        "config/features.json",
        "config/train-all-advisor.yaml",
    ]
    pd_run = client.get_run(client.get_model_version("crm-pd", "1").tags["training_run_id"])
    assert pd_run.data.metrics["rows_unknown_label"] > 0
    assert {"auc", "pr_auc", "brier", "log_loss", "ece", "ks", "baseline_auc", "oracle_auc"} <= set(
        pd_run.data.metrics
    )
    assert pd_run.data.params["calibration"] in ("isotonic", "sigmoid")
    evaluation = {a.path.split("/")[-1] for a in client.list_artifacts(pd_run.info.run_id, "evaluation")}
    assert {
        "default_roc.png",
        "default_precision_recall.png",
        "default_reliability.png",
        "default_feature_importance.png",
        "default_model_card.md",
        "default_metrics.json",
    } <= evaluation
    mode_run = client.get_run(client.get_model_version("crm-mode", "1").tags["training_run_id"])
    assert {"accuracy", "macro_f1", "oracle_accuracy", "recall_responsible"} <= set(mode_run.data.metrics)
    card = mlflow.artifacts.load_text(f"runs:/{pd_run.info.run_id}/evaluation/default_model_card.md")
    assert "## Purpose" in card
    assert "## Limits" in card
    assert "simulation oracle" in card  # the synthetic book: the words of the simulation belong here


def test_promotion_moves_champion_and_records_why(cli, store):
    result = crm(cli, store, "promote", "--config", str(store["lenient"]))
    assert result.returncode == 0, result.stderr[-3000:]
    for name in NAMES:
        assert alias(store, name, "champion") == "1"
    tags = store["client"].get_model_version("crm-pd", "1").tags
    assert tags["promotion_reason"].startswith("passed all gates: auc")
    assert tags["replaced_version"] == "none"
    assert "promoted_at" in tags


def test_same_configuration_gives_the_same_metrics_and_predictions(cli, store):
    result = crm(cli, store, "train", "--config", str(store["lenient"]))
    assert result.returncode == 0, result.stderr[-3000:]
    client = store["client"]
    from crm_modes.data.generator import generate_book

    rows = generate_book(500, seed=99)
    for name in NAMES:
        first, second = (client.get_model_version(name, v) for v in ("1", "2"))
        metrics = [client.get_run(v.tags["training_run_id"]).data.metrics for v in (first, second)]
        assert metrics[0] == metrics[1]
        assert first.tags["data_hash"] == second.tags["data_hash"]
        old, new = load_version(name, "1"), load_version(name, "2")
        if name == "crm-mode":
            np.testing.assert_array_equal(old.predict(rows), new.predict(rows))
        else:
            np.testing.assert_array_equal(old.predict_proba(rows), new.predict_proba(rows))


def test_a_promotion_that_fails_a_gate_is_refused_with_the_figures(cli, store):
    result = crm(cli, store, "promote", "--config", str(store["strict"]))
    assert result.returncode == 1
    assert "crm-pd v2: refused" in result.stderr
    assert "is below the minimum 0.9990" in result.stderr
    assert alias(store, "crm-pd", "champion") == "1"


def test_promote_then_roll_back_in_one_command(cli, store):
    result = crm(cli, store, "promote", "--config", str(store["lenient"]))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "crm-pd v2 is now @champion (replaces v1)" in result.stdout
    assert alias(store, "crm-pd", "previous-champion") == "1"
    assert store["client"].get_model_version("crm-pd", "2").tags["replaced_version"] == "1"
    result = crm(cli, store, "promote", "--config", str(store["lenient"]), "--rollback")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "crm-pd: champion rolled back from v2 to v1" in result.stdout
    for name in NAMES:
        assert alias(store, name, "champion") == "1"


def test_stock_mlflow_loads_the_champion_in_a_fresh_process(store):
    from crm_modes.data.generator import generate_book

    book = generate_book(40, seed=3).drop(columns=["default_12m", "churn_12m"])
    csv = store["folder"] / "rows.csv"
    book.to_csv(csv, index=False)
    script = (
        "import json, sys, mlflow, pandas as pd\n"
        "rows = pd.read_csv(sys.argv[1])\n"
        "pd_model = mlflow.pyfunc.load_model('models:/crm-pd@champion')\n"
        "mode_model = mlflow.pyfunc.load_model('models:/crm-mode@champion')\n"
        "pd, modes = pd_model.predict(rows), mode_model.predict(rows)\n"
        "mode = modes.idxmax(axis=1).str.removeprefix('probability_').tolist()\n"
        "answer = {'pd_columns': list(pd.columns), 'pd': pd['probability_default_12m'].tolist(),\n"
        "          'mode_columns': list(modes.columns), 'mode': mode}\n"
        "print(json.dumps(answer))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(csv)],
        cwd=store["folder"],
        env=store["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["pd_columns"] == ["probability_default_12m"]  # named: the probability that it is 1
    assert answer["mode_columns"] == ["probability_basic", "probability_reactive", "probability_responsible"]
    assert len(answer["pd"]) == 40
    assert all(0.0 <= p <= 1.0 for p in answer["pd"])
    assert set(answer["mode"]) <= {"basic", "reactive", "responsible"}


def test_a_promotion_records_the_evidence_it_was_judged_on(store):
    tags = store["client"].get_model_version("crm-pd", "1").tags
    figures = json.loads(tags["promotion.metrics"])
    assert figures["challenger"]["auc"] > 0.6
    assert figures["champion"] == {}  # the first champion replaced nobody
    assert len(tags["promotion.evaluation_data_hash"]) == 64


def test_two_promotes_at_once_exactly_one_moves_the_alias(cli, store):
    """After the rollback, v2 is challenger again and v1 champion: two promotes race for it."""
    assert alias(store, "crm-pd", "champion") == "1"
    outcomes = twice_at_once(cli, store, "promote", "--config", str(store["lenient"]))
    moved = [
        out for code, out, _ in outcomes if code == 0 and "crm-pd v2 is now @champion (replaces v1)" in out
    ]
    assert len(moved) == 1, outcomes
    other = next(outcome for outcome in outcomes if outcome[1] not in moved)
    stopped = " ".join(other[2].split())
    assert (other[0] == 1 and "@champion moved from v1 to v2 since this promote read it" in stopped) or (
        other[0] == 0 and "already champion" in other[1]
    ), other
    assert alias(store, "crm-pd", "champion") == "2"
    assert alias(store, "crm-pd", "previous-champion") == "1"
    assert "crm-modes-registry-lock" not in [m.name for m in store["client"].search_registered_models()]


def test_a_bundle_from_a_dead_training_run_is_never_promoted(cli, store):
    """Components registered by a run that registered no bundle (v2, from the lenient configuration,
    as a run that died before its bundle leaves them): the bundle challenger, built from v1, is refused."""
    result = crm(cli, store, "promote", "--config", str(store["with_bundle"]))
    assert result.returncode == 1
    said = " ".join(result.stderr.split())
    assert "crm-advisor v1: refused" in said
    assert (
        "the bundle was built from crm-churn v1, crm-mode v1, crm-pd v1, not from the versions just "
        "evaluated (crm-churn v2, crm-mode v2, crm-pd v2)"
    ) in said
    assert alias(store, "crm-pd", "champion") == "2"  # nothing moved
    with pytest.raises(MlflowException):
        store["client"].get_model_version_by_alias("crm-advisor", "champion")


def test_two_rollbacks_at_once_exactly_one_moves_and_a_rollback_is_not_undone_by_another(cli, store):
    """Compare-and-set, as promote; the last test of the module (it leaves v1 champion again)."""
    assert (alias(store, "crm-pd", "champion"), alias(store, "crm-pd", "previous-champion")) == ("2", "1")
    outcomes = twice_at_once(cli, store, "promote", "--config", str(store["lenient"]), "--rollback")
    moved = [outcome for outcome in outcomes if outcome[0] == 0]
    assert len(moved) == 1, outcomes
    assert "crm-pd: champion rolled back from v2 to v1" in moved[0][1]
    other = " ".join(next(outcome for outcome in outcomes if outcome[0] != 0)[2].split())
    assert ("rollback stopped" in other and "since this rollback read them" in other) or (
        "has no 'previous-champion' version to roll back to" in other
    ), other
    assert alias(store, "crm-pd", "champion") == "1"
    again = crm(cli, store, "promote", "--config", str(store["lenient"]), "--rollback")
    assert again.returncode == 2  # v2 comes back only through promote's gates
    assert "has no 'previous-champion' version to roll back to" in " ".join(again.stderr.split())
    assert alias(store, "crm-pd", "champion") == "1"
