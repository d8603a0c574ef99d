"""Recording scores: decisions appended, alerts moved through their lifecycle, every row accounted for.

A scores file (:mod:`crm_modes.state.score_files`) is recorded snapshot by snapshot, in date
order, in transactions of one chunk: the chunk's decisions (:mod:`crm_modes.state.writing`) and
its alert changes (:mod:`crm_modes.state.alert_changes`) commit together, so a recorder killed
halfway leaves whole chunks, and the rerun skips the facilities already recorded and goes on.
Which recorder records which snapshot, and when, is decided by claims (:mod:`crm_modes.state.claims`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, func, select, update

from crm_modes.data.gate import DEFAULT_MAX_QUARANTINED_SHARE, FileReport, refuse_unusable
from crm_modes.models.alerts import AlertPolicy, Topic
from crm_modes.shared.errors import InputError
from crm_modes.state import claims, lifecycle
from crm_modes.state.alert_changes import apply_lifecycle
from crm_modes.state.claims import OutOfOrderError, SnapshotBusyError
from crm_modes.state.score_files import (
    IN_MEMORY_ROWS,
    REQUIRED,
    Names,
    input_hash,
    iter_scores,
    load_all,
    snapshot_rows,
    survey,
)
from crm_modes.state.tables import alerts, decisions, runs, snapshots
from crm_modes.state.writing import insert_decisions

log = logging.getLogger(__name__)
#: How long a run waits after registering, so that recorders started together queue in snapshot order.
QUEUE_SECONDS = 5.0

__all__ = ["OutOfOrderError", "RecordReport", "SnapshotBusyError", "record_scores"]


@dataclass
class RecordReport:
    run_id: str
    rows_in: int = 0
    rows_recorded: int = 0
    rows_already: int = 0
    rows_quarantined: int = 0
    recorded: list[dt.date] = field(default_factory=list)
    skipped: dict[dt.date, str] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    notifications: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    model_versions: set[str] = field(default_factory=set)

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.rows_recorded + self.rows_already + self.rows_quarantined


@dataclass
class _Job:
    """What every snapshot of one recording shares."""

    engine: Engine
    source: Path
    bad: set[int]
    kept: pd.DataFrame | None
    topics: dict[str, Topic]
    force: bool
    chunk_rows: int
    wait_seconds: float
    on_chunk: Callable[[int], None] | None
    report: RecordReport
    names: Names = None


def record_scores(
    engine: Engine,
    source: str | os.PathLike[str],
    policy: AlertPolicy,
    *,
    force: bool = False,
    chunk_rows: int = 50_000,
    wait_seconds: float = 600.0,
    queue_seconds: float = QUEUE_SECONDS,
    max_quarantined_share: float = DEFAULT_MAX_QUARANTINED_SHARE,
    on_chunk: Callable[[int], None] | None = None,
    names: Names = None,
) -> RecordReport:
    """Record the scores at ``source``; return what was recorded, skipped and quarantined.

    ``names``: the bank's names of the identifiers, where the scores carry them (a bundle trained
    on a bank's book writes them); the store keeps the schema's.

    The run registers its snapshots, then waits ``queue_seconds`` so that recorders started at
    the same time all register before any claims, and records in snapshot order with them
    (:mod:`crm_modes.state.claims`).

    Raises:
        InputError: columns are missing, or the policy has no notification topics.
        QuarantineLimitError: no row can be recorded, or more than ``max_quarantined_share`` of the
            rows cannot; nothing is recorded.
        OutOfOrderError: a snapshot is older than one already recorded (and not ``force``).
        SnapshotBusyError: a snapshot is being recorded by another live recorder.
    """
    source = Path(source)
    if policy.notifications is None:
        raise InputError("the alert policy has no `notifications` section: the lifecycle needs it")
    header = next(iter_scores(source, 1, names))
    missing = [name for name in REQUIRED if name not in header.columns]
    if missing:
        raise InputError(f"{source}: missing columns {missing}; is it a `crm-modes score` output?")
    found = survey(source, chunk_rows, names)
    refuse_unusable(
        FileReport(
            rows_in=found.rows_in,
            rows_valid=found.rows_in - len(found.bad),
            rows_quarantined=len(found.bad),
            reasons=found.reasons,
        ),
        max_quarantined_share,
        str(source),
    )
    report = RecordReport(
        run_id=str(uuid.uuid4()),
        rows_in=found.rows_in,
        rows_quarantined=len(found.bad),
        quarantine_reasons=found.reasons,
        model_versions=found.model_versions,
    )
    dates = sorted(found.rows_by_date)
    _check_order(engine, dates, force)
    _open_run(engine, source, dates, report)
    try:
        if queue_seconds > 0:
            time.sleep(queue_seconds)
        in_memory = len(dates) > 1 and report.rows_in <= IN_MEMORY_ROWS
        job = _Job(
            engine,
            source,
            found.bad,
            load_all(source, found.bad, chunk_rows, names) if in_memory else None,
            policy.notifications,
            force,
            chunk_rows,
            wait_seconds,
            on_chunk,
            report,
            names,
        )
        for snapshot in dates:
            _record_snapshot(job, snapshot, found.rows_by_date[snapshot])
    except (OutOfOrderError, SnapshotBusyError):
        _finish_run(engine, report, "refused")
        raise
    except BaseException:
        try:
            _finish_run(engine, report, "failed")
        except Exception:  # the store itself failed: the next run marks this one dead
            log.warning("run %s could not be marked failed in the state store", report.run_id)
        raise
    _finish_run(engine, report, "done")
    return report


def _check_order(engine: Engine, dates: list[dt.date], force: bool) -> None:
    """Refuse, before anything is written, snapshots older than one already recorded (unless forced)."""
    with engine.begin() as connection:
        done = dict(connection.execute(select(snapshots.c.snapshot_date, snapshots.c.status)).all())
    latest = max((d for d, status in done.items() if status == "recorded"), default=None)
    late = [d for d in dates if done.get(d) != "recorded" and latest is not None and d < latest]
    if late and not force:
        raise OutOfOrderError(
            f"snapshots {[str(d) for d in late]} are older than {latest}, already recorded: the alert "
            "lifecycle needs snapshots in order; record them with --force to accept that"
        )


def _open_run(engine: Engine, source: Path, dates: list[dt.date], report: RecordReport) -> None:
    """Register the run and the snapshots it brings (recorders queue on them); bury dead runs."""
    with claims.exclusive(engine) as connection:
        claims.bury_dead_runs(connection)
        connection.execute(
            runs.insert().values(
                run_id=report.run_id,
                input_path=str(source.resolve()),
                input_hash=input_hash(source),
                model_versions=",".join(sorted(report.model_versions)),
                snapshots=",".join(str(d) for d in dates),
                rows_in=report.rows_in,
                rows_recorded=0,
                rows_quarantined=report.rows_quarantined,
                started_at=claims.now(),
                status="running",
                holder=claims.holder(),
                heartbeat_at=claims.now(),
            )
        )


def _finish_run(engine: Engine, report: RecordReport, status: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(runs)
            .where(runs.c.run_id == report.run_id)
            .values(
                rows_in=report.rows_in,
                rows_recorded=report.rows_recorded,
                rows_quarantined=report.rows_quarantined,
                finished_at=claims.now(),
                status=status,
            )
        )


def _record_snapshot(job: _Job, snapshot: dt.date, rows_in_file: int) -> None:
    engine, report = job.engine, job.report
    claimed = claims.claim(engine, snapshot, report.run_id, force=job.force, wait_seconds=job.wait_seconds)
    if claimed == "recorded":
        report.rows_already += rows_in_file
        report.skipped[snapshot] = "already recorded: nothing changed"
        return
    with engine.connect() as connection:
        recorded = (
            set(
                connection.execute(
                    select(decisions.c.facility_id).where(decisions.c.snapshot_date == snapshot)
                ).scalars()
            )
            if claimed == "resumed"
            else set()
        )
        open_alerts = {
            (row.facility_id, row.topic): row
            for row in connection.execute(select(alerts).where(alerts.c.status != lifecycle.RESOLVED))
        }
    by_facility: dict[str, list[str]] = defaultdict(list)
    for facility, topic in open_alerts:
        by_facility[facility].append(topic)
    for rows in snapshot_rows(job.source, snapshot, job.bad, job.chunk_rows, job.kept, job.names):
        already = rows["facility_id"].isin(recorded) if recorded else pd.Series(False, index=rows.index)
        report.rows_already += int(already.sum())
        rows = rows[~already]
        if rows.empty:
            continue
        with engine.begin() as connection:
            beat = claims.now()
            connection.execute(
                update(snapshots).where(snapshots.c.snapshot_date == snapshot).values(heartbeat_at=beat)
            )
            # the run's count moves with its rows, so a run killed later still tells the truth
            connection.execute(
                update(runs)
                .where(runs.c.run_id == report.run_id)
                .values(rows_recorded=runs.c.rows_recorded + len(rows), heartbeat_at=beat)
            )
            insert_decisions(connection, rows, report.run_id)
            apply_lifecycle(connection, rows, snapshot, job.topics, open_alerts, by_facility, report)
        report.rows_recorded += len(rows)
        if job.on_chunk is not None:
            job.on_chunk(len(rows))
    with engine.begin() as connection:
        # counted in the store: a resumed snapshot holds the rows of every run that recorded it
        stored = select(func.count()).select_from(decisions).where(decisions.c.snapshot_date == snapshot)
        connection.execute(
            update(snapshots)
            .where(snapshots.c.snapshot_date == snapshot)
            .values(status="recorded", recorded_at=claims.now(), rows=stored.scalar_subquery())
        )
    report.recorded.append(snapshot)
