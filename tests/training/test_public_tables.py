"""The public tables, trained and cross-validated by configuration alone (on small samples)."""

import subprocess
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import REPO, quiet_mlflow_env

pytestmark = pytest.mark.integration

CONFIGS = {
    "german_credit.yaml": ("german_credit.csv", 600, "german-credit-pd"),
    "taiwan_credit_card.yaml": ("taiwan_credit_card.csv", 3_000, "taiwan-credit-card-pd"),
    "bank_churn.yaml": ("bank_churn.csv", 2_000, "bank-churn"),
}
LIBRARY = ("crm_modes", "data", "features", "models", "training", "serve")
DATASET_WORDS = (
    "german",
    "taiwan",
    "churn_modelling",
    "exited",
    "customerid",
    "surname",
    "limit_bal",
    "credit_history",
    "_is_test",
    "pay_amt",
    "geography",
)


def small_copy(config_name: str, folder: Path, datasets: Path, **changes) -> Path:
    """The shipped configuration, pointed at a sample of its table, with a smaller tuning budget."""
    file, rows, _ = CONFIGS[config_name]
    sample = pd.read_csv(datasets / file).sample(n=rows, random_state=0)
    (folder / "datasets").mkdir(exist_ok=True)
    sample.to_csv(folder / "datasets" / file, index=False)
    raw = yaml.safe_load((REPO / "configs" / config_name).read_text())
    raw["data"]["path"] = str(folder / "datasets" / file)
    raw["features"] = str(REPO / "configs" / raw["features"])
    raw["data"]["profile"] = str(REPO / "configs" / raw["data"]["profile"])
    for model in raw["models"].values():
        if model.get("tuning", {}).get("enabled"):
            model["tuning"].update(candidates=4, factor=2)
    for dotted, value in changes.items():
        target = raw
        *parents, last = dotted.split(".")
        for key in parents:
            target = target[key]
        target[last] = value
    path = folder / config_name
    path.write_text(yaml.safe_dump(raw))
    return path


def with_numeric_feature(config: Path, column: str) -> Path:
    """The configuration with ``column`` added to its numeric features (inlined)."""
    raw = yaml.safe_load(config.read_text())
    features = yaml.safe_load(Path(raw["features"]).read_text())
    features["numeric"].append(column)
    raw["features"] = features
    config.write_text(yaml.safe_dump(raw))
    return config


def crm(cli, folder, *args):
    env = quiet_mlflow_env(MLFLOW_TRACKING_URI=f"sqlite:///{folder / 'mlflow.db'}")
    return subprocess.run([cli, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("config_name", list(CONFIGS))
def test_trains_and_cross_validates_from_its_configuration(cli, datasets, tmp_path, config_name):
    config = small_copy(config_name, tmp_path, datasets)
    trained = crm(cli, tmp_path, "train", "--config", str(config))
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "registered as @challenger" in trained.stdout
    registered = CONFIGS[config_name][2]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    version = client.get_model_version_by_alias(registered, "challenger")
    run = client.get_run(version.tags["training_run_id"])
    if "_is_test" in pd.read_csv(tmp_path / "datasets" / CONFIGS[config_name][0], nrows=1).columns:
        sample = pd.read_csv(tmp_path / "datasets" / CONFIGS[config_name][0])
        assert (
            run.data.metrics["rows_evaluation"] == sample["_is_test"].sum()
        )  # the fixed hold-out is honoured
    assert 0.5 < run.data.metrics["auc"] <= 1.0
    (model_name,) = yaml.safe_load((REPO / "configs" / config_name).read_text())["models"]
    card_path = client.download_artifacts(
        run.info.run_id, f"evaluation/{model_name}_model_card.md", str(tmp_path)
    )
    card = Path(card_path).read_text()
    # a table smaller than baseline_rows: the baseline is fitted on every training row
    assert f"fitted on {int(run.data.metrics['rows_train']):,} training rows" in card
    for words in (card, trained.stdout):  # a real table: none of the synthetic book's words
        assert "oracle" not in words.lower()
        assert "cycle" not in words.lower()

    # the registered model loads back (skops, reviewed types) and scores the table's own rows
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        model = mlflow.pyfunc.load_model(f"models:/{registered}@challenger")
    finally:
        mlflow.set_tracking_uri(previous)
    rows = pd.read_csv(tmp_path / "datasets" / CONFIGS[config_name][0]).head(20)
    scored = model.predict(rows[model.metadata.get_input_schema().input_names()])
    (column,) = scored.columns  # one named column: the probability of the event
    target = yaml.safe_load((REPO / "configs" / config_name).read_text())["models"]
    (model_config,) = target.values()
    named = model_config.get("positive_label", model_config["target"])
    assert column == f"probability_{named}"
    assert [spec.name for spec in model.metadata.get_output_schema().inputs] == [column]
    probabilities = scored[column].to_numpy()
    assert len(probabilities) == 20
    assert ((probabilities >= 0) & (probabilities <= 1)).all()

    evaluated = crm(cli, tmp_path, "evaluate", "--config", str(config), "--cv", "3")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "3-fold cross-validation" in evaluated.stdout
    assert "±" in evaluated.stdout


def test_a_missing_column_is_named(cli, datasets, tmp_path):
    """By the table profile when one is configured, by the table itself when none is."""
    config = with_numeric_feature(small_copy("german_credit.yaml", tmp_path, datasets), "monthly_income")
    result = crm(cli, tmp_path, "train", "--config", str(config))
    assert result.returncode == 2
    assert "the table profile lacks columns the configuration uses: ['monthly_income']" in result.stderr
    unprofiled = small_copy("german_credit.yaml", tmp_path, datasets, **{"data.profile": None})
    result = crm(cli, tmp_path, "train", "--config", str(with_numeric_feature(unprofiled, "monthly_income")))
    assert result.returncode == 2
    assert "the configuration uses columns it lacks: ['monthly_income']" in result.stderr


def test_a_target_with_more_than_two_values_is_refused(cli, datasets, tmp_path):
    config = small_copy(
        "german_credit.yaml",
        tmp_path,
        datasets,
        **{"models.default.target": "risk_class", "data.profile": None},
    )
    table = tmp_path / "datasets" / "german_credit.csv"
    sample = pd.read_csv(table)
    sample["risk_class"] = ["A", "B", "C"] * (len(sample) // 3)
    sample.to_csv(table, index=False)
    result = crm(cli, tmp_path, "train", "--config", str(config))
    assert result.returncode == 2
    assert "target 'risk_class' of binary model holds 3 distinct values" in result.stderr
    assert "a binary model needs exactly two" in result.stderr


def test_an_identifier_as_a_feature_is_refused(cli, datasets, tmp_path):
    config = with_numeric_feature(small_copy("taiwan_credit_card.yaml", tmp_path, datasets), "id")
    result = crm(cli, tmp_path, "train", "--config", str(config))
    assert result.returncode == 2
    assert "'id' (an identifier)" in result.stderr


def test_library_code_never_names_a_public_dataset():
    offenders = []
    for package in LIBRARY:
        for path in (REPO / package).rglob("*.py"):
            text = path.read_text().lower()
            offenders += [f"{path.relative_to(REPO)}: {word}" for word in DATASET_WORDS if word in text]
    assert offenders == []


def test_tuning_is_nested_inside_every_outer_fold(datasets, tmp_path, monkeypatch):
    from crm_modes.training import fit
    from crm_modes.training.config import load_training_config
    from crm_modes.training.cross_validation import cross_validate
    from crm_modes.training.data_source import load_training_table

    config = load_training_config(
        small_copy(
            "german_credit.yaml",
            tmp_path,
            datasets,
            **{
                "models.default.tuning.enabled": True,
                "models.default.tuning.candidates": 4,
                "models.default.tuning.min_resources": 100,
            },
        )
    )
    table = load_training_table(config).table
    seen: list[pd.Index] = []
    original = fit.tune

    def spy(model, features, train):
        seen.append(train.index)
        return original(model, features, train)

    monkeypatch.setattr(fit, "tune", spy)
    (result,) = cross_validate(config, table, folds=3)
    assert len(seen) == 3  # one search per outer fold
    for searched in seen:
        assert len(searched) == pytest.approx(len(table) * 2 / 3, abs=2)  # never the held-out fold
    assert len(set(seen[0]) | set(seen[1]) | set(seen[2])) == len(table)
    assert 0.5 < result.summary()["auc_mean"] <= 1.0
