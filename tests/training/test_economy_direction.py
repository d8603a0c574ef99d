"""The PD model reads where the economy goes (docs/decisions/026-the-economy-s-direction.md)."""

from __future__ import annotations

from crm_modes.data.gate import validate
from crm_modes.training.config import load_training_config
from crm_modes.training.fit import fit_model
from crm_modes.training.trainer import model_split, training_rows
from tests.conftest import REPO


def test_at_the_same_published_growth_a_recovering_economy_gets_a_lower_pd(book_50k):
    config = load_training_config(REPO / "configs" / "train.yaml")
    table = validate(book_50k).valid
    model = config.models["default"]
    assert "gdp_growth_change_12m" in config.features.columns(model.target)[0]
    split, _ = model_split(table, config, model)
    fit_rows, _ = training_rows(split, model)
    fitted = fit_model("default", model, config.features, table[fit_rows], table.iloc[:0])
    rows = table[split.evaluation]
    recovering, slowing = (rows.assign(gdp_growth_change_12m=change) for change in (2.0, -2.0))
    pd_recovering = fitted.pipeline.predict_proba(recovering)[:, 1]
    pd_slowing = fitted.pipeline.predict_proba(slowing)[:, 1]
    assert (pd_recovering < pd_slowing).all()  # a model that reads the level alone gives them equal
