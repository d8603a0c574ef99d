"""An input error found inside a Spark task reaches the user as the in-process engine reports it."""

import subprocess

import pytest

from crm_modes.data.generator import generate_book

pytestmark = pytest.mark.integration


def _score_on_spark(cli, advisor_store, source: str, output: str, *extra: str):
    return subprocess.run(
        [
            *(cli, "score", "--model", "models:/crm-advisor@champion"),
            *("--input", source, "--output", output, "--engine", "spark", *extra),
        ],
        cwd=advisor_store["folder"],
        env=advisor_store["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_spark_engine_names_an_unreadable_column_without_a_traceback(cli, advisor_store):
    folder = advisor_store["folder"]
    book = generate_book(200, seed=52)
    book = book.drop(
        columns=[c for c in book.columns if c.startswith("oracle_") or c in ("default_12m", "churn_12m")]
    )
    book["leverage"] = "high"
    book.to_parquet(folder / "unreadable.parquet")
    result = _score_on_spark(
        cli, advisor_store, "unreadable.parquet", "unreadable-scores.parquet", "--spark-master", "local[2]"
    )
    assert result.returncode == 2
    assert "column 'leverage' cannot be read as a finite number" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Py4J" not in result.stderr
    assert not (folder / "unreadable-scores.parquet").exists()
    assert not list(folder.glob(".unreadable-scores*"))  # no staging folder left behind


def test_spark_engine_names_an_output_it_cannot_write_before_spark_starts(cli, advisor_store):
    folder = advisor_store["folder"]
    (folder / "a-file").write_text("not a folder")
    generate_book(50, seed=53).to_parquet(folder / "small.parquet")
    result = _score_on_spark(cli, advisor_store, "small.parquet", "a-file/scores.parquet")
    assert result.returncode == 2
    said = " ".join(result.stderr.split())
    assert "a-file/scores.parquet: cannot write: a-file is a file, not a folder" in said
    assert "Traceback" not in result.stderr


def test_spark_engine_stops_a_broken_feed_before_any_output(cli, advisor_store):
    """A column empty on every row: exit 2 naming it, the quarantine in place, no output folder."""
    folder = advisor_store["folder"]
    book = generate_book(300, seed=54).assign(rm_contacts_90d=float("nan"))
    book.to_parquet(folder / "broken.parquet")
    result = _score_on_spark(
        cli, advisor_store, "broken.parquet", "broken-scores.parquet", "--spark-master", "local[2]"
    )
    assert result.returncode == 2, result.stdout[-2000:]
    assert "none of the 300 rows passed the gate" in result.stderr
    assert "rm_contacts_90d 300 (e.g. missing)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (folder / "broken-scores.parquet").exists()
    assert (folder / "broken-scores.quarantine.parquet" / "_SUCCESS").exists()
    assert not list(folder.glob(".broken-scores*"))
