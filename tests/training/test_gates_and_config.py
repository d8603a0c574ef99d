import pandas as pd
import pytest

from crm_modes.training.config import GateConfig, ModelConfig, expand, load_training_config
from crm_modes.training.fit import benchmark_sample, binary_target
from crm_modes.training.promote import check_gates


def test_gates_name_the_metric_and_the_figures():
    gates = GateConfig(min_auc=0.8, max_ece=0.01, tolerance=0.005)
    assert check_gates({"auc": 0.85, "ece": 0.005}, gates, None) == []
    failures = check_gates({"auc": 0.75, "ece": 0.02}, gates, None)
    assert failures == ["auc 0.7500 is below the minimum 0.8000", "ece 0.0200 is above the maximum 0.0100"]
    worse = check_gates({"auc": 0.85, "ece": 0.005}, gates, {"auc": 0.86, "ece": 0.005})
    assert worse == ["auc 0.8500 is worse than the champion's 0.8600 by 0.0100 (tolerance 0.0050)"]
    assert check_gates({"auc": 0.856, "ece": 0.005}, gates, {"auc": 0.86, "ece": 0.009}) == []


def test_binary_target_with_a_positive_label_and_errors():
    config = ModelConfig(kind="binary", target="target", registered_name="x", positive_label="bad")
    assert binary_target(pd.Series(["good", "bad", "bad"]), config).tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match=r"target 'target' of binary model holds 3 distinct values"):
        binary_target(pd.Series(["good", "bad", "ugly"]), config)
    plain = ModelConfig(kind="binary", target="y", registered_name="x")
    with pytest.raises(ValueError, match="set positive_label"):
        binary_target(pd.Series(["yes", "no"]), plain)


def test_the_benchmark_is_fitted_on_a_fixed_sample_of_at_most_benchmark_rows():
    train = pd.DataFrame({"x": range(5_000)})
    config = ModelConfig(kind="binary", target="y", registered_name="x", benchmark_rows=1_000)
    sample = benchmark_sample(train, config)
    assert len(sample) == 1_000
    assert sample.index.is_unique
    assert sample.index.isin(train.index).all()
    assert sample.index.equals(benchmark_sample(train, config).index)  # the same rows every time
    assert benchmark_sample(train, config.model_copy(update={"benchmark_rows": None})) is train
    assert benchmark_sample(train.head(800), config).equals(train.head(800))
    with pytest.raises(ValueError, match="benchmark_rows"):
        ModelConfig(kind="binary", target="y", registered_name="x", benchmark_rows=10)


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
def test_a_benchmark_on_more_rows_than_benchmark_rows_is_fitted_on_the_sample(folds):
    from crm_modes.data.generator import generate_book
    from crm_modes.training.fit import fit_model

    config = load_training_config("configs/train.yaml")
    model = config.models["churn"].model_copy(
        update={
            "estimator": config.models["mode"].estimator.model_copy(update={"params": {"n_estimators": 5}}),
            "calibration": "sigmoid",
            "calibration_folds": folds,
            "benchmark_rows": 1_000,
        }
    )
    book = generate_book(3_000, seed=5).dropna(subset=["churn_12m"])
    fitted = fit_model("churn", model, config.features, book.iloc[:2_000], book.iloc[2_000:])
    assert fitted.benchmark_rows == 1_000
    assert fitted.benchmark is not None
    probabilities = fitted.benchmark.predict_proba(book.iloc[2_000:])[:, 1]
    assert ((probabilities > 0) & (probabilities < 1)).all()
