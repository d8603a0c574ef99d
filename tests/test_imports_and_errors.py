"""Importing any module changes nothing; a user's mistake is a message, a program's fault a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("data", "features", "models", "training", "serve", "state", "monitor", "crm_modes")
MODEL_FROM_CODE_FILES = ("advisor_entry.py", "single_model_entry.py")


def modules() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if "migrations" in path.parts or path.name in MODEL_FROM_CODE_FILES:
                continue  # migrations run under alembic; the model-from-code files are what MLflow runs
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(part for part in parts if part != "__init__")
            found.append(name if package == "crm_modes" else f"crm_modes.{name}")
    return found


def test_importing_every_module_leaves_matplotlib_and_mlflow_as_they_were():
    script = f"""
import importlib, os
import matplotlib, mlflow
import mlflow.models.model as model
before = (matplotlib.get_backend(), mlflow.get_tracking_uri(), mlflow.active_run())
for name in {modules()!r}:
    importlib.import_module(name)
after = (matplotlib.get_backend(), mlflow.get_tracking_uri(), mlflow.active_run())
assert before == after, (before, after)
assert model.__mlflow_model__ is None, "a module registered a model with MLflow"
print("imported", len({modules()!r}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={"MPLBACKEND": "svg", "PATH": "/usr/bin:/bin", "MLFLOW_TRACKING_URI": "sqlite:///never-used.db"},
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"imported {len(modules())}" in result.stdout
    assert not (REPO / "never-used.db").exists()


def test_only_the_model_from_code_files_register_a_model():
    """The exclusion list above is exactly the files that call ``set_model``, so no new one slips in."""
    registering = {
        path.name
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if "set_model(" in path.read_text()
    }
    assert registering == set(MODEL_FROM_CODE_FILES)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "--out", "b.parquet", "--scenario", "boom"], "unknown scenario 'boom'"),
        (["generate", "--out", "b.txt"], "unsupported extension '.txt'"),
        (["generate", "--out", "b.parquet", "--threads", "0", "--rows", "0"], "Invalid value for '--rows'"),
    ],
)
def test_a_users_mistake_is_a_message_and_exit_2(cli, tmp_path, args, message):
    result = subprocess.run([cli, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_fault_of_the_program_keeps_its_traceback_and_exits_1(tmp_path):
    """Any other exception, a ValueError included, is not dressed up as bad input."""
    script = """
import sys
import crm_modes.data.generator as generator
def broken(*args, **kwargs):
    raise ValueError("an internal invariant failed")
generator.generate_book = broken
sys.argv = ["crm-modes", "generate", "--out", "book.parquet", "--rows", "10"]
from crm_modes.cli import run
run()
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "an internal invariant failed" in result.stderr
    assert "error:" not in result.stderr.splitlines()[0]
    assert not Path(tmp_path / "book.parquet").exists()
