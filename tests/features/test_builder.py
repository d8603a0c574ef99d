import warnings

import numpy as np
import pandas as pd
import pytest

from crm_modes.data.gate import validate
from crm_modes.features.builder import build_feature_pipeline
from crm_modes.features.config import FeatureConfig, LeakageError, load_feature_config, parse_feature_config
from crm_modes.features.entrance import MissingColumnsError
from tests.features.checks import assert_model_ready

CONFIG = load_feature_config("configs/features/synthetic.yaml")
FORBIDDEN = {"client_id", "facility_id", "snapshot_date", "default_12m", "churn_12m"}


@pytest.fixture(scope="module")
def book(small_book):
    return validate(small_book).valid


@pytest.mark.parametrize("flavor", ["tree", "linear"])
@pytest.mark.parametrize("target", ["assigned_mode", "default_12m", "churn_12m"])
def test_builds_and_fits_on_the_synthetic_book(book, target, flavor):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the training table's extra columns are expected, not warned about
        matrix = build_feature_pipeline(CONFIG, target=target, flavor=flavor).fit_transform(book)
    assert len(matrix) == len(book)
    assert_model_ready(matrix, flavor)
    sources = {name.split("=")[0].removesuffix("__missing") for name in matrix.columns}
    assert not sources & FORBIDDEN
    assert not any(name.startswith("oracle_") for name in sources)
    assert ("assigned_mode" in sources) == (target != "assigned_mode")
    assert "exposure_to_revenue" in sources


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (
            {"numeric": ["leverage", "oracle_default_probability"]},
            "'oracle_default_probability' (an oracle column)",
        ),
        (
            {"numeric": ["leverage"], "ratios": {"r": ["leverage", "oracle_churn_probability_responsible"]}},
            "'oracle_churn_probability_responsible' (an oracle column)",
        ),
        ({"numeric": ["leverage", "default_12m"]}, "'default_12m' (the model's own label)"),
        ({"numeric": ["leverage", "churn_12m"]}, "'churn_12m' (a label (a future outcome))"),
        ({"categorical": ["client_id"], "numeric": ["leverage"]}, "'client_id' (a id column)"),
        ({"numeric": ["leverage", "loan_no"], "identifiers": ["loan_no"]}, "'loan_no' (an identifier)"),
        (
            {"numeric": ["leverage"], "identifiers": ["loan_no"], "ratios": {"r": ["leverage", "loan_no"]}},
            "'loan_no' (an identifier)",
        ),
        ({"numeric": ["leverage"], "ratios": {"r": ["default_12m", "leverage"]}}, "'default_12m' (the model"),
    ],
)
def test_leakage_is_refused_and_named(raw, named):
    config = parse_feature_config(raw)
    with pytest.raises(LeakageError, match="can never be features of the model of 'default_12m'") as caught:
        build_feature_pipeline(config, target="default_12m")
    assert named in str(caught.value)


def test_mode_is_a_feature_for_pd_but_never_for_the_mode_model():
    config = parse_feature_config({"categorical": ["assigned_mode", "segment"]})
    assert config.columns("default_12m")[1] == ["assigned_mode", "segment"]
    with pytest.raises(LeakageError, match="'assigned_mode' \\(the model's own label\\)"):
        config.columns("assigned_mode")


def test_missing_column_at_transform_names_it(book):
    pipeline = build_feature_pipeline(CONFIG, target="default_12m").fit(book)
    with pytest.raises(
        MissingColumnsError, match=r"at transform: the table lacks columns the pipeline needs: \['leverage'\]"
    ):
        pipeline.transform(book.drop(columns=["leverage"]))


def test_unseen_extra_columns_are_ignored_with_a_warning(book):
    pipeline = build_feature_pipeline(CONFIG, target="default_12m").fit(book)
    with pytest.warns(UserWarning, match=r"ignoring columns the pipeline does not use: \['surprise'\]"):
        out = pipeline.transform(book.assign(surprise=1))
    pd.testing.assert_frame_equal(out, pipeline.transform(book))


def test_configured_column_absent_from_the_table_fails_at_fit_naming_it(book):
    config = parse_feature_config({"numeric": ["leverage", "ebitda"], "categorical": ["segment"]})
    with pytest.raises(
        MissingColumnsError, match=r"at fit: the table lacks columns the pipeline needs: \['ebitda'\]"
    ):
        build_feature_pipeline(config, target="default_12m").fit(book)


def test_text_column_declared_numeric_fails_naming_it(book):
    config = parse_feature_config({"numeric": ["leverage", "industry"]})
    with pytest.raises(
        ValueError, match="column 'industry' is declared numeric but holds values that are not numbers"
    ):
        build_feature_pipeline(config, target="default_12m").fit(book)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"numeric": ["a"], "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({}, "name the numeric and/or categorical columns, or set from_schema: true"),
        ({"numeric": ["a"], "categorical": ["a"]}, r"declared both numeric and categorical: \['a'\]"),
        ({"numeric": ["a"], "domain": ["magic"]}, r"unknown domain features \['magic'\]"),
        ({"from_schema": True, "numeric": ["a"]}, "leave numeric and categorical empty"),
        ({"numeric": ["a", "b"], "ratios": {"a": ["a", "b"]}}, r"ratio names \['a'\] are already columns"),
        ({"numeric": ["a"], "ratios": {"r": ["a"]}}, "ratios.r"),
    ],
)
def test_wrong_configurations_say_what_is_wrong(raw, message):
    with pytest.raises(ValueError, match=message):
        parse_feature_config(raw, source="my.yaml")


def test_log_transform_must_name_a_numeric_feature():
    config = FeatureConfig(numeric=("a",), categorical=("b",), log_transform=("b",))
    with pytest.raises(ValueError, match=r"log_transform columns \['b'\] are not numeric"):
        config.columns("y")


def test_domain_feature_needs_its_inputs():
    config = parse_feature_config({"numeric": ["leverage"], "domain": ["exposure_to_revenue"]})
    frame = pd.DataFrame({"leverage": [1.0, 2.0], "exposure": [1.0, 2.0]})
    with pytest.raises(MissingColumnsError, match=r"\['annual_revenue'\]"):
        build_feature_pipeline(config, target="y").fit(frame)


def test_ratios_are_added_as_numeric_features_and_undefined_where_the_denominator_is_not_positive():
    config = parse_feature_config(
        {"numeric": ["owed", "limit"], "ratios": {"utilization": ["owed", "limit"]}}
    )
    frame = pd.DataFrame({"owed": [50.0, 10.0, 5.0, np.nan, 7.0], "limit": [100.0, 0.0, -4.0, 10.0, np.nan]})
    steps = build_feature_pipeline(config, target="y", flavor="linear").fit(frame)
    added = steps[:2].transform(frame)["utilization"]
    np.testing.assert_array_equal(added.to_numpy(), [0.5, np.nan, np.nan, np.nan, np.nan])
    matrix = steps.transform(frame)
    assert {"utilization", "utilization__missing"} <= set(matrix.columns)  # imputed, and said so
    assert_model_ready(matrix, "linear")
    trees = build_feature_pipeline(config, target="y", flavor="tree").fit(frame).transform(frame)
    assert "utilization__missing" not in trees.columns  # trees read the missing value itself
    np.testing.assert_array_equal(trees["utilization"].isna().to_numpy(), [False, True, True, True, True])


def test_ratio_needs_its_inputs():
    config = parse_feature_config({"numeric": ["owed"], "ratios": {"utilization": ["owed", "limit"]}})
    with pytest.raises(MissingColumnsError, match=r"\['limit'\]"):
        build_feature_pipeline(config, target="y").fit(pd.DataFrame({"owed": [1.0, 2.0]}))


def test_text_in_a_ratio_input_fails_naming_it():
    config = parse_feature_config({"numeric": ["owed"], "ratios": {"utilization": ["owed", "limit"]}})
    frame = pd.DataFrame({"owed": [1.0, 2.0], "limit": [10.0, 20.0]})
    steps = build_feature_pipeline(config, target="y").fit(frame)
    with pytest.raises(ValueError, match="ratio input 'limit' holds values that are not numbers"):
        steps.transform(frame.assign(limit=["10", "unlimited"]))


def test_unclipped_columns_keep_values_beyond_the_training_range():
    from crm_modes.features.numeric import NumericCleaner

    train = pd.DataFrame(
        {"gdp_growth": np.linspace(0.0, 4.0, 1_001), "leverage": np.linspace(1.0, 5.0, 1_001)}
    )
    recession = pd.DataFrame({"gdp_growth": [-3.0], "leverage": [9.0]})
    cleaner = NumericCleaner(unclipped_columns=["gdp_growth"], add_indicator=False).fit(train)
    gdp, leverage = cleaner.transform(recession)[0]
    assert gdp == -3.0  # reaches the model as it is
    assert leverage == pytest.approx(np.quantile(train["leverage"], 0.999))  # clipped as before
    with pytest.raises(ValueError, match=r"unclipped_columns \['gpd'\] are not among"):
        NumericCleaner(unclipped_columns=["gpd"]).fit(train)


def test_the_book_s_macro_signal_is_an_unclipped_feature():
    config = load_feature_config("configs/features/synthetic.yaml")
    assert "gdp_growth" in config.unclipped
    assert "gdp_growth" in config.columns("churn_12m")[0]
