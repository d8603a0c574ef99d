"""The Spark engine scores the same registered bundle and gives the in-process engine's answers."""

import json
import subprocess

import pandas as pd
import pytest

from crm_modes.data.generator import generate_book

pytestmark = pytest.mark.integration


def test_spark_engine_equals_the_in_process_engine(cli, advisor_store):
    folder = advisor_store["folder"]
    book = generate_book(3_000, seed=51)
    book = book.drop(
        columns=[c for c in book.columns if c.startswith("oracle_") or c in ("default_12m", "churn_12m")]
    )
    book.loc[[7, 2100], "leverage"] = 99.0
    book.loc[2500] = book.loc[3]  # a repeated key
    book.to_parquet(folder / "spark-input.parquet")
    outputs = {}
    for engine, output in (("inprocess", "local-scores.parquet"), ("spark", "spark-scores.parquet")):
        # 700-row chunks: the Spark engine cuts the table into three pieces (tasks), so the
        # repeated key (rows 3 and 2500) spans two of them
        extra = ["--chunk-rows", "700", *(["--spark-master", "local[2]"] if engine == "spark" else [])]
        result = subprocess.run(
            [
                cli,
                "score",
                "--model",
                "models:/crm-advisor@champion",
                "--input",
                "spark-input.parquet",
                "--output",
                output,
                "--engine",
                engine,
                *extra,
            ],
            cwd=folder,
            env=advisor_store["env"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        if engine == "spark":
            assert "in 3 pieces" in result.stdout
        outputs[engine] = pd.read_parquet(folder / output)
    assert (folder / "spark-scores.parquet").is_dir()
    local, spark = outputs["inprocess"], outputs["spark"][list(outputs["inprocess"].columns)]
    assert len(local) == len(spark) == 2_997
    assert (spark["facility_id"].to_numpy() == local["facility_id"].to_numpy()).all()  # input order
    value_columns = ["recommended_mode", "recommendation_reason", "value_basic", "value_reactive"]
    assert {*value_columns, "value_responsible", "committee_mode"} <= set(spark.columns)
    assert spark["recommendation_reason"].str.contains(" over ").all()
    key = ["facility_id", "snapshot_date"]
    pd.testing.assert_frame_equal(
        local.sort_values(key).reset_index(drop=True),
        spark.sort_values(key).reset_index(drop=True),
        check_dtype=False,
        rtol=1e-12,
    )
    quarantine = pd.read_parquet(folder / "spark-scores.quarantine.parquet")
    assert len(quarantine) == 3
    quarantine = quarantine.sort_values("_row_id")
    assert quarantine["_row_id"].tolist() == [7, 2100, 2500]  # 0-based rows of the Parquet table
    local_quarantine = pd.read_parquet(folder / "local-scores.quarantine.parquet")
    assert quarantine["quarantine_reason"].tolist() == local_quarantine["quarantine_reason"].tolist()
    assert quarantine["quarantine_reason"].iloc[0] == "leverage: 99.0 is above the maximum 50"
    assert quarantine["quarantine_reason"].iloc[2].startswith("duplicate key (facility_id=")
    assert json.loads(quarantine["raw_values"].iloc[0])["leverage"] == 99.0
