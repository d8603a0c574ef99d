"""Model artifacts verified before they run: a SHA-256 manifest per registered version.

At registration every file of the logged model (``MLmodel``, the environment files, the
shipped code, the configuration and the model files) is hashed. The list is written into
the model's artifacts as :data:`MANIFEST_FILE`, and the SHA-256 of that list is recorded on
the registry version as the tag :data:`MANIFEST_TAG`. The registry database is the anchor:
whoever can write to the artifact store can rewrite the manifest file as well, but not the
tag, and a manifest that no longer matches the tag is refused.

The project's own loaders (``score``, ``serve``, the Spark engine, ``promote`` and
``policy-report``) call :func:`fetch_verified`: the version is downloaded into a private
folder of this process (so a read-only artifact location is never written to), the
manifest is checked against the tag and every file against the manifest, files the
manifest does not list are refused, and only then does MLflow import the model's code or
deserialize its model files. Stock MLflow consumers (``mlflow.pyfunc.load_model``,
``mlflow models serve``) do not check digests; they still get skops' check of the types
a model file may construct.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from crm_modes.shared.errors import InputError

MANIFEST_FILE = "crm_modes_manifest.json"
MANIFEST_TAG = "artifacts_sha256"
#: Files MLflow itself writes into every download of a registered version.
WRITTEN_BY_MLFLOW = frozenset({"registered_model_meta"})

_ALIAS = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)$")
_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


class ArtifactIntegrityError(InputError):
    """A registered model's files are not the ones recorded at registration; nothing was loaded."""


def registry_version(uri: str) -> tuple[str, str]:
    """(name, version) of a ``models:/name/N`` or ``models:/name@alias`` URI; an alias is resolved once.

    Raises:
        ValueError: ``uri`` names no registered version (only those can be verified).
    """
    match = _VERSION.match(uri)
    if match:
        return match["name"], match["version"]
    match = _ALIAS.match(uri)
    if match:
        try:
            version = MlflowClient().get_model_version_by_alias(match["name"], match["alias"]).version
        except MlflowException as error:
            raise InputError(f"{uri}: no such registered model or alias ({error.message})") from None
        return match["name"], str(version)
    raise InputError(
        f"{uri}: only registered models can be verified before they load; "
        "use models:/<name>/<version> or models:/<name>@<alias>"
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def digests(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``folder`` but the manifest and MLflow's own."""
    return {
        path.relative_to(folder).as_posix(): sha256_of(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        and path.name != MANIFEST_FILE
        and path.relative_to(folder).as_posix() not in WRITTEN_BY_MLFLOW
    }


def seal(name: str, version: str, model_id: str) -> str:
    """Record the manifest of a just-registered version: in its artifacts and as its tag.

    Returns the manifest's SHA-256 (the tag's value).
    """
    client = MlflowClient()
    with tempfile.TemporaryDirectory() as folder:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model_id}", dst_path=folder))
        manifest = Path(folder) / MANIFEST_FILE
        manifest.write_text(json.dumps({"algorithm": "sha256", "files": digests(local)}, indent=1))
        client.log_model_artifact(model_id, str(manifest))
        sealed = sha256_of(manifest)
    client.set_model_version_tag(name, version, MANIFEST_TAG, sealed)
    return sealed


def verify(folder: Path, expected: str, label: str) -> None:
    """Check the files under ``folder`` against the manifest whose SHA-256 is ``expected``.

    Raises:
        ArtifactIntegrityError: naming the first file that differs, is missing or is not listed.
    """
    manifest = folder / MANIFEST_FILE
    if not manifest.is_file():
        raise ArtifactIntegrityError(f"{label}: the artifacts have no {MANIFEST_FILE}; refusing to load")
    if sha256_of(manifest) != expected:
        raise ArtifactIntegrityError(
            f"{label}: {MANIFEST_FILE} does not match the digest recorded on the registry version; "
            "refusing to load"
        )
    listed: dict[str, str] = json.loads(manifest.read_text())["files"]
    present = digests(folder)
    for path, digest in listed.items():
        if path not in present:
            raise ArtifactIntegrityError(f"{label}: {path} is missing from the artifacts; refusing to load")
        if present[path] != digest:
            raise ArtifactIntegrityError(
                f"{label}: {path} does not match its SHA-256 recorded at registration; refusing to load"
            )
    unlisted = sorted(set(present) - set(listed))
    if unlisted:
        raise ArtifactIntegrityError(
            f"{label}: files not recorded at registration: {unlisted[:5]}; refusing to load"
        )


def fetch_verified(name: str, version: str) -> Path:
    """Download registered ``name`` ``version`` into a private folder and verify it; return the folder.

    The folder lives as long as this process (the model's code may import from it lazily).

    Raises:
        ArtifactIntegrityError: the version carries no manifest, or its files do not match it.
    """
    label = f"{name} v{version}"
    expected = MlflowClient().get_model_version(name, version).tags.get(MANIFEST_TAG)
    if not expected:
        raise ArtifactIntegrityError(
            f"{label} has no {MANIFEST_TAG!r} tag: it was registered without an artifact manifest "
            "(by another tool or an older release); register it again with `crm-modes train`"
        )
    folder = Path(tempfile.mkdtemp(prefix=f"crm-modes-{name}-v{version}-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    local = Path(
        mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(folder))
    )
    verify(local, expected, label)
    return local
