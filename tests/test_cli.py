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
    assert "rows in = valid + quarantined: 3,000 = 2,999 + 1" in checked.stdout
    assert "default_12m rate" in checked.stdout
    assert "assigned mode mix" in checked.stdout
    # A segment the book has never had is scored and reported, not quarantined (decision 018).
    assert "new values of segment (scored)" in checked.stdout
    assert "'bank' 1" in checked.stdout
    quarantine = pd.read_csv(tmp_path / "q.csv")
    assert quarantine["quarantine_reason"].tolist() == ["internal_rating: '42' is above the maximum 10"]


def test_a_book_with_one_column_empty_is_refused_with_its_quarantine(cli, tmp_path):
    """Every row quarantined is never exit 0: the job names the column, and writes the quarantine
    and no valid rows."""
    run(cli, "generate", "--rows", "500", "--out", "book.parquet", cwd=tmp_path)
    book = pd.read_parquet(tmp_path / "book.parquet")
    book.assign(rm_contacts_90d=None).to_parquet(tmp_path / "broken.parquet")
    checked = run(
        cli, "validate", "broken.parquet", "--output", "valid.parquet", "--quarantine", "q.csv", cwd=tmp_path
    )
    assert checked.returncode == 2, checked.stdout[-2000:]
    assert f"none of the {len(book):,} rows passed the gate" in checked.stderr
    assert f"rm_contacts_90d {len(book):,} (e.g. missing)" in checked.stderr
    assert len(pd.read_csv(tmp_path / "q.csv")) == len(book)
    assert not (tmp_path / "valid.parquet").exists()
    lenient = run(cli, "validate", "broken.parquet", "--max-quarantined-share", "1", cwd=tmp_path)
    assert lenient.returncode == 2  # a share allowed to be all of it still scores nothing
    assert "Traceback" not in checked.stderr + lenient.stderr


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
