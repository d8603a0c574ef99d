"""Pass a whole file through the validation gate, streaming, with reconciled counts."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from contextlib import ExitStack

import pandas as pd

from crm_modes.data.gate import FileReport, Gate, TableSchemaError
from crm_modes.data.io import DEFAULT_CHUNK_ROWS, AtomicTableWriter, iter_chunks
from crm_modes.data.summary import BookSummary


def check_file(
    path: str | os.PathLike[str],
    *,
    quarantine: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    required: Iterable[str] | None = None,
    gate: Gate | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> tuple[FileReport, BookSummary | None]:
    """Validate the table at ``path`` chunk by chunk.

    Args:
        path: CSV or Parquet file.
        quarantine: where to write rejected rows with their reasons (atomically).
        output: where to write the valid, typed rows (atomically).
        chunk_rows: rows per chunk; memory stays bounded by it.
        required: columns that must be present (default: the schema's required roles).
        gate: the gate to use instead (e.g. a table profile's); then no book summary.
        on_chunk: called with the number of rows of each chunk, e.g. to advance a progress bar.

    Returns:
        The reconciled report and a summary of the valid rows (None with ``gate``: not the book).

    Raises:
        TableReadError: the file cannot be read as a table.
        TableSchemaError: a table-level problem, or a table with a header but no rows.
    """
    book = gate is None
    if gate is None:
        gate = Gate() if required is None else Gate(required=tuple(required))
    report, summary = FileReport(), BookSummary() if book else None
    with ExitStack() as stack:
        quarantine_writer = stack.enter_context(AtomicTableWriter(quarantine)) if quarantine else None
        output_writer = stack.enter_context(AtomicTableWriter(output)) if output else None
        empty_quarantine: pd.DataFrame | None = None
        for chunk in iter_chunks(path, chunk_rows):
            result = gate.check(chunk)
            report.add(result)
            if summary is not None:
                summary.add(result.valid)
            rejected = result.quarantine.astype({name: "string" for name in chunk.columns})
            if quarantine_writer is not None and len(rejected):
                quarantine_writer.write(rejected)
            empty_quarantine = rejected.iloc[:0]
            if output_writer is not None and len(result.valid):
                output_writer.write(result.valid)
            if on_chunk is not None:
                on_chunk(len(chunk))
        if report.rows_in == 0:
            raise TableSchemaError([f"{os.fspath(path)}: the table has a header but no data rows"])
        if (
            quarantine_writer is not None
            and quarantine_writer.rows_written == 0
            and empty_quarantine is not None
        ):
            quarantine_writer.write(empty_quarantine)
    return report, summary
