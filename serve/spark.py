"""Scale-out scoring on Apache Spark with the same registered bundle (``mlflow.pyfunc.spark_udf``).

The steps mirror the in-process engine: every row goes through the validation gate (per
Arrow batch, with repeated keys found across the whole table by a window), bad rows go to
a quarantine output with their reasons, valid rows are scored by the registered model
through a Spark UDF, and outputs are written as Parquet folders, atomically (written
beside the target, then renamed into place). Spark is imported only here.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from crm_modes.data.errors import InputError
from crm_modes.data.io import replace_folder, table_format
from crm_modes.data.schema import KEY, SCHEMA, Kind, input_names
from crm_modes.data.validation import REASON, Gate, TableSchemaError
from crm_modes.models.advisor import OUTPUT_TYPES, PASS_THROUGH
from crm_modes.models.signature import model_input
from crm_modes.serve.registry import fetch, is_advisor

ROW_ID = "_row_id"
RAW = "raw_values"
_SPARK_TYPE = {
    Kind.INT: "bigint",
    Kind.BINARY: "bigint",
    Kind.FLOAT: "double",
    Kind.CATEGORY: "string",
    Kind.STRING: "string",
    Kind.DATE: "timestamp",
}


@dataclass
class SparkReport:
    model_version: str
    rows_in: int
    rows_scored: int
    rows_quarantined: int
    output: Path
    quarantine: Path
    #: time from the Spark session being ready to the outputs being in place
    seconds_after_session: float = 0.0

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.rows_scored + self.rows_quarantined


def spark_session(master: str = "local[*]", *, task_threads: int = 1):
    """A Spark session whose Python tasks each use ``task_threads`` threads, idle ones sleeping.

    An executor runs one task per core; a task whose OpenMP or BLAS pool also took every core
    would oversubscribe the machine by the number of tasks, and spinning idle threads would
    turn that into a collapse. So every Python worker gets pools of ``task_threads``.
    """
    from pyspark.sql import SparkSession

    # Workers must run this interpreter (the one this package is installed in), not
    # whatever `python3` the PATH finds first.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(master)
        .appName("crm-modes-score")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", "4")
    )
    for key, value in task_environment(task_threads).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def task_environment(task_threads: int) -> dict[str, str]:
    """Spark settings that size every Python task's thread pools and let idle threads sleep."""
    from crm_modes.models.threads import POOL_VARIABLES, WAIT_POLICY

    settings = {f"spark.executorEnv.{WAIT_POLICY}": "PASSIVE"}
    settings.update({f"spark.executorEnv.{name}": str(task_threads) for name in POOL_VARIABLES})
    return settings


def _typed_schema(columns: list[str]) -> str:
    declared = {column.name: column for column in SCHEMA}
    fields = [f"`{name}` {_SPARK_TYPE[declared[name].kind]}" for name in columns]
    return ", ".join([f"`{ROW_ID}` bigint", *fields, f"`{REASON}` string", f"`{RAW}` string"])


def _gate_batches(columns: list[str]):
    """Validate each Arrow batch; valid rows typed, rejected rows as their raw values plus reasons."""

    def run(batches):
        for batch in batches:
            row_ids = batch[ROW_ID].to_numpy()
            raw = batch.drop(columns=[ROW_ID])
            result = Gate(required=()).check(raw)  # required columns were checked on the table
            bad = result.quarantine["source_row"].to_numpy() - 1
            good = pd.Series(True, index=range(len(raw)))
            good.iloc[bad] = False
            valid = model_input(result.valid)
            out = pd.DataFrame({ROW_ID: row_ids[good.to_numpy()]})
            for name in columns:
                out[name] = valid[name].to_numpy() if name in valid else None
            out[REASON] = None
            out[RAW] = None
            rejected = pd.DataFrame({ROW_ID: row_ids[bad]})
            for name in columns:
                rejected[name] = None
            rejected[REASON] = result.quarantine[REASON].to_numpy()
            rejected[RAW] = [json.dumps(record, default=str) for record in raw.iloc[bad].to_dict("records")]
            yield pd.concat([out, rejected], ignore_index=True)

    return run


def nanosecond_columns(source: Path) -> list[str]:
    """Columns of a Parquet file or folder stored as nanosecond timestamps (pandas 2 writes them)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    schema = ds.dataset(str(source), format="parquet").schema
    return [field.name for field in schema if pa.types.is_timestamp(field.type) and field.type.unit == "ns"]


def _read_parquet(spark, source: Path):
    """The Parquet table at ``source``; nanosecond timestamps, which Spark refuses, read as microseconds."""
    from pyspark.sql import functions as F  # noqa: N812 - the PySpark convention

    nanos = nanosecond_columns(source)
    spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", str(bool(nanos)).lower())
    table = spark.read.parquet(str(source))
    for name in nanos:  # read as whole nanoseconds since the epoch
        table = table.withColumn(name, F.timestamp_micros(F.floor(F.col(name) / 1_000).cast("long")))
    return table


def score_with_spark(
    model_uri: str,
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    master: str = "local[*]",
    task_threads: int = 1,
) -> SparkReport:
    """Score ``source`` (Parquet or CSV) on Spark into the Parquet folder ``output``.

    Each task's thread pools use ``task_threads`` threads (see :func:`spark_session`).

    Raises:
        TableSchemaError: required columns are missing.
        ValueError: the output is not a ``.parquet`` path.
    """
    import mlflow
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # noqa: N812 - the PySpark convention

    source, output = Path(source), Path(output)
    if table_format(output) != "parquet":
        raise InputError(f"{output}: the Spark engine writes Parquet; use a .parquet output path")
    quarantine = output.with_name(f"{output.stem}.quarantine.parquet")
    _, version, verified = fetch(model_uri)  # checked against its manifest before Spark loads it
    if not is_advisor(verified):
        raise InputError(
            f"{model_uri} is a single model, not the advisor bundle: the Spark engine scores the advisor; "
            "score single models with --engine inprocess"
        )
    spark = spark_session(master, task_threads=task_threads)
    session_ready = time.perf_counter()
    if table_format(source) == "csv":
        table = spark.read.option("header", True).csv(str(source))
    else:
        table = _read_parquet(spark, source)
    received = table.columns
    missing = [name for name in Gate().required if name not in received]
    if missing:
        raise TableSchemaError([f"missing required columns {missing}"])
    if not table.take(1):
        raise TableSchemaError([f"{source}: the table has a header but no data rows"])
    columns = [name for name in input_names() if name in received]
    raw = table.select(*columns).withColumn(ROW_ID, F.monotonically_increasing_id())
    gated = raw.mapInPandas(_gate_batches(columns), schema=_typed_schema(columns)).cache()
    # A repeated facility-month among the rows that passed: only the key columns are shuffled to
    # find the repeats (few, as a rule), which then travel to the rows as a broadcast.
    first = Window.partitionBy(*KEY).orderBy(ROW_ID)
    repeats = (
        gated.where(F.col(REASON).isNull())
        .select(ROW_ID, *KEY)
        .withColumn("_seen", F.row_number().over(first))
        .where(F.col("_seen") > 1)
        .select(ROW_ID, F.lit(True).alias("_repeat"))
    )
    key_text = F.concat_ws(", ", *[F.concat(F.lit(f"{k}="), F.col(k).cast("string")) for k in KEY])
    checked = gated.join(F.broadcast(repeats), ROW_ID, "left").withColumn(
        REASON,
        F.when(
            F.col("_repeat"), F.concat(F.lit("duplicate key ("), key_text, F.lit(") already seen"))
        ).otherwise(F.col(REASON)),
    )

    advise = mlflow.pyfunc.spark_udf(
        spark,
        str(verified),
        result_type=", ".join(f"{name} {kind}" for name, kind in OUTPUT_TYPES.items()),
        env_manager="local",
        params={"model_version": version},
    )
    passed = [name for name in PASS_THROUGH if name in columns]
    # Sorted before scoring: the sort spreads the rows over the cores (a file's row group is one
    # partition) and scoring keeps each partition's order, so the output reads back in input
    # order and the model runs once per row (a sort after it would score a sample twice).
    valid = checked.where(F.col(REASON).isNull()).orderBy(ROW_ID)
    scored = valid.select(*passed, advise(F.struct(*[F.col(name) for name in columns])).alias("advice"))
    scored = scored.select(*passed, "advice.*")
    rejected = checked.where(F.col(REASON).isNotNull()).orderBy(ROW_ID).select(ROW_ID, REASON, RAW)

    for frame, target in ((scored, output), (rejected, quarantine)):
        written = target.with_name(f".{target.name}.writing")
        shutil.rmtree(written, ignore_errors=True)
        frame.write.mode("overwrite").parquet(str(written))
        replace_folder(written, target)
    counts = checked.select(
        F.count(F.lit(1)).alias("rows"), F.sum(F.col(REASON).isNotNull().cast("long")).alias("bad")
    ).first()
    gated.unpersist()
    rows_in, bad = int(counts["rows"]), int(counts["bad"] or 0)
    return SparkReport(
        version, rows_in, rows_in - bad, bad, output, quarantine, time.perf_counter() - session_ready
    )
