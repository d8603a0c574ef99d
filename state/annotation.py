"""A scores file annotated with what recording did: each row's ``alert_status`` and ``notify``."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, select

from crm_modes.data.io import AtomicTableWriter, replace_folder
from crm_modes.state import lifecycle
from crm_modes.state.record import RecordReport
from crm_modes.state.score_files import Names, iter_scores
from crm_modes.state.tables import alert_events


def row_statuses(engine: Engine, dates: list[dt.date]) -> pd.DataFrame:
    """Per facility and snapshot: ``alert_status`` (its most telling alert event) and ``notify``."""
    with engine.connect() as connection:
        events = pd.DataFrame(
            connection.execute(
                select(
                    alert_events.c.facility_id,
                    alert_events.c.snapshot_date,
                    alert_events.c.event,
                    alert_events.c.notified,
                ).where(alert_events.c.snapshot_date.in_(dates))
            ).all(),
            columns=["facility_id", "snapshot_date", "event", "notified"],
        )
    if events.empty:
        return pd.DataFrame(columns=["facility_id", "snapshot_date", "alert_status", "notify"])
    grouped = events.groupby(["facility_id", "snapshot_date"], sort=False)
    return pd.DataFrame(
        {
            "alert_status": grouped["event"].agg(lambda e: lifecycle.summary(list(e))),
            "notify": grouped["notified"].any().astype(bool),
        }
    ).reset_index()


def annotate(
    engine: Engine,
    source: Path,
    target: Path,
    report: RecordReport,
    chunk_rows: int = 50_000,
    names: Names = None,
) -> Path:
    """Copy ``source`` to ``target`` (atomically, may be the same) with two columns added.

    ``names``: the bank's names of the identifiers, where the scores carry them (kept in the copy).

    A Parquet folder (the Spark engine's output) becomes a folder with one part file.
    """
    dates = [*report.recorded, *report.skipped]
    statuses = row_statuses(engine, dates).set_index(["facility_id", "snapshot_date"])
    folder = target.is_dir() or (source.is_dir() and target == source)
    written = target.with_name(f".{target.name}.annotating") if folder else target
    if folder:
        shutil.rmtree(written, ignore_errors=True)
        written.mkdir(parents=True)
    with AtomicTableWriter(written / "part-00000.parquet" if folder else written) as writer:
        facility, snapshot = (dict(names or {}).get(key, key) for key in ("facility_id", "snapshot_date"))
        for chunk in iter_scores(source, chunk_rows):  # as written: the copy keeps the file's names
            keys = pd.MultiIndex.from_arrays(
                [
                    chunk[facility].astype(str),
                    pd.to_datetime(chunk[snapshot], errors="coerce").dt.date,
                ]
            )
            found = statuses.reindex(keys)
            writer.write(
                chunk.assign(
                    alert_status=found["alert_status"].fillna("none").to_numpy(),
                    notify=found["notify"].to_numpy(dtype=object, na_value=False).astype(bool),
                )
            )
    if folder:
        replace_folder(written, target)
    return target
