"""Shared fixtures: small generated books, built once per session."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from crm_modes.data.generator import generate_book


@pytest.fixture(scope="session")
def book_50k() -> pd.DataFrame:
    """The 50,000-row book the issue's rate bands are checked on."""
    return generate_book(50_000, seed=7)


@pytest.fixture(scope="session")
def small_book() -> pd.DataFrame:
    return generate_book(3_000, seed=11)


@pytest.fixture(scope="session")
def cli() -> str:
    """Path of the installed ``crm-modes`` console script."""
    script = Path(sys.executable).with_name("crm-modes")
    found = str(script) if script.exists() else shutil.which("crm-modes")
    assert found, "the crm-modes console script is not installed; run `make test`"
    return found


REPO = Path(__file__).resolve().parents[1]


def datasets_dir() -> Path:
    """The public datasets folder: $CRM_MODES_DATASETS, else ../shared/datasets beside the repo."""
    import os

    return Path(os.environ.get("CRM_MODES_DATASETS", REPO.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def datasets() -> Path:
    folder = datasets_dir()
    if not (folder / "german_credit.csv").exists():
        pytest.skip(f"public datasets not found in {folder} (set CRM_MODES_DATASETS to their folder)")
    return folder
