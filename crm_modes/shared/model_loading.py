"""Registered models loaded by URI, their files verified first, and known by exact version.

Every loader of the project (batch scoring, the REST service, Spark's workers, promotion, the
policy report, monitoring) goes through :func:`load_model`: the alias is resolved once, the
version's files are downloaded into a private folder and checked against the digests recorded
at registration (:mod:`crm_modes.shared.integrity`), and only then does MLflow import the
model's code or read its model files.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd

from crm_modes.shared.integrity import fetch_verified, registry_version


@dataclass(frozen=True)
class FetchedVersion:
    """A registered version pinned by number, with the verified private copy of its files."""

    #: ``models:/name/N``: what was fetched, whatever alias named it.
    pinned_uri: str
    #: ``name vN``, written next to every result.
    version: str
    #: The verified copy of the version's artifacts (``MLmodel``, code, ``artifacts/``).
    path: Path


@dataclass
class LoadedModel:
    """A pyfunc model and the registry version it is (``name vN``), written next to every result."""

    uri: str
    version: str
    pyfunc: mlflow.pyfunc.PyFuncModel
    #: The verified private copy of the version's artifacts the pyfunc was loaded from.
    path: Path

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Score ``frame`` through the registered pyfunc's own ``predict``: the one scoring path.

        Batch and REST score here; Spark's tasks call the same pyfunc's ``predict`` on their
        pieces (:mod:`crm_modes.serve.spark`): exactly what a stock MLflow consumer of the same
        URI gets, MLflow checking the input against the signature. Rows are converted once, to
        the types it declares.
        """
        params = {"model_version": self.version} if self.takes_version else None
        return self.pyfunc.predict(_indexed(model_input(frame)), params=params)

    @functools.cached_property
    def takes_version(self) -> bool:
        """Whether the model's signature declares the ``model_version`` parameter (the advisor bundle
        does, to write it on every row; a single model does not, and MLflow would warn at every call)."""
        schema = self.pyfunc.metadata.get_params_schema()
        return schema is not None and "model_version" in {param.name for param in schema.params}


def model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` in the types MLflow's schema enforcement accepts: categories become plain
    strings (object dtype, missing ones None); other columns are shared, not copied."""
    categorical = [name for name, dtype in frame.dtypes.items() if isinstance(dtype, pd.CategoricalDtype)]
    if not categorical:
        return frame
    converted = frame.copy(deep=False)
    for name in categorical:
        codes = frame[name].cat.codes.to_numpy()
        values = frame[name].cat.categories.to_numpy(dtype=object)[codes]
        values[codes < 0] = None
        converted[name] = pd.Series(values, index=frame.index, dtype=object)
    return converted


def _indexed(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (columns shared, not copied) with its ``RangeIndex`` as a plain index of the same
    labels. MLflow's schema check rebuilds the frame from one Series per column, and pandas aligns
    Series on a ``RangeIndex`` by one index union per column, on a plain index by one identity
    check (docs/decisions/015-fast-scoring-path.md). The rows, their order and the output are the
    same."""
    if type(frame.index) is not pd.RangeIndex:
        return frame
    indexed = frame.copy(deep=False)
    indexed.index = pd.Index(frame.index.to_numpy())
    return indexed


def resolve(uri: str) -> tuple[str, str]:
    """The pinned URI (``models:/name/N``) and version label (``name vN``) of a registry URI.

    An alias is resolved once, so the model loaded is the version reported even if the
    alias moves meanwhile.

    Raises:
        InputError: ``uri`` is not a registered model (only those can be verified).
    """
    name, version = registry_version(uri)
    return f"models:/{name}/{version}", f"{name} v{version}"


def fetch(uri: str) -> FetchedVersion:
    """:func:`resolve`, plus the verified private copy of the version's artifacts."""
    name, version = registry_version(uri)
    return FetchedVersion(f"models:/{name}/{version}", f"{name} v{version}", fetch_verified(name, version))


def load_model(uri: str) -> LoadedModel:
    """Fetch, verify and only then load the registered model ``uri``.

    Raises:
        ArtifactIntegrityError: a file differs from the manifest recorded at registration.
    """
    fetched = fetch(uri)
    return LoadedModel(
        uri=fetched.pinned_uri,
        version=fetched.version,
        pyfunc=mlflow.pyfunc.load_model(str(fetched.path)),
        path=fetched.path,
    )
