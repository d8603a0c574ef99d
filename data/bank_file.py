"""A bank's own file read through a book contract: mapped onto the schema, every row accounted for.

A bundle trained on a bank's book (``data.book`` in the training configuration) carries the
bank's book contract; whoever scores with it hands over the bank's file as the bank exports it
(:mod:`crm_modes.models.bundle_book` finds the contract). :func:`read_bank_file` maps the names,
codes, dates and units (:func:`~crm_modes.data.bank_book.prepare_panel`), derives the context the
bank does not supply and joins its macro series; the rows then go through the scoring gate as any
book does. Every row of the bank's file is accounted for: a row the contract cannot map is
quarantined with its source row and the reason, a row the gate refuses is quarantined as the bank
wrote it, with the bank's row number; outputs name the identifiers as the bank does (``CUST_ID``,
``FACILITY_NO``, ``AS_OF``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crm_modes.data.bank_book import prepare_panel
from crm_modes.data.book_contract import BookContract
from crm_modes.data.gate import REASON, SOURCE_ROW, FileReport
from crm_modes.data.io import read_table


@dataclass(frozen=True)
class BankInput:
    """How a bank's file is read: the bundle's contract, and the macro series it joins (if any)."""

    contract: BookContract
    macro: pd.DataFrame | None = None

    def identity(self) -> str:
        """What a resumed job must find unchanged: the contract and the macro series."""
        digest = hashlib.sha256(self.contract.model_dump_json().encode())
        if self.macro is not None:
            digest.update(pd.util.hash_pandas_object(self.macro, index=False).to_numpy().tobytes())
        return digest.hexdigest()


@dataclass
class BankFile:
    """A bank's file mapped onto the schema (``rows``), and what became of every one of its rows."""

    rows: pd.DataFrame
    #: ``source_rows[i]``: the bank's 1-based row number of ``rows``' row ``i``
    source_rows: np.ndarray
    #: the bank's file as read, to quarantine a row as the bank wrote it
    raw: pd.DataFrame
    #: rows the contract could not map: as read, with ``source_row`` and the reason
    unmapped: pd.DataFrame
    #: schema identifier -> the bank's column
    names: dict[str, str] = field(default_factory=dict)

    @property
    def rows_in(self) -> int:
        return len(self.raw)

    def chunks(self, chunk_rows: int) -> Iterator[pd.DataFrame]:
        """The mapped rows, ``chunk_rows`` at a time (nothing when every row was unmapped)."""
        for start in range(0, len(self.rows), chunk_rows):
            yield self.rows.iloc[start : start + chunk_rows].reset_index(drop=True)

    def as_received(self, quarantine: pd.DataFrame) -> pd.DataFrame:
        """The gate's quarantine (numbered over the mapped rows) as the bank's rows, with its numbers."""
        mapped_rows = quarantine[SOURCE_ROW].to_numpy(dtype=np.int64)
        sources = self.source_rows[mapped_rows - 1]
        out = self.raw.iloc[sources - 1].astype("string").reset_index(drop=True)
        out.insert(0, SOURCE_ROW, sources)
        out[REASON] = quarantine[REASON].to_numpy()
        return out

    def unmapped_report(self) -> FileReport:
        """The unmapped rows as the gate reports problems: per bank column, with an example."""
        report = FileReport(rows_in=len(self.unmapped), rows_quarantined=len(self.unmapped))
        for reasons in self.unmapped[REASON]:
            for reason in str(reasons).split("; "):
                column, _, detail = reason.partition(": ")
                report.reasons[column] = report.reasons.get(column, 0) + 1
                report.examples.setdefault(column, detail[:60])
        return report

    def named(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with its identifiers named as the bank names them."""
        return frame.rename(columns=self.names)


def read_bank_file(source: str | os.PathLike[str], bank: BankInput) -> BankFile:
    """The bank's file at ``source`` mapped by ``bank``'s contract (see the module).

    Raises:
        TableReadError: the file cannot be read.
        InputError: the file lacks a column the contract names, or the macro series has a gap.
    """
    raw = read_table(source)
    mapped = prepare_panel(raw, bank.contract, bank.macro)
    rows = mapped.rows.reset_index(drop=True)
    source_rows = rows.pop(SOURCE_ROW).to_numpy(dtype=np.int64)  # map_panel numbers every row
    return BankFile(rows, source_rows, raw, mapped.quarantine, bank.contract.identifier_names())
