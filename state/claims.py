"""Claims on snapshots: exactly one live recorder records a snapshot, and one snapshot at a time.

Snapshots are claimed in the ``snapshots`` table (its key is the date, so exactly one recorder
claims a date). A snapshot already recorded is skipped ("nothing changed"); one older than a
recorded snapshot is refused unless forced (the lifecycle needs the order); one being recorded by a
live recorder stops this one with its name; a claim whose holder is gone (same host and its process
dead, or no heartbeat for :data:`STALE_SECONDS`) is taken over. Claims are made under an exclusive
lock (SQLite's write lock, a PostgreSQL advisory lock), so a recorder waits while another records.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from sqlalchemy import Connection, Engine, select, text, update

from crm_modes.shared.errors import InputError, RefusedError
from crm_modes.state.tables import snapshots

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
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_gone(claimed_by: str, heartbeat: dt.datetime) -> bool:
    """Whether the recorder that holds a claim is dead: its process, on this host, or its heartbeat."""
    host, _, pid = claimed_by.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
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


def claim(engine: Engine, snapshot: dt.date, run_id: str, *, force: bool, wait_seconds: float) -> Claim:
    """Claim ``snapshot``: ``"fresh"``, ``"resumed"`` (a dead recorder's), or ``"recorded"`` (skip it).

    One snapshot is recorded at a time, so that alerts move through the snapshots in order:
    while another live recorder holds a claim, this one waits (up to ``wait_seconds``).

    Raises:
        SnapshotBusyError: a live recorder is recording the same snapshot, or the wait ran out.
        OutOfOrderError: a later snapshot is recorded already (and not ``force``).
    """
    me, deadline = holder(), time.monotonic() + wait_seconds
    while True:
        with exclusive(engine) as connection:
            rows = {row.snapshot_date: row for row in connection.execute(select(snapshots))}
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
                f"snapshot {busy[0].snapshot_date} has been recorded by {busy[0].holder} for longer than "
                f"{wait_seconds:.0f} s; try again when it ends"
            )
        time.sleep(0.5)
