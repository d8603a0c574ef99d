"""One registered model as an MLflow pyfunc that answers with named columns.

A stock MLflow consumer of ``models:/my-loans-pd@champion`` (or of the book's ``crm-pd``,
``crm-churn``, ``crm-mode``) calls ``predict(DataFrame)`` and gets a DataFrame whose columns say
what they hold, never a bare array whose columns it would have to guess:

- a binary model: one column, the probability of the event, named after the positive class
  (``probability_bad`` when the configuration says ``positive_label: bad``) or, for a 0/1
  target, after the target (``probability_default_12m``: the probability that it is 1);
- a multi-class model: one column per class, ``probability_<class>`` (``probability_basic``, ...).

:class:`SingleModel` is the thin shell MLflow builds from ``single_model_entry.py`` ("models
from code": nothing is pickled); it loads the fitted pipeline from its skops artifact with the
reviewed trusted types and adds only the naming.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from crm_modes.models import sklearn_adapter
from crm_modes.models.serialization import load_pipeline

MODEL_ARTIFACT = "model"
#: The table profile a model of a table of one's own ships with (its rows are gated against it).
PROFILE_ARTIFACT = "table_profile"
PROFILE_FILE = "table_profile.yaml"


def profile_path(model_root: Path) -> Path:
    """Where the (verified) copy of a registered single model at ``model_root`` keeps its profile."""
    return model_root / "artifacts" / PROFILE_FILE


def output_columns(kind: str, target: str, classes: list[str], positive_label: object | None) -> list[str]:
    """The output column names of a model (see the module)."""
    if kind == "binary":
        return [f"probability_{positive_label if positive_label is not None else target}"]
    return [f"probability_{label}" for label in classes]


class SingleModel(mlflow.pyfunc.PythonModel):
    """MLflow shell of one fitted pipeline; ``model_config`` holds its kind and output columns."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.pipeline = sklearn_adapter.install(load_pipeline(context.artifacts[MODEL_ARTIFACT]))
        config = context.model_config or {}
        self.kind = config["kind"]
        self.columns = list(config["columns"])

    def predict(
        self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        probabilities = np.asarray(self.pipeline.predict_proba(model_input), dtype=np.float64)
        if self.kind == "binary":
            return pd.DataFrame({self.columns[0]: probabilities[:, 1]})
        return pd.DataFrame(probabilities, columns=self.columns)
