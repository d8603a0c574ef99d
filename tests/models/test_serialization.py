import os
from types import SimpleNamespace

import numpy as np
import pytest
import skops.io as sio
from sklearn.preprocessing import FunctionTransformer

from crm_modes.models.serialization import TRUSTED_TYPES, UntrustedModelError, load_pipeline, save_pipeline
from crm_modes.training.config import EstimatorConfig, load_training_config
from crm_modes.training.fit import fit_model
from crm_modes.training.propensity import fit_recorded_propensity
from crm_modes.training.trainer import model_split, training_rows


@pytest.fixture(scope="module")
def fitted_models(book_50k):
    config = load_training_config("configs/train.yaml")
    from crm_modes.data.gate import validate

    table = validate(book_50k).valid
    models = {}
    for name, model in config.models.items():
        for calibration in ("isotonic", "sigmoid"):
            if model.kind == "multiclass" and calibration == "sigmoid":
                continue
            # Boosting trees (what the structural checks are about) and the configured estimator.
            for label, estimator in (
                ("", EstimatorConfig(type="hist_gradient_boosting", params={"max_iter": 20})),
                ("-configured", model.estimator),
            ):
                spec = model.model_copy(
                    update={
                        "calibration": calibration if model.kind == "binary" else "none",
                        "estimator": estimator,
                    }
                )
                split, _ = model_split(table, config, spec)
                fit_rows, calibration_rows = training_rows(split, spec)
                models[f"{name}-{calibration}{label}"] = (
                    fit_model(name, spec, config.features, table[fit_rows], table[calibration_rows]),
                    table,
                )
    # the bundle's recorded propensity: a LightGBM model inside per-mode isotonic steps
    split, _ = model_split(table, config, config.models["mode"])
    recorded = SimpleNamespace(pipeline=fit_recorded_propensity(config, table, split), baseline=None)
    models["recorded-propensity"] = (recorded, table)
    return models


def test_every_fitted_model_needs_only_reviewed_types(fitted_models, tmp_path):
    needed = set()
    for key, (fitted, table) in fitted_models.items():
        for pipeline in filter(None, (fitted.pipeline, fitted.baseline)):  # a logistic model has none
            needed |= set(sio.get_untrusted_types(data=sio.dumps(pipeline)))
            path = save_pipeline(pipeline, tmp_path / f"{key}.skops")
            loaded = load_pipeline(path)
            sample = table.head(50)
            np.testing.assert_array_equal(loaded.predict_proba(sample), pipeline.predict_proba(sample))
    assert needed <= set(TRUSTED_TYPES)
    # The list is reviewed, not padded: every entry is needed by some model.
    assert needed == set(TRUSTED_TYPES)


def test_a_file_with_an_unreviewed_type_is_refused(tmp_path):
    path = tmp_path / "evil.skops"
    sio.dump(FunctionTransformer(func=os.system), path)  # a file that would run a shell command
    with pytest.raises(UntrustedModelError, match="refusing to load types outside the reviewed list"):
        load_pipeline(path)
    with pytest.raises(UntrustedModelError, match="outside the reviewed list"):
        save_pipeline(FunctionTransformer(func=os.system), tmp_path / "x.skops")


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("left", 10_000, "left child points outside the tree"),
        ("right", 0, "right child points outside the tree or backwards"),  # a cycle back to the root
        ("feature_idx", 999, "reads a feature the model does not have"),
    ],
)
def test_a_file_whose_trees_point_outside_themselves_is_refused(fitted_models, tmp_path, field, value, named):
    fitted, _ = fitted_models["default-isotonic"]
    path = save_pipeline(fitted.pipeline, tmp_path / "good.skops")
    tampered = load_pipeline(path)
    model = tampered["model"].calibrated_classifiers_[0].estimator.estimator
    nodes = model._predictors[3][0].nodes
    nodes[field][0] = value  # the root split
    sio.dump(tampered, tmp_path / "tampered.skops")
    with pytest.raises(UntrustedModelError, match=named):
        load_pipeline(tmp_path / "tampered.skops")
