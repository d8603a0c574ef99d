"""The same builder vectorizes the public tables, each from its own configuration file alone."""

import pandas as pd
import pytest

from crm_modes.features.builder import build_feature_pipeline
from crm_modes.features.config import load_feature_config
from tests.features.checks import assert_model_ready

TABLES = [
    ("german_credit.csv", "configs/features/german_credit.yaml", "target", set()),
    ("taiwan_credit_card.csv", "configs/features/taiwan_credit_card.yaml", "target", {"id"}),
    ("bank_churn.csv", "configs/features/bank_churn.yaml", "Exited", {"RowNumber", "CustomerId", "Surname"}),
]


@pytest.mark.parametrize("flavor", ["tree", "linear"])
@pytest.mark.parametrize(("file", "config_path", "target", "identifiers"), TABLES)
def test_public_table_vectorizes_from_its_configuration(
    datasets, file, config_path, target, identifiers, flavor
):
    table = pd.read_csv(datasets / file).sample(n=800, random_state=0)
    config = load_feature_config(config_path)
    matrix = build_feature_pipeline(config, target=target, flavor=flavor).fit_transform(table)
    assert len(matrix) == 800
    assert_model_ready(matrix, flavor)
    sources = {name.split("=")[0].removesuffix("__missing") for name in matrix.columns}
    assert not sources & (identifiers | {target, "_is_test"})
    assert sources == set(config.numeric) | set(config.categorical) | set(config.ratios)
