"""Artifacts verified before they run: edited code, model or manifest files are refused, and nothing runs.

A registry of its own (SQLite, local artifacts) with the advisor bundle registered by the
project's own code; the tests edit the files in its artifact store, as someone with write
access to a shared artifact store could, and restore them afterwards.
"""

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import pytest
from mlflow import MlflowClient

from crm_modes.shared.integrity import MANIFEST_FILE, MANIFEST_TAG, ArtifactIntegrityError
from crm_modes.shared.model_loading import load_model
from crm_modes.training.registration import load_version
from tests.conftest import REPO, quiet_mlflow_env

pytestmark = pytest.mark.integration
NAME = "crm-advisor"


@pytest.fixture(scope="module")
def registry(tmp_path_factory, fitted_advisor, book_50k):
    from crm_modes.training.bundle import log_advisor

    folder = tmp_path_factory.mktemp("integrity")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("integrity")
    with mlflow.start_run():
        version = log_advisor(
            {name: getattr(fitted_advisor, name) for name in ("mode", "churn", "default")},
            policy_path=REPO / "configs" / "alert_policy.yaml",
            economics_path=REPO / "configs" / "economics.yaml",
            registered_name=NAME,
            component_versions={"crm-mode": "1", "crm-churn": "1", "crm-pd": "1"},
            example=book_50k,
        )
    client = MlflowClient()
    model_id = client.get_model_version(NAME, version.version).source.removeprefix("models:/")
    artifacts = Path(urlparse(client.get_logged_model(model_id).artifact_location).path)
    yield {"uri": uri, "folder": folder, "version": str(version.version), "artifacts": artifacts}
    mlflow.set_tracking_uri(previous)


@pytest.fixture
def edited(registry):
    """Edit a file of the registered artifacts for one test; put the original back afterwards."""
    saved: dict[Path, bytes] = {}

    def edit(relative: str, change) -> Path:
        path = registry["artifacts"] / relative
        saved.setdefault(path, path.read_bytes())
        path.write_bytes(change(path.read_bytes()))
        return path

    yield edit
    for path, content in saved.items():
        path.write_bytes(content)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_a_registered_version_is_sealed_and_loads_without_writing_into_the_artifact_store(registry):
    version = MlflowClient().get_model_version(NAME, registry["version"])
    assert len(version.tags[MANIFEST_TAG]) == 64
    listed = json.loads((registry["artifacts"] / MANIFEST_FILE).read_text())["files"]
    assert {"MLmodel", "advisor_entry.py", "artifacts/churn.skops", "artifacts/economics.yaml"} <= set(listed)
    assert any(path.startswith("code/crm_modes/") for path in listed)
    before = snapshot(registry["artifacts"])
    model = load_model(f"models:/{NAME}/{registry['version']}")
    assert snapshot(registry["artifacts"]) == before  # a read-only artifact location would do
    assert model.path != registry["artifacts"]
    assert not (registry["artifacts"] / "registered_model_meta").exists()


def test_a_read_only_artifact_location_loads(registry):
    """The artifact folder mounted read-only onto itself (the tests run as root, in CI too)."""
    folder = str(registry["artifacts"])
    subprocess.run(["mount", "--bind", folder, folder], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", folder], check=True)
        with pytest.raises(OSError, match="Read-only file system"):
            (registry["artifacts"] / "probe").write_text("x")
        model = load_model(f"models:/{NAME}/{registry['version']}")
        assert model.version == f"{NAME} v{registry['version']}"
    finally:
        subprocess.run(["umount", folder], check=True)


def test_an_edited_code_file_is_refused_before_it_runs(registry, edited, tmp_path, cli):
    marker = tmp_path / "the-edited-code-ran"
    edited("advisor_entry.py", lambda text: text + f"\nopen({str(marker)!r}, 'w').close()\n".encode())
    with pytest.raises(ArtifactIntegrityError, match=r"advisor_entry.py does not match its SHA-256"):
        load_model(f"models:/{NAME}/{registry['version']}")
    assert not marker.exists()
    # the command line says the same, exit 2, and runs nothing either
    book = tmp_path / "rows.parquet"
    from crm_modes.data.generator import generate_book

    generate_book(20, seed=1).to_parquet(book)
    result = subprocess.run(
        [
            cli,
            "score",
            "--model",
            f"models:/{NAME}/{registry['version']}",
            "--input",
            str(book),
            "--output",
            str(tmp_path / "scores.parquet"),
        ],
        env=quiet_mlflow_env(MLFLOW_TRACKING_URI=registry["uri"]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "advisor_entry.py does not match its SHA-256 recorded at registration" in " ".join(
        result.stderr.split()
    )
    assert not marker.exists()


def test_an_edited_shipped_module_is_refused(registry, edited):
    edited("code/crm_modes/models/advisor.py", lambda text: text.replace(b"import", b"import os  #", 1))
    with pytest.raises(ArtifactIntegrityError, match=r"code/crm_modes/models/advisor.py does not match"):
        load_model(f"models:/{NAME}/{registry['version']}")


def test_an_edited_model_file_is_refused_before_it_is_deserialized(registry, edited):
    edited("artifacts/churn.skops", lambda data: data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(ArtifactIntegrityError, match=r"artifacts/churn.skops does not match its SHA-256"):
        load_model(f"models:/{NAME}/{registry['version']}")


def test_a_rewritten_manifest_is_refused(registry, edited):
    """Whoever edits a file and its manifest line still cannot change the digest in the registry."""
    path = edited("artifacts/economics.yaml", lambda text: text + b"\n# edited\n")
    import hashlib

    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    def rewrite(text: bytes) -> bytes:
        manifest = json.loads(text)
        manifest["files"]["artifacts/economics.yaml"] = digest
        return json.dumps(manifest).encode()

    edited(MANIFEST_FILE, rewrite)
    with pytest.raises(
        ArtifactIntegrityError, match="does not match the digest recorded on the registry version"
    ):
        load_model(f"models:/{NAME}/{registry['version']}")


def test_an_added_file_is_refused(registry):
    extra = registry["artifacts"] / "code" / "crm_modes" / "sitecustomize.py"
    extra.write_text("raise SystemExit('ran')\n")
    try:
        with pytest.raises(ArtifactIntegrityError, match="files not recorded at registration"):
            load_model(f"models:/{NAME}/{registry['version']}")
    finally:
        extra.unlink()


def test_a_version_without_a_manifest_is_refused(registry):
    client = MlflowClient()
    source = client.get_model_version(NAME, registry["version"]).source
    unsealed = client.create_model_version(NAME, source)
    with pytest.raises(
        ArtifactIntegrityError, match=f"{NAME} v{unsealed.version} has no 'artifacts_sha256' tag"
    ):
        load_model(f"models:/{NAME}/{unsealed.version}")
    with pytest.raises(ArtifactIntegrityError, match="has no 'artifacts_sha256' tag"):
        load_version(NAME, str(unsealed.version))


def test_only_registry_uris_are_loaded(tmp_path, registry):
    copy = tmp_path / "copy"
    shutil.copytree(registry["artifacts"], copy)
    with pytest.raises(ValueError, match="only registered models can be verified"):
        load_model(str(copy))
