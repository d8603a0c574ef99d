import pandas as pd
import pytest

from crm_modes.training.config import GateConfig, ModelConfig, expand, load_training_config
from crm_modes.training.fit import baseline_sample, binary_target
from crm_modes.training.promote import check_gates


def test_gates_name_the_metric_and_the_figures():
    gates = GateConfig(min_auc=0.8, max_ece=0.01, max_worse_than_champion=0.005)
    assert check_gates({"auc": 0.85, "ece": 0.005}, gates, None) == []
    failures = check_gates({"auc": 0.75, "ece": 0.02}, gates, None)
    assert failures == ["auc 0.7500 is below the minimum 0.8000", "ece 0.0200 is above the maximum 0.0100"]
    worse = check_gates({"auc": 0.85, "ece": 0.005}, gates, {"auc": 0.86, "ece": 0.005})
    assert worse == ["auc 0.8500 is worse than the champion's 0.8600 by 0.0100 (at most 0.0050 allowed)"]
    assert check_gates({"auc": 0.856, "ece": 0.005}, gates, {"auc": 0.86, "ece": 0.009}) == []


def test_binary_target_with_a_positive_label_and_errors():
    config = ModelConfig(kind="binary", target="target", registered_name="x", positive_label="bad")
    assert binary_target(pd.Series(["good", "bad", "bad"]), config).tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match=r"target 'target' of binary model holds 3 distinct values"):
        binary_target(pd.Series(["good", "bad", "ugly"]), config)
    plain = ModelConfig(kind="binary", target="y", registered_name="x")
    with pytest.raises(ValueError, match="set positive_label"):
        binary_target(pd.Series(["yes", "no"]), plain)


def test_the_baseline_is_fitted_on_a_fixed_sample_of_at_most_baseline_rows():
    train = pd.DataFrame({"x": range(5_000)})
    config = ModelConfig(kind="binary", target="y", registered_name="x", baseline_rows=1_000)
    sample = baseline_sample(train, config)
    assert len(sample) == 1_000
    assert sample.index.is_unique
    assert sample.index.isin(train.index).all()
    assert sample.index.equals(baseline_sample(train, config).index)  # the same rows every time
    assert baseline_sample(train, config.model_copy(update={"baseline_rows": None})) is train
    assert baseline_sample(train.head(800), config).equals(train.head(800))
    with pytest.raises(ValueError, match="baseline_rows"):
        ModelConfig(kind="binary", target="y", registered_name="x", baseline_rows=10)


def test_training_config_errors_name_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data: {generate_rows: 10}\nfeatures: {from_schema: true}\nmodels: {}\nsplitt: {}\n")
    with pytest.raises(ValueError, match=r"bad.yaml: .*splitt: Extra inputs are not permitted"):
        load_training_config(path)
    path.write_text("data: {generate_rows: 10, path: x.csv}\nfeatures: {from_schema: true}\nmodels: {}\n")
    with pytest.raises(ValueError, match=r"set exactly one of data\.generate_rows and data\.path"):
        load_training_config(path)
    with pytest.raises(ValueError, match="no such configuration file"):
        load_training_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("section", "old", "new"),
    [
        ("data: {generate_rows: 10, schema_table: false}", "data: `schema_table` was renamed", "layout: own"),
        ("data: {generate_rows: 10}", "models.m.gates: `tolerance` was renamed", "max_worse_than_champion"),
        ("data: {generate_rows: 10}", "models.m: `benchmark_rows` was renamed", "`baseline_rows`"),
        ("data: {generate_rows: 10}", "advisor.mode_readings: `readings` was renamed", "`inputs`"),
    ],
)
def test_a_renamed_key_is_refused_with_its_new_name(tmp_path, section, old, new):
    model = {"kind": "binary", "target": "default_12m", "registered_name": "x"}
    if "tolerance" in old:
        model["gates"] = {"tolerance": 0.01}
    if "benchmark_rows" in old:
        model["benchmark_rows"] = 5_000
    advisor = ""
    if "readings" in old:
        advisor = (
            "advisor: {policy: p.yaml, economics: e.yaml, mode_readings: "
            "{readings: [rm_contacts_90d], models: [churn]}}\n"
        )
    path = tmp_path / "old.yaml"
    path.write_text(f"{section}\nfeatures: {{from_schema: true}}\nmodels: {{m: {model}}}\n{advisor}")
    with pytest.raises(ValueError, match=r"old\.yaml: ") as refused:
        load_training_config(path)
    assert old in str(refused.value)
    assert new in str(refused.value)


def test_shipped_configuration_parses():
    config = load_training_config("configs/train.yaml")
    assert set(config.models) == {"mode", "churn", "default"}
    assert config.models["mode"].target == "assigned_mode"
    assert config.features.from_schema


def test_environment_variables_expand(monkeypatch):
    monkeypatch.setenv("CRM_TEST_DIR", "/data")
    assert expand("${CRM_TEST_DIR}/a.csv") == "/data/a.csv"
    assert expand("${CRM_TEST_UNSET:-../shared}/a.csv") == "../shared/a.csv"
    with pytest.raises(ValueError, match="CRM_TEST_UNSET is not set"):
        expand("${CRM_TEST_UNSET}/a.csv")


@pytest.mark.parametrize("folds", [None, 2])
def test_a_baseline_on_more_rows_than_baseline_rows_is_fitted_on_the_sample(folds):
    from crm_modes.data.generator import generate_book
    from crm_modes.training.fit import fit_model

    config = load_training_config("configs/train.yaml")
    model = config.models["churn"].model_copy(
        update={
            "estimator": config.models["mode"].estimator.model_copy(update={"params": {"n_estimators": 5}}),
            "calibration": "sigmoid",
            "calibration_folds": folds,
            "baseline_rows": 1_000,
        }
    )
    book = generate_book(3_000, seed=5).dropna(subset=["churn_12m"])
    fitted = fit_model("churn", model, config.features, book.iloc[:2_000], book.iloc[2_000:])
    assert fitted.baseline_rows == 1_000
    assert fitted.baseline is not None
    probabilities = fitted.baseline.predict_proba(book.iloc[2_000:])[:, 1]
    assert ((probabilities > 0) & (probabilities < 1)).all()


def test_a_generated_book_takes_its_exploration_from_the_configuration(tmp_path):
    from crm_modes.training.data_source import load_training_table

    path = tmp_path / "explore.yaml"
    rest = (
        "features: {from_schema: true}\nmodels: {m: {kind: binary, target: churn_12m, registered_name: m}}\n"
    )
    path.write_text("data: {generate_rows: 4000, seed: 5, mode_noise: 0.5}\n" + rest)
    loaded = load_training_table(load_training_config(path))
    off_rule = (loaded.table["assigned_mode"] != loaded.table["oracle_policy_mode"]).mean()
    assert 0.4 < off_rule < 0.6  # the shipped default is 7%
    assert "50% of modes off the committee's rule" in loaded.description
    path.write_text("data: {generate_rows: 4000, mode_noise: 1.0}\n" + rest)
    with pytest.raises(ValueError, match=r"explore\.yaml: .*mode_noise"):
        load_training_config(path)
