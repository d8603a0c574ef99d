"""Reading scores files to record: typed, with every row that cannot be recorded counted and why.

A scores file is ``crm-modes score`` output: a CSV or Parquet file, or the Spark engine's folder
of Parquet parts. :func:`survey` reads it once to count the recordable rows per snapshot and to
find the rows that cannot be recorded (no facility or date, no PD, a repeated facility and
snapshot); :func:`snapshot_rows` then reads a snapshot's recordable rows, chunk by chunk.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pads

from crm_modes.data.io import iter_chunks
from crm_modes.shared.text import unstorable_mask

#: Columns a scores file must have to be recorded.
REQUIRED = (
    "facility_id",
    "snapshot_date",
    "model_version",
    "alert_codes",
    "alert_level",
    "default_probability",
)
_OPTIONAL_TEXT = ("client_id", "committee_mode", "recommended_mode", "assigned_mode", "risk_grade")
_OPTIONAL_FLOAT = (
    "value_basic",
    "value_reactive",
    "value_responsible",
    "churn_probability",
    "assigned_propensity",
    "gain_error_basic",
    "gain_error_reactive",
    "gain_error_responsible",
)
#: Schema identifier -> the bank's column, where a scores file carries a bank's names.
Names = Mapping[str, str] | None
#: A file with several snapshots and at most this many rows is read once and kept in memory.
IN_MEMORY_ROWS = 3_000_000


def input_hash(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files in name order (the Spark engine's output)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(file.name.encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def iter_scores(path: Path, chunk_rows: int, names: Names = None) -> Iterator[pd.DataFrame]:
    """The scores at ``path`` in chunks: a CSV or Parquet file, or a folder of Parquet parts.

    ``names``: schema identifier -> the bank's column, where the scores carry a bank's names (a
    bundle trained on a bank's book writes them); the chunks come with the schema's.
    """
    renamed = {bank: name for name, bank in (names or {}).items()}
    if path.is_dir():
        dataset = pads.dataset(path, format="parquet")
        for batch in dataset.to_batches(batch_size=chunk_rows):
            yield batch.to_pandas().rename(columns=renamed)
    else:
        for chunk in iter_chunks(path, chunk_rows):
            yield chunk.rename(columns=renamed)


def typed(chunk: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The chunk with recorded types, and a reason (or None) per row it cannot be recorded for."""
    out = pd.DataFrame(index=chunk.index)
    reasons = pd.Series(None, index=chunk.index, dtype=object)
    dates = pd.to_datetime(chunk["snapshot_date"], errors="coerce")
    reasons[dates.isna()] = "snapshot_date missing or not a date"
    out["snapshot_date"] = dates.dt.date
    facility = chunk["facility_id"].astype("string")
    reasons[facility.isna() | (facility.str.len() == 0)] = "facility_id missing"
    out["facility_id"] = facility
    for name in ("model_version", "alert_level", *_OPTIONAL_TEXT):
        out[name] = chunk[name].astype("string") if name in chunk else pd.NA
    for name in ("facility_id", "model_version", "alert_level", "alert_codes", *_OPTIONAL_TEXT):
        if name in chunk:  # refused here, so the store is never asked to hold what it cannot
            reasons[unstorable_mask(chunk[name]) & reasons.isna().to_numpy()] = (
                f"{name} holds a NUL or a lone surrogate: no store can"
            )
    out["alert_codes"] = chunk["alert_codes"].astype("string").fillna("")
    for name in ("default_probability", *_OPTIONAL_FLOAT):
        out[name] = pd.to_numeric(chunk[name], errors="coerce") if name in chunk else float("nan")
    reasons[out["default_probability"].isna() & reasons.isna()] = "default_probability missing"
    return out, reasons


@dataclass
class Survey:
    """What one pass over a scores file found."""

    rows_in: int = 0
    #: Recordable rows per snapshot.
    rows_by_date: dict[dt.date, int] = field(default_factory=dict)
    #: Positions (in file order) of the rows that cannot be recorded.
    bad: set[int] = field(default_factory=set)
    #: Why, counted.
    reasons: dict[str, int] = field(default_factory=dict)
    model_versions: set[str] = field(default_factory=set)


def survey(source: Path, chunk_rows: int, names: Names = None) -> Survey:
    """One pass: recordable rows per snapshot, and the positions of rows that cannot be recorded."""
    found = Survey()
    rows_by_date: dict[dt.date, int] = defaultdict(int)
    seen: set[int] = set()
    for chunk in iter_scores(source, chunk_rows, names):
        rows, reasons = typed(chunk)
        keys = pd.util.hash_pandas_object(rows[["facility_id", "snapshot_date"]].astype(str), index=False)
        position = found.rows_in
        for offset, (key, given) in enumerate(zip(keys.to_numpy(), reasons, strict=True)):
            reason = None if pd.isna(given) else given
            if reason is None and key in seen:
                reason = "duplicate facility_id and snapshot_date in the file"
            if reason is not None:
                found.bad.add(position + offset)
                found.reasons[reason] = found.reasons.get(reason, 0) + 1
            else:
                seen.add(key)
        good = rows[[position + i not in found.bad for i in range(len(rows))]]
        for date, count in good["snapshot_date"].value_counts().items():
            rows_by_date[date] += int(count)
        found.model_versions.update(rows["model_version"].dropna().astype(str).unique())
        found.rows_in += len(chunk)
    found.rows_by_date = dict(rows_by_date)
    return found


def load_all(source: Path, bad: set[int], chunk_rows: int, names: Names = None) -> pd.DataFrame:
    """Every recordable row of the file, typed, in file order."""
    chunks = iter_scores(source, chunk_rows, names)
    rows = pd.concat([typed(chunk)[0] for chunk in chunks], ignore_index=True)
    return rows.drop(index=list(bad)) if bad else rows


def snapshot_rows(
    source: Path,
    snapshot: dt.date,
    bad: set[int],
    chunk_rows: int,
    kept: pd.DataFrame | None,
    names: Names = None,
) -> Iterator[pd.DataFrame]:
    """The recordable rows of ``snapshot``, chunk by chunk (from ``kept`` when the file is in memory)."""
    if kept is not None:
        rows = kept[kept["snapshot_date"] == snapshot]
        for start in range(0, len(rows), chunk_rows):
            yield rows.iloc[start : start + chunk_rows]
        return
    position = 0
    for chunk in iter_scores(source, chunk_rows, names):
        rows, _ = typed(chunk)
        keep = (rows["snapshot_date"] == snapshot).to_numpy(copy=True)
        if bad:
            keep &= np.array([position + i not in bad for i in range(len(rows))], dtype=bool)
        position += len(chunk)
        if keep.any():
            yield rows[keep]
