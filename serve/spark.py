"""Scale-out scoring on Apache Spark with the same registered bundle and the same steps as in-process.

The table is cut into pieces (Parquet: row groups, or parts of one; CSV: files) and Spark runs
one task per piece over its cores or executors. A task reads its piece with Arrow (Parquet) or
pandas (CSV), as the in-process engine reads its chunks, and takes each chunk through the same
steps: the validation gate, the registered model's own pyfunc ``predict`` (loaded once per
Python worker, from a copy checked against the version's manifest) and an atomic Parquet
writer. The only step that needs the whole table, finding a key an earlier row already had,
runs first on the key columns alone: their hashes are counted in Spark, and the rows that
repeat a key (few, as a rule) travel to the tasks as a broadcast.

Why the tasks read and write the rows themselves rather than through Spark's reader and writer:
handing every row from the JVM to Python and back (Spark's Parquet reader, rows, Arrow, and the
reverse for the output) took more CPU than scoring it, on the same cores
(docs/decisions/009-spark-tasks-read-their-own-pieces.md). It assumes that the input and the
output folders are on a filesystem the driver and the executors share (on one machine, always).
Each piece's part is written under a temporary name and renamed into place, so a retried task
replaces its part; both folders appear under their final names only when every part is in.
Spark is imported only here.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crm_modes.data.bank_file import BankFile, read_bank_file
from crm_modes.data.gate import (
    DEFAULT_MAX_QUARANTINED_SHARE,
    REASON,
    SOURCE_ROW,
    WARNINGS_COLUMN,
    FileReport,
    Gate,
    TableSchemaError,
    UnseenInputs,
    key_hashes,
    refuse_unusable,
    typed_key,
)
from crm_modes.data.io import (
    AtomicTableWriter,
    TableReadError,
    holds_output,
    iter_chunks,
    iter_row_group,
    replace_folder,
    table_format,
    write_table,
    writing_to,
)
from crm_modes.data.schema import KEY, SCHEMA, Column, Kind, input_names
from crm_modes.models.advisor import OUTPUT_TYPES, PASS_THROUGH, is_advisor
from crm_modes.models.bundle_book import bank_input, scoring_gate
from crm_modes.shared.collector_pause import long_lived
from crm_modes.shared.errors import InputError
from crm_modes.shared.integrity import MANIFEST_FILE, sha256_of, verify
from crm_modes.shared.model_loading import fetch, model_input

ROW_ID = "_row_id"
RAW = "raw_values"
#: Rows per chunk a task reads and scores at a time: the in-process engine's default.
BATCH_ROWS = 50_000
#: A CSV file's rows are numbered from its number times this (a file is one piece, read whole).
CSV_FILE_STRIDE = 1 << 40
_ARROW = {
    Kind.INT: pa.int64(),
    Kind.BINARY: pa.int64(),
    Kind.FLOAT: pa.float64(),
    Kind.CATEGORY: pa.string(),
    Kind.STRING: pa.string(),
    Kind.DATE: pa.timestamp("us"),
    "string": pa.string(),
    "double": pa.float64(),
}
QUARANTINE_SCHEMA = pa.schema([(ROW_ID, pa.int64()), (REASON, pa.string()), (RAW, pa.string())])


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
    #: how many pieces (tasks) the table was cut into
    pieces: int = 0
    #: what the gate found: problems by column with an example each, new categories scored
    gate: FileReport = field(default_factory=FileReport)

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.rows_scored + self.rows_quarantined


@dataclass(frozen=True)
class Piece:
    """Rows one task reads: of a Parquet row group (``row_group`` >= 0), or a whole CSV file.

    ``first_id`` is the ``ROW_ID`` of its first row: the row's 0-based place in a Parquet table;
    a CSV file's number times :data:`CSV_FILE_STRIDE` plus the row's place in the file.
    """

    path: str
    row_group: int
    start: int
    rows: int
    first_id: int

    def frames(self, chunk_rows: int, columns: list[str]) -> Iterator[pd.DataFrame]:
        """The piece's rows, ``chunk_rows`` at a time, read as the in-process engine reads them."""
        if self.row_group < 0:
            for frame in iter_chunks(self.path, chunk_rows):
                yield frame[[name for name in columns if name in frame.columns]]
        else:
            yield from iter_row_group(
                self.path,
                self.row_group,
                start=self.start,
                rows=self.rows,
                chunk_rows=chunk_rows,
                columns=columns,
            )


def plan_pieces(source: Path, *, tasks: int, chunk_rows: int) -> tuple[list[Piece], list[str]]:
    """Cut the table at ``source`` (a Parquet or CSV file, or a folder of them) into pieces for
    about ``tasks`` tasks (no piece under ``chunk_rows`` rows but a row group's or file's last);
    return them and the table's columns.

    Raises:
        TableReadError: the table is missing, not readable, or its files disagree on columns.
    """
    if not source.exists():
        raise TableReadError(f"{source}: no such file or folder")
    if table_format(source) == "csv":
        files = sorted(source.glob("*.csv")) if source.is_dir() else [source]
        if not files:
            raise TableReadError(f"{source}: a folder without .csv files")
        columns = _same_columns({str(path): _csv_header(path) for path in files}, source)
        return [
            Piece(str(path), -1, 0, -1, index * CSV_FILE_STRIDE) for index, path in enumerate(files)
        ], columns

    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    try:
        files = sorted(ds.dataset(str(source), format="parquet").files)
        metadata = {path: pq.read_metadata(path) for path in files}
    except (pa.ArrowInvalid, OSError) as error:
        raise TableReadError(f"{source}: not a readable Parquet table ({error})") from None
    if not files:
        raise TableReadError(f"{source}: a folder without Parquet files")
    columns = _same_columns(
        {path: meta.schema.to_arrow_schema().names for path, meta in metadata.items()}, source
    )
    total = sum(meta.num_rows for meta in metadata.values())
    size = max(chunk_rows, math.ceil(total / max(tasks, 1)))
    pieces, first_id = [], 0
    for path in files:
        for group in range(metadata[path].num_row_groups):
            rows = metadata[path].row_group(group).num_rows
            if not rows:
                continue
            cuts = max(1, math.ceil(rows / size))
            # equal pieces, each a whole number of chunks: no chunk is split between two tasks
            step = math.ceil(rows / cuts / chunk_rows) * chunk_rows
            for start in range(0, rows, step):
                pieces.append(Piece(path, group, start, min(step, rows - start), first_id + start))
            first_id += rows
    return pieces, columns


def _csv_header(path: Path) -> list[str]:
    try:
        return list(pd.read_csv(path, dtype=str, nrows=0, encoding="utf-8").columns)
    except (UnicodeDecodeError, pd.errors.EmptyDataError, pd.errors.ParserError) as error:
        raise TableReadError(f"{path}: not a readable CSV file with a header ({error})") from None


def _same_columns(columns: dict[str, list[str]], source: Path) -> list[str]:
    first = next(iter(columns.values()))
    for path, names in columns.items():
        if names != first:
            raise TableReadError(f"{source}: {path} has other columns than the first file")
    return first


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
        # the daemon that forks the Python workers imports the engine first (see its module)
        .config("spark.python.daemon.module", "crm_modes.serve.spark_daemon")
    )
    for key, value in task_environment(task_threads).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def task_environment(task_threads: int) -> dict[str, str]:
    """Spark settings that size every Python task's thread pools and let idle threads sleep."""
    from crm_modes.shared.threads import POOL_VARIABLES, WAIT_POLICY

    settings = {f"spark.executorEnv.{WAIT_POLICY}": "PASSIVE"}
    settings.update({f"spark.executorEnv.{name}": str(task_threads) for name in POOL_VARIABLES})
    return settings


def advice_schema(columns: list[str], names: dict[str, str] | None = None) -> pa.Schema:
    """The scored output's columns and types: the identifiers the input has (under ``names``, where
    given), then the advice."""
    declared, names = {column.name: column for column in SCHEMA}, names or {}
    passed = [
        (names.get(name, name), _ARROW[declared[name].kind]) for name in PASS_THROUGH if name in columns
    ]
    advice = [(name, _ARROW[kind]) for name, kind in OUTPUT_TYPES.items()]
    return pa.schema([*passed, *advice, (WARNINGS_COLUMN, pa.string())])


def repeated_rows(pieces: list[Piece], chunk_rows: int) -> np.ndarray:
    """The sorted ``ROW_ID`` of every row whose key an earlier row already had (the first of a
    key is kept, as the in-process gate keeps it).

    Read here, on the driver: only the key columns, typed and hashed as the gate does. It holds
    16 bytes a row (the in-process engine holds 8), and is quicker than handing the hashes to
    Spark to count, which a fresh session spends compiling and aggregating (same record as above).
    """
    ids, hashes = [], []
    for piece in pieces:
        first = piece.first_id
        for frame in piece.frames(chunk_rows, list(KEY)):
            row_ids, first = np.arange(first, first + len(frame), dtype=np.int64), first + len(frame)
            key = typed_key(frame)
            if key is None:  # a key column that cannot be read: the gate rejects the table
                continue
            chunk_hashes, nulls = key_hashes(key)
            ids.append(row_ids[~nulls])
            hashes.append(chunk_hashes[~nulls])
    if not ids:
        return np.empty(0, dtype=np.int64)
    repeated = pd.Series(np.concatenate(hashes)).duplicated(keep="first").to_numpy()
    return np.concatenate(ids)[repeated]  # pieces are in row order: already sorted


_MODELS: dict[tuple[str, str], Any] = {}


def _worker_model(name: str, digest: str, label: str):
    """The pyfunc shipped to this worker as ``name``, checked against the manifest, loaded once
    per worker (and per manifest: a worker kept for another job never serves a stale version)."""
    if (name, digest) not in _MODELS:
        import mlflow
        from pyspark import SparkFiles

        folder = Path(SparkFiles.get(name))
        verify(folder, digest, label)
        with long_lived():  # kept for the worker's life, out of the collector's full passes
            _MODELS[name, digest] = mlflow.pyfunc.load_model(str(folder))
    return _MODELS[name, digest]


@dataclass(frozen=True)
class PieceScorer:
    """Read, gate, score and write pieces (runs in Spark's Python workers).

    Yields one row of counts per piece, or the message of an input error (the driver raises it).
    """

    pieces: tuple[Piece, ...]
    chunk_rows: int
    model_name: str
    manifest_digest: str
    version: str
    columns: tuple[str, ...]
    repeated: Any  # a Spark broadcast of repeated_rows()
    output: str
    quarantine: str
    unseen_inputs: UnseenInputs = "score"
    #: schema identifier -> the name the output gives it (a bank's, for a bank's bundle)
    names: tuple[tuple[str, str], ...] = ()
    #: what each column may hold (the schema's; a bank's bundle narrows it to the bank's profile)
    declarations: tuple[Column, ...] = SCHEMA

    def __call__(self, numbers: Iterator[int]) -> Iterator[dict[str, Any]]:
        for index in numbers:
            piece = self.pieces[index]
            checked = FileReport()
            counts: dict[str, Any] = {"error": None}
            try:
                self._score(index, piece, checked)
            except InputError as error:  # the message a user needs, not a traceback from a task
                counts["error"] = str(error)
            yield {**counts, "gate": checked.to_dict()}

    def _score(self, index: int, piece: Piece, checked: FileReport) -> None:
        repeated = self.repeated.value
        part = f"part-{index:05d}.parquet"
        with (
            AtomicTableWriter(Path(self.output) / part) as scored,
            AtomicTableWriter(Path(self.quarantine) / part) as rejected,
        ):
            names = dict(self.names)
            scored.write(advice_schema(list(self.columns), names).empty_table())
            rejected.write(QUARANTINE_SCHEMA.empty_table())
            first = piece.first_id
            for frame in piece.frames(self.chunk_rows, list(self.columns)):
                row_ids, first = np.arange(first, first + len(frame), dtype=np.int64), first + len(frame)
                at = np.minimum(np.searchsorted(repeated, row_ids), max(len(repeated) - 1, 0))
                seen = repeated[at] == row_ids if len(repeated) else np.zeros(len(row_ids), dtype=bool)
                # a gate of its own per chunk (the table's required columns were checked)
                gate = Gate(required=(), columns=self.declarations, unseen_inputs=self.unseen_inputs)
                result = gate.check(frame, repeated=seen)
                if len(result.valid):  # the model loads once a row needs it (not for a rejected table)
                    model = _worker_model(self.model_name, self.manifest_digest, self.version)
                    valid = model_input(result.valid[[n for n in self.columns if n in result.valid]])
                    advice = model.predict(valid, params={"model_version": self.version})
                    advice[WARNINGS_COLUMN] = result.input_warnings
                    scored.write(advice.rename(columns=names))
                if len(result.quarantine):
                    rejected.write(_rejected(result.quarantine, row_ids, list(frame.columns)))
                checked.add(result)


def _rejected(quarantine: pd.DataFrame, row_ids: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """A chunk's quarantined rows as the Spark engine writes them: row id, reasons, raw values."""
    at = quarantine[SOURCE_ROW].to_numpy() - 1  # a gate of its own per chunk numbers rows from 1
    return pd.DataFrame(
        {
            ROW_ID: row_ids[at],
            REASON: quarantine[REASON].to_numpy(),
            RAW: [json.dumps(record, default=str) for record in quarantine[columns].to_dict("records")],
        }
    )


@holds_output
def score_with_spark(
    model_uri: str,
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    quarantine: str | os.PathLike[str] | None = None,
    master: str = "local[*]",
    task_threads: int = 1,
    chunk_rows: int = BATCH_ROWS,
    max_quarantined_share: float = DEFAULT_MAX_QUARANTINED_SHARE,
    unseen_inputs: UnseenInputs = "score",
    macro: str | os.PathLike[str] | None = None,
) -> SparkReport:
    """Score ``source`` (Parquet or CSV, a file or a folder) on Spark into the Parquet folder ``output``.

    A bundle trained on a bank's book reads ``source`` as the bank's own file, through its book
    contract and the macro series at ``macro`` (:mod:`crm_modes.data.bank_file`). It is mapped on the
    driver into a staging Parquet file the tasks read; rows it cannot map join the quarantine,
    quarantined rows carry the bank's row (``_row_id``, 0-based) and values, and the output names the
    identifiers as the bank does.

    Rejected rows go to the Parquet folder ``quarantine`` (default ``<output>.quarantine.parquet``)
    with their reasons and raw values. Each task's thread pools use ``task_threads`` threads (see
    :func:`spark_session`); it reads and scores ``chunk_rows`` rows at a time.

    Raises:
        TableReadError: the input cannot be read.
        TableSchemaError: required columns are missing, the table has no rows, or a column cannot
            be read at all.
        InputError: an output is not a ``.parquet`` path, the model is not the advisor bundle, or
            a bank's bundle's macro series is missing or does not fit.
        QuarantineLimitError: no row passed the gate, or more than ``max_quarantined_share`` were
            quarantined; the quarantine folder is written, the output is not.
        OutputBusyError: another live job is writing ``output``.
    """
    source, output = Path(source), Path(output)
    quarantine = Path(quarantine) if quarantine else output.with_name(f"{output.stem}.quarantine.parquet")
    for target in (output, quarantine):
        if table_format(target) != "parquet":
            raise InputError(f"{target}: the Spark engine writes Parquet; use a .parquet path")
    fetched = fetch(model_uri)  # checked against its manifest before Spark loads it
    version, verified = fetched.version, fetched.path
    if not is_advisor(verified):
        raise InputError(
            f"{model_uri} is a single model, not the advisor bundle: the Spark engine scores the advisor; "
            "score single models with --engine inprocess"
        )
    # A bank's file is mapped before anything is written: a wrong file or macro series is named first.
    bank = bank_input(verified, macro)
    book = read_bank_file(source, bank) if bank is not None else None
    staging = {target: target.with_name(f".{target.name}.writing") for target in (output, quarantine)}
    for folder in staging.values():  # before Spark starts: a folder that cannot be made is named now
        with writing_to(folder):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
    if book is not None:  # the tasks read the mapped rows, staged beside the output
        source = staging[output].with_name(f".{output.stem}.bank-rows.parquet")
    try:
        if book is not None:
            write_table(_staged(book.rows), source)
        spark = spark_session(master, task_threads=task_threads)
        session_ready = time.perf_counter()
        pieces, received = plan_pieces(
            source, tasks=2 * spark.sparkContext.defaultParallelism, chunk_rows=chunk_rows
        )
        gate = scoring_gate(verified, unseen_inputs)
        missing = [name for name in gate.required if name not in received]
        if missing:
            raise TableSchemaError([f"missing required columns {missing}"])
        if not pieces:
            raise TableSchemaError([f"{source}: the table has a header but no data rows"])
        columns = tuple(name for name in input_names() if name in received)
        # The model travels to the executors as files (on one machine too: one path for both)
        # and is checked there against the manifest digest before it loads.
        spark.sparkContext.addFile(str(verified), recursive=True)
        scorer = PieceScorer(
            pieces=tuple(pieces),
            chunk_rows=chunk_rows,
            model_name=verified.name,
            manifest_digest=sha256_of(verified / MANIFEST_FILE),
            version=version,
            columns=columns,
            repeated=spark.sparkContext.broadcast(repeated_rows(pieces, chunk_rows)),
            output=str(staging[output]),
            quarantine=str(staging[quarantine]),
            unseen_inputs=unseen_inputs,
            names=tuple(book.names.items()) if book is not None else (),
            declarations=gate.columns,
        )
        counts = (
            spark.sparkContext.parallelize(range(len(pieces)), len(pieces)).mapPartitions(scorer).collect()
        )
        errors = sorted({row["error"] for row in counts if row["error"]})
        if errors:
            raise InputError("\n".join(errors))
        checked = FileReport()
        for row in counts:
            checked.merge(FileReport.from_dict(row["gate"]))
        if book is not None:
            _as_the_bank_wrote(book, staging[quarantine])
            checked.merge(book.unmapped_report())
        if checked.rows_in == 0:
            raise TableSchemaError([f"{source}: the table has a header but no data rows"])
        _publish(staging[quarantine], quarantine)  # the quarantine is kept whatever follows
        refuse_unusable(checked, max_quarantined_share, str(source), quarantine=quarantine)
        _publish(staging[output], output)
    finally:
        for folder in staging.values():
            shutil.rmtree(folder, ignore_errors=True)
        if book is not None:
            source.unlink(missing_ok=True)
    return SparkReport(
        version,
        checked.rows_in,
        checked.rows_valid,
        checked.rows_quarantined,
        output,
        quarantine,
        time.perf_counter() - session_ready,
        len(pieces),
        checked,
    )


def _staged(rows: pd.DataFrame) -> pd.DataFrame:
    """A bank's mapped rows as the staging file holds them: text where a column mixes types (the
    gate reads it as it reads a CSV file), numbers and dates as they are."""
    return rows.astype({name: "string" for name in rows.columns if rows[name].dtype == object})


def _as_the_bank_wrote(book: BankFile, folder: Path) -> None:
    """Rewrite the quarantine parts in ``folder`` with the bank's rows and values, and add the rows
    the contract could not map (``_row_id``: the bank's 0-based row)."""
    columns = list(book.raw.columns)

    def write(rows: np.ndarray, reasons: np.ndarray, part: Path) -> None:
        values = [json.dumps(r, default=str) for r in book.raw.iloc[rows][columns].to_dict("records")]
        fixed = pd.DataFrame({ROW_ID: rows, REASON: reasons, RAW: values})
        with AtomicTableWriter(part) as writer:
            writer.write(pa.Table.from_pandas(fixed, schema=QUARANTINE_SCHEMA, preserve_index=False))

    for part in sorted(folder.glob("part-*.parquet")):
        rejected = pq.read_table(part).to_pandas()
        if len(rejected):
            write(book.source_rows[rejected[ROW_ID].to_numpy()] - 1, rejected[REASON].to_numpy(), part)
    if len(book.unmapped):
        rows = book.unmapped[SOURCE_ROW].to_numpy(dtype=np.int64) - 1
        write(rows, book.unmapped[REASON].to_numpy(), folder / "part-unmapped.parquet")


def _publish(folder: Path, target: Path) -> None:
    """Put a finished staging folder in place under its final name, marked complete."""
    with writing_to(target):
        (folder / "_SUCCESS").touch()
        replace_folder(folder, target)
