"""Assemble a feature pipeline from the schema and a feature configuration."""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from crm_modes.features.categorical import CategoryEncoder
from crm_modes.features.config import FeatureConfig, Flavor
from crm_modes.features.domain import DOMAIN_FEATURES, DomainFeatures
from crm_modes.features.entrance import EntranceCheck
from crm_modes.features.numeric import NumericCleaner


def build_feature_pipeline(config: FeatureConfig, *, target: str | None, flavor: Flavor = "tree") -> Pipeline:
    """The feature pipeline for a model of ``target``.

    Steps: the entrance check (selects and checks the input columns), domain features and
    configured ratios, then numeric cleaning and categorical encoding side by side; linear
    models also get standardization. The output is a pandas DataFrame with readable column names.

    Args:
        config: which columns and how.
        target: the model's label column; it can never be a feature.
        flavor: ``"linear"`` (one-hot, standardized) or ``"tree"`` (ordinal category codes,
            see :func:`categorical_outputs`).

    Raises:
        LeakageError: the configuration names a column this model may never read.
    """
    numeric, categorical = config.columns(target)
    domain_inputs = [column for name in config.domain for column in DOMAIN_FEATURES[name].inputs]
    domain_inputs += [column for pair in config.ratios.values() for column in pair]
    inputs = list(dict.fromkeys([*numeric, *categorical, *domain_inputs]))
    encoder = CategoryEncoder(
        encoding="onehot" if flavor == "linear" else "ordinal", min_frequency=config.min_category_frequency
    )
    columns = ColumnTransformer(
        [
            (
                "numeric",
                NumericCleaner(
                    log_columns=list(config.log_transform),
                    clip_quantiles=config.clip_quantiles,
                    unclipped_columns=list(config.unclipped),
                    # boosted trees take missing values natively; linear models need a number
                    impute=flavor == "linear",
                    add_indicator=flavor == "linear" or config.missing_indicators,
                ),
                [*numeric, *config.domain, *config.ratios],
            ),
            ("categorical", encoder, categorical),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    steps = [
        ("entrance", EntranceCheck(columns=inputs)),
        (
            "domain",
            DomainFeatures(
                features=list(config.domain),
                ratios=[(name, *pair) for name, pair in config.ratios.items()],
            ),
        ),
        ("columns", columns),
    ]
    if flavor == "linear":
        steps.append(("scale", StandardScaler()))
    return Pipeline(steps).set_output(transform="pandas")


def categorical_outputs(config: FeatureConfig, *, target: str | None) -> list[str]:
    """Output columns of a tree-flavored pipeline that hold category codes."""
    return config.columns(target)[1]
