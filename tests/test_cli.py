"""The console entry point, run as a user runs it."""

import subprocess

import pandas as pd
import pytest

pytestmark = pytest.mark.integration


def run(cli, *args, cwd):
    return subprocess.run([cli, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_generate_then_validate(cli, tmp_path):
    made = run(cli, "generate", "--rows", "3000", "--seed", "5", "--out", "book.csv", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "wrote 3,000 rows" in made.stdout
    book = pd.read_csv(tmp_path / "book.csv", dtype=str)
    book.loc[10, "internal_rating"] = "42"
    book.loc[11, "segment"] = "bank"
    book.to_csv(tmp_path / "book.csv", index=False)

    checked = run(cli, "validate", "book.csv", "--quarantine", "q.csv", "--chunk-rows", "700", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "rows in = valid + quarantined: 3,000 = 2,998 + 2" in checked.stdout
    assert "default_12m rate" in checked.stdout
    assert "assigned mode mix" in checked.stdout
    quarantine = pd.read_csv(tmp_path / "q.csv")
    assert quarantine["quarantine_reason"].tolist() == [
        "internal_rating: '42' is above the maximum 10",
        "segment: 'bank' is not one of sme, mid_corporate, large_corporate, multinational",
    ]


def test_missing_column_stops_with_a_clear_message(cli, tmp_path):
    run(cli, "generate", "--rows", "200", "--out", "book.parquet", cwd=tmp_path)
    pd.read_parquet(tmp_path / "book.parquet").drop(columns=["exposure"]).to_parquet(tmp_path / "cut.parquet")
    checked = run(cli, "validate", "cut.parquet", cwd=tmp_path)
    assert checked.returncode == 2
    assert "missing required columns ['exposure']" in checked.stderr


def test_bad_extension_and_missing_file(cli, tmp_path):
    assert "unsupported extension '.txt'" in run(cli, "generate", "--out", "book.txt", cwd=tmp_path).stderr
    missing = run(cli, "validate", "nothing.csv", cwd=tmp_path)
    assert missing.returncode == 2
    assert "no such file" in missing.stderr


def test_version(cli, tmp_path):
    assert run(cli, "--version", cwd=tmp_path).stdout.startswith("crm-modes ")
