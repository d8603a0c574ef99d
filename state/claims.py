"""Claims on snapshots: exactly one live recorder records a snapshot, and one snapshot at a time.

Snapshots are claimed in the ``snapshots`` table (its key is the date, so exactly one recorder
claims a date). A snapshot already recorded is skipped ("nothing changed"); one older than a
recorded snapshot is refused unless forced (the lifecycle needs the order); one being recorded by a
live recorder stops this one with its name; a claim whose holder is gone (same host and its process
dead, or no heartbeat for :data:`STALE_SECONDS`) is taken over. Claims are made under an exclusive
lock (SQLite's write lock, a PostgreSQL advisory lock), so a recorder waits while another records.

Recorders queue in snapshot order: each run registers the snapshots it brings (the ``runs`` table)
before it claims any, and a snapshot is claimed only when no other live run still brings an
earlier one. Recorders started together therefore record as if one after another, oldest month
first, whatever order they reach the store in. A run whose holder is gone is marked ``dead`` by
the next run that looks.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from sqlalchemy import Connection, Engine, select, text, update

from crm_modes.shared.errors import InputError, RefusedError
from crm_modes.shared.processes import holder_alive, this_process
from crm_modes.state.tables import runs, snapshots

#: A claim without a heartbeat for this long is taken as left by a recorder that died.
STALE_SECONDS = 300.0
#: PostgreSQL advisory lock key of the claim transaction (any number).
_CLAIM_LOCK = 7_314_159_266

Claim = Literal["fresh", "resumed", "recorded"]


class SnapshotBusyError(RefusedError):
    """Another live recorder is recording the same snapshot; nothing was recorded."""

    what = "not recorded"


class OutOfOrderError(InputError):
    """A snapshot older than one already recorded; refused unless forced."""


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def holder() -> str:
    """This recorder, as a claim names it: host and process id."""
    return this_process()


def holder_gone(claimed_by: str, heartbeat: dt.datetime) -> bool:
    """Whether the recorder that holds a claim is dead: its process, on this host, or its heartbeat."""
    alive = holder_alive(claimed_by)
    if alive is not None:
        return not alive
    age = now() - (heartbeat if heartbeat.tzinfo else heartbeat.replace(tzinfo=dt.UTC))
    return age.total_seconds() > STALE_SECONDS


@contextmanager
def exclusive(engine: Engine) -> Iterator[Connection]:
    """A transaction no other recorder runs at the same time (claims are checked and made in it)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK})
            yield connection
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # SQLite: take the write lock before reading
        try:
            yield connection
        except BaseException:
            connection.rollback()
            raise
        connection.commit()


def bury_dead_runs(connection: Connection) -> list[str]:
    """Mark ``dead`` every running run whose holder is gone (or unknown); return their ids."""
    dead = [
        row.run_id
        for row in connection.execute(
            select(runs.c.run_id, runs.c.holder, runs.c.heartbeat_at, runs.c.started_at).where(
                runs.c.status == "running"
            )
        )
        if row.holder is None or holder_gone(row.holder, row.heartbeat_at or row.started_at)
    ]
    if dead:
        connection.execute(
            update(runs).where(runs.c.run_id.in_(dead)).values(status="dead", finished_at=now())
        )
    return dead


def _earlier_pending(connection: Connection, snapshot: dt.date, run_id: str, recorded: set[dt.date]) -> list:
    """Other live runs that still bring a snapshot earlier than ``snapshot``."""
    bury_dead_runs(connection)
    waiting = []
    for row in connection.execute(
        select(runs.c.run_id, runs.c.holder, runs.c.snapshots).where(
            (runs.c.status == "running") & (runs.c.run_id != run_id)
        )
    ):
        dates = [dt.date.fromisoformat(text) for text in row.snapshots.split(",") if text]
        if any(date < snapshot and date not in recorded for date in dates):
            waiting.append(row)
    return waiting


def claim(engine: Engine, snapshot: dt.date, run_id: str, *, force: bool, wait_seconds: float) -> Claim:
    """Claim ``snapshot``: ``"fresh"``, ``"resumed"`` (a dead recorder's), or ``"recorded"`` (skip it).

    One snapshot is recorded at a time, oldest first, so that alerts move through the snapshots in
    order: while another live recorder holds a claim, or still brings an earlier snapshot, this
    one waits (up to ``wait_seconds`` without any snapshot being recorded meanwhile).

    Raises:
        SnapshotBusyError: a live recorder is recording the same snapshot, or the wait ran out.
        OutOfOrderError: a later snapshot is recorded already (and not ``force``).
    """
    me, deadline, progress = holder(), time.monotonic() + wait_seconds, -1
    while True:
        with exclusive(engine) as connection:
            connection.execute(update(runs).where(runs.c.run_id == run_id).values(heartbeat_at=now()))
            rows = {row.snapshot_date: row for row in connection.execute(select(snapshots))}
            recorded = {date for date, row in rows.items() if row.status == "recorded"}
            if len(recorded) != progress:  # a snapshot was recorded meanwhile: the wait starts again
                progress, deadline = len(recorded), time.monotonic() + wait_seconds
            own = rows.get(snapshot)
            if own is not None and own.status == "recorded":
                return "recorded"
            if own is not None and not holder_gone(own.holder, own.heartbeat_at):
                raise SnapshotBusyError(
                    f"snapshot {snapshot} is being recorded by run {own.run_id} ({own.holder}, last heard "
                    f"{own.heartbeat_at:%Y-%m-%d %H:%M:%S}); nothing was recorded by this run"
                )
            busy = [
                row
                for date, row in rows.items()
                if date != snapshot
                and row.status == "recording"
                and not holder_gone(row.holder, row.heartbeat_at)
            ]
            busy += _earlier_pending(connection, snapshot, run_id, recorded)
            if not busy:
                latest = max((d for d, row in rows.items() if row.status == "recorded"), default=None)
                if latest is not None and latest > snapshot and not force:
                    raise OutOfOrderError(
                        f"snapshot {snapshot} is older than {latest}, already recorded: the alert lifecycle "
                        "needs snapshots in order; record it with --force to accept that"
                    )
                values = {"holder": me, "run_id": run_id, "heartbeat_at": now()}
                if own is None:
                    connection.execute(
                        snapshots.insert().values(
                            snapshot_date=snapshot, status="recording", rows=0, **values
                        )
                    )
                    return "fresh"
                connection.execute(
                    update(snapshots).where(snapshots.c.snapshot_date == snapshot).values(**values)
                )
                return "resumed"
        if time.monotonic() > deadline:
            raise SnapshotBusyError(
                f"snapshot {snapshot} waited {wait_seconds:.0f} s for run {busy[0].run_id} "
                f"({busy[0].holder}), which records or brings an earlier snapshot, and no snapshot was "
                "recorded meanwhile; "
                "try again when it ends"
            )
        time.sleep(0.5)
