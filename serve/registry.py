"""Load a registered model by URI and know exactly which version it is."""

from __future__ import annotations

import re
from dataclasses import dataclass

import mlflow
import pandas as pd
from mlflow import MlflowClient

from crm_modes.models.signature import model_input

_ALIAS = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)$")
_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


@dataclass
class LoadedModel:
    """A pyfunc model and the registry version it is (``name vN``), written next to every result."""

    uri: str
    version: str
    pyfunc: mlflow.pyfunc.PyFuncModel

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Score ``frame`` through the registered pyfunc's own ``predict``: the one scoring path.

        Batch and REST score here, and Spark through ``mlflow.pyfunc.spark_udf`` over the same
        pyfunc: exactly what a stock MLflow consumer of the same URI gets, MLflow checking the
        input against the signature. Rows are converted once, to the types it declares.
        """
        return self.pyfunc.predict(model_input(frame), params={"model_version": self.version})


def resolve(uri: str) -> tuple[str, str]:
    """The pinned URI (``models:/name/N``) and version label of ``uri``.

    An alias is resolved once, so the model loaded is the version reported even if the
    alias moves meanwhile. Other URIs (runs:/, a path) are used as they are.
    """
    match = _ALIAS.match(uri)
    if match:
        version = MlflowClient().get_model_version_by_alias(match["name"], match["alias"]).version
        return f"models:/{match['name']}/{version}", f"{match['name']} v{version}"
    match = _VERSION.match(uri)
    if match:
        return uri, f"{match['name']} v{match['version']}"
    return uri, uri


def load_model(uri: str) -> LoadedModel:
    pinned, version = resolve(uri)
    return LoadedModel(uri=pinned, version=version, pyfunc=mlflow.pyfunc.load_model(pinned))
