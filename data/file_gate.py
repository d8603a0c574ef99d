"""Pass a whole file through the validation gate, streaming, with reconciled counts."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from contextlib import ExitStack, nullcontext

import pandas as pd

from crm_modes.data.gate import (
    DEFAULT_MAX_QUARANTINED_SHARE,
    FileReport,
    Gate,
    TableSchemaError,
    refuse_unusable,
)
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
    book: bool | None = None,
    max_quarantined_share: float = DEFAULT_MAX_QUARANTINED_SHARE,
    on_chunk: Callable[[int], None] | None = None,
) -> tuple[FileReport, BookSummary | None]:
    """Validate the table at ``path`` chunk by chunk.

    Args:
        path: CSV or Parquet file.
        quarantine: where to write rejected rows with their reasons (atomically).
        output: where to write the valid, typed rows (atomically).
        chunk_rows: rows per chunk; memory stays bounded by it.
        required: columns that must be present (default: the schema's required roles).
        gate: the gate to use instead (e.g. a table profile's).
        book: whether the table is the book, to be summarized (default: when no ``gate`` is given).
        max_quarantined_share: more quarantined rows than this share (or none valid) stops the job:
            the quarantine is written, the output is not.
        on_chunk: called with the number of rows of each chunk, e.g. to advance a progress bar.

    Returns:
        The reconciled report and a summary of the valid rows (None when not the book).

    Raises:
        TableReadError: the file cannot be read as a table.
        TableSchemaError: a table-level problem, or a table with a header but no rows.
        QuarantineLimitError: no row passed, or more than ``max_quarantined_share`` were quarantined.
    """
    book = gate is None if book is None else book
    if gate is None:
        gate = Gate() if required is None else Gate(required=tuple(required))
    report, summary = FileReport(), BookSummary() if book else None
    with ExitStack() as outputs:
        output_writer = outputs.enter_context(AtomicTableWriter(output)) if output else None
        with AtomicTableWriter(quarantine) if quarantine else nullcontext() as quarantine_writer:
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
            if quarantine_writer is not None and quarantine_writer.rows_written == 0:
                quarantine_writer.write(empty_quarantine)
        # The quarantine is written whatever follows; the output only if the input was usable.
        refuse_unusable(report, max_quarantined_share, os.fspath(path), quarantine=quarantine)
    return report, summary
