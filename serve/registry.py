"""Load a registered model by URI and know exactly which version it is."""

from __future__ import annotations

import re
from dataclasses import dataclass

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from crm_modes.models.advisor import Advisor
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
        """Score ``frame`` through the pyfunc (MLflow checks it against the signature)."""
        return self.pyfunc.predict(model_input(frame), params={"model_version": self.version})

    def predict_validated(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Score rows already validated against the schema.

        Rows that passed the validation gate (batch) or the schema-derived request model
        (REST) have been checked more strictly than MLflow's signature enforcement would,
        so for the advisor bundle they go straight to the advisor: no second conversion
        and check of every chunk or request. Any other pyfunc goes through :meth:`predict`.
        """
        advisor = getattr(self._python_model(), "advisor", None)
        if isinstance(advisor, Advisor):
            return advisor.advise(frame, model_version=self.version)
        return self.predict(frame)

    def _python_model(self) -> object:
        try:
            return self.pyfunc.unwrap_python_model()
        except MlflowException:  # not a python-function model (e.g. a plain sklearn flavour)
            return None


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
