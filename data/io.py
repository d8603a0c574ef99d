"""Readers and writers for CSV and Parquet tables, chosen by file extension.

Readers stream a table in chunks of a given number of rows. Writers are atomic: they
write to a temporary file beside the target and rename it into place only when the write
succeeded, so a crash never leaves a half-written file under the final name. A temporary
file names the process that wrote it; one left by a process that died (a kill during the
final write) is removed by the next writer of the same target. A write that fails (no
permission, a full disk, a path through a file) raises :class:`TableWriteError` naming the
path.
"""

from __future__ import annotations

import functools
import inspect
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crm_modes.data.schema import SCHEMA, Kind
from crm_modes.shared.errors import InputError, RefusedError
from crm_modes.shared.processes import holder_alive, process_alive, this_process

SUFFIXES = (".csv", ".parquet")
DEFAULT_CHUNK_ROWS = 100_000


class TableReadError(InputError):
    """A file that cannot be read as a table at all: missing, empty, or not CSV/Parquet."""


class TableWriteError(InputError):
    """A table or its folder cannot be written: permission, disk space, a path through a file."""


@contextmanager
def writing_to(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn an operating-system failure while writing ``path`` into a :class:`TableWriteError`."""
    try:
        yield
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise TableWriteError(f"{os.fspath(path)}: cannot write: {reason}") from error


def check_writable(path: str | os.PathLike[str]) -> None:
    """Fail early, naming ``path``, if a table cannot be written there (its folder is made if missing)."""
    path = Path(path)
    with writing_to(path):
        if path.is_dir():
            raise IsADirectoryError(21, "it is a folder")
        _make_parent(path)
        with tempfile.TemporaryFile(dir=path.parent):
            pass


def _make_parent(path: Path) -> None:
    """Make the folder ``path`` goes in, naming a file that stands in the way."""
    for folder in path.parents:
        if folder.exists():
            if not folder.is_dir():
                raise NotADirectoryError(20, f"{folder} is a file, not a folder")
            break
    path.parent.mkdir(parents=True, exist_ok=True)


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove temporary files of ``path`` whose writing process is gone; return what was removed."""
    prefix, removed = f".{path.name}.", []
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        writer = name[len(prefix) : -len(".tmp")].split(".")[0]
        if writer.isdigit() and not process_alive(int(writer)):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


Result = TypeVar("Result")


class OutputBusyError(RefusedError):
    """Another live job is writing the same output; this one wrote nothing."""

    what = "not written"


@contextmanager
def output_lock(output: str | os.PathLike[str]) -> Iterator[None]:
    """Hold ``output`` for this job: a second job writing the same path is refused up front.

    The lock is a file beside the output (``.NAME.lock``, created exclusively) naming the host and
    process; a lock whose process is gone (on this host) is taken over. Raises
    :class:`OutputBusyError` while another live job holds it.
    """
    output = Path(output)
    lock = output.with_name(f".{output.name}.lock")
    me = this_process()
    with writing_to(output):
        _make_parent(output)
        for _ in range(3):
            try:
                descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _lock_holder(lock)
                if holder is None or holder_alive(holder) is not False:  # another host's: it holds
                    shown = holder or "a job that is starting"
                    raise OutputBusyError(
                        f"{output} is being written by another job ({shown}); nothing was written by this "
                        f"one. If no such job runs, remove {lock}"
                    ) from None
                lock.unlink(missing_ok=True)  # its writer is gone: take it over
                continue
            with os.fdopen(descriptor, "w") as handle:
                handle.write(me)
            break
        else:
            raise OutputBusyError(f"{output}: other jobs keep taking its lock ({lock}); try again")
    try:
        yield
    finally:
        if _lock_holder(lock) == me:
            lock.unlink(missing_ok=True)


def holds_output(function: Callable[..., Result]) -> Callable[..., Result]:
    """Run ``function`` holding its ``output`` argument (:func:`output_lock`) from start to end."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def holding(*args: Any, **kwargs: Any) -> Result:
        with output_lock(signature.bind(*args, **kwargs).arguments["output"]):
            return function(*args, **kwargs)

    return holding


def _lock_holder(lock: Path) -> str | None:
    try:
        return lock.read_text().strip() or None
    except FileNotFoundError:
        return None


def table_format(path: str | os.PathLike[str]) -> str:
    """``"csv"`` or ``"parquet"`` from the file extension; raise naming the path otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{os.fspath(path)!r}: unsupported extension {suffix!r}; use one of {SUFFIXES}")
    return suffix[1:]


def iter_chunks(path: str | os.PathLike[str], chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Yield the table at ``path`` in chunks of at most ``chunk_rows`` rows.

    CSV values come back as strings (nulls as missing) so that the validation gate, not
    the parser, decides what a value means. Parquet values keep their stored types.

    Raises:
        TableReadError: the file is missing, empty, has no header, or is not readable
            in its format.
    """
    if chunk_rows < 1:
        raise InputError(f"chunk_rows must be at least 1, got {chunk_rows}")
    fmt = table_format(path)
    path = Path(path)
    if not path.exists():
        raise TableReadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise TableReadError(f"{path}: the file is empty (no header, no rows)")
    if fmt == "csv":
        yield from _iter_csv(path, chunk_rows)
    else:
        yield from _iter_parquet(path, chunk_rows)


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read the whole table at ``path`` (see :func:`iter_chunks` for types and errors)."""
    chunks = list(iter_chunks(path, chunk_rows=1_000_000))
    return pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]


def _iter_csv(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    try:
        reader = pd.read_csv(path, dtype=str, chunksize=chunk_rows, encoding="utf-8")
        header_only = True
        with reader:
            for chunk in reader:
                header_only = False
                yield chunk
        if header_only:
            yield pd.read_csv(path, dtype=str, nrows=0)
    except UnicodeDecodeError as error:
        raise TableReadError(
            f"{path}: not a UTF-8 text CSV file ({error.reason} at byte {error.start})"
        ) from None
    except pd.errors.EmptyDataError:
        raise TableReadError(f"{path}: the file has no header line") from None
    except pd.errors.ParserError as error:
        raise TableReadError(f"{path}: cannot be parsed as CSV: {error}") from None


def _iter_parquet(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise TableReadError(f"{path}: not a readable Parquet file ({error})") from None
    with parquet:
        if parquet.metadata.num_rows == 0:
            yield parquet.schema_arrow.empty_table().to_pandas()
            return
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            yield frame_of(batch)


def iter_row_group(
    path: str | os.PathLike[str],
    row_group: int,
    *,
    start: int = 0,
    rows: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    columns: list[str] | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield rows ``start`` .. ``start + rows`` of one row group of a Parquet file, in chunks of at
    most ``chunk_rows`` rows (read as :func:`iter_chunks` reads them): one piece of a table
    split for several workers. Only ``columns`` are read, when given."""
    end = None if rows is None else start + rows
    position = 0
    with pq.ParquetFile(path) as parquet:
        for batch in parquet.iter_batches(batch_size=chunk_rows, row_groups=[row_group], columns=columns):
            first, position = position, position + batch.num_rows
            if position <= start:
                continue  # decoded but not converted: the rows before this piece
            if end is not None and first >= end:
                break
            low = max(start - first, 0)
            high = batch.num_rows if end is None else min(end - first, batch.num_rows)
            yield frame_of(batch.slice(low, high - low))


def frame_of(batch: pa.RecordBatch) -> pd.DataFrame:
    """An Arrow batch as a DataFrame, with the text columns the schema declares categorical as
    pandas categoricals (a few labels for many rows, as pandas itself stores them in Parquet):
    the gate then reads each label once instead of every row. Both engines read through here."""
    encoded = False
    columns = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if name in _CATEGORICAL and _is_text(column.type):
            column, encoded = pc.dictionary_encode(column), True
        columns.append(column)
    if encoded:  # the file's own metadata (pandas' index, names) still applies
        fields = [field.with_type(column.type) for field, column in zip(batch.schema, columns, strict=True)]
        batch = pa.RecordBatch.from_arrays(columns, schema=pa.schema(fields, metadata=batch.schema.metadata))
    return batch.to_pandas()


_CATEGORICAL = frozenset(spec.name for spec in SCHEMA if spec.kind is Kind.CATEGORY)


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


class AtomicTableWriter:
    """Write a table chunk by chunk; it appears under its final name only on success.

    Use as a context manager. On an exception inside the block the temporary file is
    removed and nothing is left under ``path``. All chunks must have the same columns.

    Example:
        >>> with AtomicTableWriter("scores.parquet") as writer:  # doctest: +SKIP
        ...     for chunk in chunks:
        ...         writer.write(chunk)
    """

    def __init__(self, path: str | os.PathLike[str], *, compression: str = "snappy") -> None:
        self.path = Path(path)
        self.compression = compression
        self.format = table_format(self.path)
        self.rows_written = 0
        self._parquet: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._temporary: Path | None = None
        self._columns: list[str] | None = None

    def __enter__(self) -> AtomicTableWriter:
        check_writable(self.path)
        with writing_to(self.path):
            remove_stale_temporaries(self.path)
            handle, name = tempfile.mkstemp(
                prefix=f".{self.path.name}.{os.getpid()}.", suffix=".tmp", dir=self.path.parent
            )
            os.close(handle)
        self._temporary = Path(name)
        return self

    def write(self, chunk: pd.DataFrame | pa.Table) -> None:
        """Append ``chunk`` (a DataFrame, or an Arrow table read from a part) to the temporary file."""
        if self._temporary is None:
            raise RuntimeError("AtomicTableWriter.write called outside its `with` block")
        columns = chunk.column_names if isinstance(chunk, pa.Table) else list(chunk.columns)
        if self._columns is None:
            self._columns = columns
        elif columns != self._columns:
            raise ValueError(f"{self.path}: chunk columns {columns} differ from {self._columns}")
        with writing_to(self.path):
            if self.format == "csv":
                frame = chunk.to_pandas() if isinstance(chunk, pa.Table) else chunk
                frame.to_csv(self._temporary, mode="a", header=self.rows_written == 0, index=False)
            else:
                table = (
                    chunk
                    if isinstance(chunk, pa.Table)
                    else pa.Table.from_pandas(chunk, preserve_index=False)
                )
                if self._parquet is None:
                    self._schema = table.schema
                    # Microsecond timestamps: what Spark reads (it refuses nanoseconds, pandas 2's unit);
                    # a value finer than a microsecond is an error, never silently cut.
                    self._parquet = pq.ParquetWriter(
                        self._temporary, self._schema, compression=self.compression, coerce_timestamps="us"
                    )
                try:
                    self._parquet.write_table(table.cast(self._schema))
                except pa.ArrowInvalid as error:  # e.g. a timestamp finer than a microsecond
                    raise TableWriteError(f"{self.path}: cannot write: {error}") from None
        self.rows_written += len(chunk)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with writing_to(self.path):
            self._finish(committing=kind is None)

    def _finish(self, *, committing: bool) -> None:
        assert self._temporary is not None
        try:
            if self._parquet is not None:
                self._parquet.close()
            if committing:
                if self._columns is None and self.format == "parquet":
                    pq.write_table(pa.table({}), self._temporary)
                os.chmod(self._temporary, 0o666 & ~_umask())  # mkstemp makes it private
                synced_replace(self._temporary, self.path)
        finally:
            self._temporary.unlink(missing_ok=True)


def synced_replace(temporary: Path, target: Path) -> None:
    """Put the finished file ``temporary`` under its final name ``target``: its contents are on
    disk before the rename, so a crash leaves either the old file or the whole new one."""
    with open(temporary, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, target)


def replace_folder(written: Path, target: Path) -> None:
    """Move a finished output folder (Spark's Parquet parts) into place, replacing any previous one."""
    if target.exists():
        trash = target.with_name(f".{target.name}.old")
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(target, trash)
        os.replace(written, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(written, target)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str], *, compression: str = "snappy") -> Path:
    """Write ``frame`` to ``path`` atomically (CSV or Parquet by extension); return the path.

    ``compression``: Parquet's codec; ``"none"`` for a file read back soon (a part of a job:
    it reads about 2.5 times faster than snappy and is written as fast).
    """
    with AtomicTableWriter(path, compression=compression) as writer:
        writer.write(frame)
    return writer.path


def latest_snapshot(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    date_column: str = "snapshot_date",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> tuple[str, int]:
    """Copy the rows of the latest ``date_column`` value from ``source`` to ``target``.

    Two streaming passes (find the latest date, then copy its rows); memory stays bounded.
    Returns the date (as text) and the number of rows copied.
    """
    latest: str | None = None
    for chunk in iter_chunks(source, chunk_rows):
        if date_column not in chunk:
            raise TableReadError(f"{source}: no column {date_column!r}")
        dates = pd.to_datetime(chunk[date_column], errors="coerce").dropna()
        if len(dates):
            candidate = dates.max().strftime("%Y-%m-%d")
            latest = candidate if latest is None else max(latest, candidate)
    if latest is None:
        raise TableReadError(f"{source}: no readable {date_column!r} value")
    with AtomicTableWriter(target) as writer:
        for chunk in iter_chunks(source, chunk_rows):
            dates = pd.to_datetime(chunk[date_column], errors="coerce").dt.strftime("%Y-%m-%d")
            writer.write(chunk[(dates == latest).to_numpy()])
    return latest, writer.rows_written


def atomic_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a report, a summary); return the path.

    Raises:
        TableWriteError: naming the path, when it cannot be written.
    """
    path = Path(path)
    check_writable(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with writing_to(path):
        try:
            temporary.write_text(text)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    return path
