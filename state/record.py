"""Recording scores: decisions appended, alerts moved through their lifecycle, every row accounted for.

A scores file (``crm-modes score`` output, CSV or Parquet, or the Spark engine's Parquet
folder) is recorded snapshot by snapshot, in date order, in transactions of one chunk:
the chunk's decisions and its alert changes commit together, so a recorder killed halfway
leaves whole chunks, and the rerun skips the facilities already recorded and goes on.

Snapshots are claimed in the ``snapshots`` table (its key is the date, so exactly one
recorder claims a date). A snapshot already recorded is skipped ("nothing changed"); one
older than a recorded snapshot is refused unless forced (the lifecycle needs the order);
one being recorded by a live recorder stops this one with its name; a claim whose holder is
gone (same host and its process dead, or no heartbeat for :data:`STALE_SECONDS`) is taken
over. One snapshot is recorded at a time (claims are made under an exclusive lock: SQLite's
write lock, a PostgreSQL advisory lock), so a recorder waits while another records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
from sqlalchemy import Connection, Engine, bindparam, case, select, text, update

from crm_modes.data.errors import InputError
from crm_modes.data.io import iter_chunks
from crm_modes.models.alerts import AlertPolicy
from crm_modes.state import lifecycle
from crm_modes.state.tables import alert_events, alerts, decisions, runs, snapshots

#: A claim without a heartbeat for this long is taken as left by a recorder that died.
STALE_SECONDS = 300.0
#: PostgreSQL advisory lock key of the claim transaction (any number).
_CLAIM_LOCK = 7_314_159_266
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
_OPTIONAL_FLOAT = ("value_basic", "value_reactive", "value_responsible", "churn_probability")


class SnapshotBusyError(RuntimeError):
    """Another live recorder is recording the same snapshot; nothing was recorded."""


class OutOfOrderError(InputError):
    """A snapshot older than one already recorded; refused unless forced."""


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


def iter_scores(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The scores at ``path`` in chunks: a CSV or Parquet file, or a folder of Parquet parts."""
    if path.is_dir():
        dataset = pads.dataset(path, format="parquet")
        for batch in dataset.to_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
    else:
        yield from iter_chunks(path, chunk_rows)


def _typed(chunk: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
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
    out["alert_codes"] = chunk["alert_codes"].astype("string").fillna("")
    for name in ("default_probability", *_OPTIONAL_FLOAT):
        out[name] = pd.to_numeric(chunk[name], errors="coerce") if name in chunk else float("nan")
    reasons[out["default_probability"].isna() & reasons.isna()] = "default_probability missing"
    return out, reasons


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _holder_gone(holder: str, heartbeat: dt.datetime) -> bool:
    host, _, pid = holder.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    age = dt.datetime.now(dt.UTC) - (heartbeat if heartbeat.tzinfo else heartbeat.replace(tzinfo=dt.UTC))
    return age.total_seconds() > STALE_SECONDS


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def record_scores(
    engine: Engine,
    source: str | os.PathLike[str],
    policy: AlertPolicy,
    *,
    force: bool = False,
    chunk_rows: int = 50_000,
    wait_seconds: float = 600.0,
    on_chunk: Callable[[int], None] | None = None,
) -> RecordReport:
    """Record the scores at ``source``; return what was recorded, skipped and quarantined.

    Raises:
        ValueError: columns are missing, or the policy has no notification topics.
        OutOfOrderError: a snapshot is older than one already recorded (and not ``force``).
        SnapshotBusyError: a snapshot is being recorded by another live recorder.
    """
    source = Path(source)
    if policy.notifications is None:
        raise InputError("the alert policy has no `notifications` section: the lifecycle needs it")
    header = next(iter_scores(source, 1))
    missing = [name for name in REQUIRED if name not in header.columns]
    if missing:
        raise InputError(f"{source}: missing columns {missing}; is it a `crm-modes score` output?")
    report = RecordReport(run_id=str(uuid.uuid4()))
    rows_by_date, bad = _survey(source, chunk_rows, report)
    dates = sorted(rows_by_date)
    cache = (
        {"typed": _load_all(source, bad, chunk_rows)}
        if len(dates) > 1 and report.rows_in <= IN_MEMORY_ROWS
        else {}
    )
    with engine.begin() as connection:
        done = dict(connection.execute(select(snapshots.c.snapshot_date, snapshots.c.status)).all())
        latest = max((d for d, status in done.items() if status == "recorded"), default=None)
        late = [d for d in dates if done.get(d) != "recorded" and latest is not None and d < latest]
        if late and not force:
            raise OutOfOrderError(
                f"snapshots {[str(d) for d in late]} are older than {latest}, already recorded: the alert "
                "lifecycle needs snapshots in order; record them with --force to accept that"
            )
        connection.execute(
            runs.insert().values(
                run_id=report.run_id,
                input_path=str(source.resolve()),
                input_hash=input_hash(source),
                model_versions=",".join(sorted(report.model_versions)),
                snapshots=",".join(str(d) for d in dates),
                rows_in=0,
                rows_recorded=0,
                rows_quarantined=0,
                started_at=_now(),
                status="running",
            )
        )
    try:
        for snapshot in dates:
            _record_snapshot(
                engine,
                source,
                snapshot,
                rows_by_date[snapshot],
                bad,
                cache,
                policy,
                force,
                report,
                chunk_rows,
                wait_seconds,
                on_chunk,
            )
    except BaseException:
        _finish_run(engine, report, "failed")
        raise
    _finish_run(engine, report, "done")
    return report


def _survey(source: Path, chunk_rows: int, report: RecordReport) -> tuple[dict[dt.date, int], set[int]]:
    """One pass: recordable rows per snapshot, and the positions of rows that cannot be recorded."""
    rows_by_date: dict[dt.date, int] = defaultdict(int)
    bad: set[int] = set()
    seen: set[int] = set()
    position = 0
    for chunk in iter_scores(source, chunk_rows):
        typed, reasons = _typed(chunk)
        keys = pd.util.hash_pandas_object(typed[["facility_id", "snapshot_date"]].astype(str), index=False)
        for offset, (key, given) in enumerate(zip(keys.to_numpy(), reasons, strict=True)):
            reason = None if pd.isna(given) else given
            if reason is None and key in seen:
                reason = "duplicate facility_id and snapshot_date in the file"
            if reason is not None:
                bad.add(position + offset)
                report.quarantine_reasons[reason] = report.quarantine_reasons.get(reason, 0) + 1
            else:
                seen.add(key)
        good = typed[[position + i not in bad for i in range(len(typed))]]
        for date, count in good["snapshot_date"].value_counts().items():
            rows_by_date[date] += int(count)
        report.model_versions.update(typed["model_version"].dropna().astype(str).unique())
        report.rows_in += len(chunk)
        position += len(chunk)
    report.rows_quarantined = len(bad)
    return dict(rows_by_date), bad


#: A file with several snapshots and at most this many rows is read once and kept in memory.
IN_MEMORY_ROWS = 3_000_000


def _snapshot_rows(
    source: Path, snapshot: dt.date, bad: set[int], chunk_rows: int, cache: dict
) -> Iterator[pd.DataFrame]:
    """The recordable rows of ``snapshot``, chunk by chunk (from ``cache`` when it holds the file)."""
    if "typed" in cache:
        rows = cache["typed"][cache["typed"]["snapshot_date"] == snapshot]
        for start in range(0, len(rows), chunk_rows):
            yield rows.iloc[start : start + chunk_rows]
        return
    position = 0
    for chunk in iter_scores(source, chunk_rows):
        typed, _ = _typed(chunk)
        keep = (typed["snapshot_date"] == snapshot).to_numpy(copy=True)
        if bad:
            keep &= np.array([position + i not in bad for i in range(len(typed))], dtype=bool)
        position += len(chunk)
        if keep.any():
            yield typed[keep]


def _load_all(source: Path, bad: set[int], chunk_rows: int) -> pd.DataFrame:
    """Every recordable row of the file, typed, in file order."""
    typed = pd.concat([_typed(chunk)[0] for chunk in iter_scores(source, chunk_rows)], ignore_index=True)
    return typed.drop(index=list(bad)) if bad else typed


def _finish_run(engine: Engine, report: RecordReport, status: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(runs)
            .where(runs.c.run_id == report.run_id)
            .values(
                rows_in=report.rows_in,
                rows_recorded=report.rows_recorded,
                rows_quarantined=report.rows_quarantined,
                finished_at=_now(),
                status=status,
            )
        )


@contextmanager
def _exclusive(engine: Engine) -> Iterator[Connection]:
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


def _claim(engine: Engine, snapshot: dt.date, run_id: str, *, force: bool, wait_seconds: float) -> str:
    """Claim ``snapshot``: ``"fresh"``, ``"resumed"`` (a dead recorder's), or ``"recorded"`` (skip it).

    One snapshot is recorded at a time, so that alerts move through the snapshots in order:
    while another live recorder holds a claim, this one waits (up to ``wait_seconds``).

    Raises:
        SnapshotBusyError: a live recorder is recording the same snapshot, or the wait ran out.
        OutOfOrderError: a later snapshot is recorded already (and not ``force``).
    """
    me, deadline = _holder(), time.monotonic() + wait_seconds
    while True:
        with _exclusive(engine) as connection:
            rows = {row.snapshot_date: row for row in connection.execute(select(snapshots))}
            own = rows.get(snapshot)
            if own is not None and own.status == "recorded":
                return "recorded"
            if own is not None and not _holder_gone(own.holder, own.heartbeat_at):
                raise SnapshotBusyError(
                    f"snapshot {snapshot} is being recorded by run {own.run_id} ({own.holder}, last heard "
                    f"{own.heartbeat_at:%Y-%m-%d %H:%M:%S}); nothing was recorded by this run"
                )
            busy = [
                row
                for date, row in rows.items()
                if date != snapshot
                and row.status == "recording"
                and not _holder_gone(row.holder, row.heartbeat_at)
            ]
            if not busy:
                latest = max((d for d, row in rows.items() if row.status == "recorded"), default=None)
                if latest is not None and latest > snapshot and not force:
                    raise OutOfOrderError(
                        f"snapshot {snapshot} is older than {latest}, already recorded: the alert lifecycle "
                        "needs snapshots in order; record it with --force to accept that"
                    )
                values = {"holder": me, "run_id": run_id, "heartbeat_at": _now()}
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


def _record_snapshot(
    engine: Engine,
    source: Path,
    snapshot: dt.date,
    rows_in_file: int,
    bad: set[int],
    cache: dict,
    policy: AlertPolicy,
    force: bool,
    report: RecordReport,
    chunk_rows: int,
    wait_seconds: float,
    on_chunk: Callable[[int], None] | None,
) -> None:
    claim = _claim(engine, snapshot, report.run_id, force=force, wait_seconds=wait_seconds)
    if claim == "recorded":
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
            if claim == "resumed"
            else set()
        )
        open_alerts = {
            (row.facility_id, row.topic): row
            for row in connection.execute(select(alerts).where(alerts.c.status != lifecycle.RESOLVED))
        }
    by_facility: dict[str, list[str]] = defaultdict(list)
    for facility, topic in open_alerts:
        by_facility[facility].append(topic)
    topics = policy.notifications
    assert topics is not None
    total = 0
    for rows in _snapshot_rows(source, snapshot, bad, chunk_rows, cache):
        already = rows["facility_id"].isin(recorded) if recorded else pd.Series(False, index=rows.index)
        report.rows_already += int(already.sum())
        rows = rows[~already]
        if rows.empty:
            continue
        with engine.begin() as connection:
            connection.execute(
                update(snapshots).where(snapshots.c.snapshot_date == snapshot).values(heartbeat_at=_now())
            )
            _insert_decisions(connection, rows, report.run_id)
            _apply_lifecycle(connection, rows, snapshot, topics, open_alerts, by_facility, report)
        total += len(rows)
        report.rows_recorded += len(rows)
        if on_chunk is not None:
            on_chunk(len(rows))
    with engine.begin() as connection:
        connection.execute(
            update(snapshots)
            .where(snapshots.c.snapshot_date == snapshot)
            .values(status="recorded", recorded_at=_now(), rows=snapshots.c.rows + total)
        )
    report.recorded.append(snapshot)


def _insert_decisions(connection: Connection, rows: pd.DataFrame, run_id: str) -> None:
    frame = rows.assign(run_id=run_id)
    columns = [c.name for c in decisions.columns if c.name != "id"]
    frame = frame.reindex(columns=columns)
    frame = frame.astype(object).where(frame.notna(), None)
    bulk_insert(connection, decisions, columns, frame.itertuples(index=False, name=None))


def bulk_insert(connection: Connection, table, columns: list[str], rows) -> None:
    """Append ``rows`` (tuples in ``columns`` order) in the connection's transaction, in bulk.

    PostgreSQL: ``COPY ... FROM STDIN``; SQLite: one prepared ``INSERT`` run for every row.
    Both skip SQLAlchemy's per-row parameter handling, which costs more than the database.
    """
    raw = connection.connection.driver_connection
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in columns)
        raw.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", list(rows))


def _apply_lifecycle(
    connection: Connection,
    rows: pd.DataFrame,
    snapshot: dt.date,
    topics: dict,
    open_alerts: dict,
    by_facility: dict[str, list[str]],
    report: RecordReport,
) -> None:
    """Move every alert of the chunk's facilities one snapshot on; write alerts and events in bulk."""
    now = _now()
    inserts, updates, events = [], [], []
    for facility, codes in zip(rows["facility_id"], rows["alert_codes"], strict=True):
        fired = lifecycle.topic_codes(codes, topics)
        for topic in {*fired, *by_facility.get(facility, ())}:
            stored = open_alerts.get((facility, topic))
            before = (
                None
                if stored is None
                else lifecycle.Alert(
                    stored.code,
                    stored.status,
                    stored.first_seen,
                    stored.last_seen,
                    stored.last_notified,
                    stored.clear_streak,
                )
            )
            after, event, notify = lifecycle.step(before, fired.get(topic), topics[topic], snapshot)
            if not event:
                continue
            report.events[event] = report.events.get(event, 0) + 1
            report.notifications += int(notify)
            change = {
                "facility_id": facility,
                "topic": topic,
                "code": after.code,
                "status": after.status,
                "first_seen": after.first_seen,
                "last_seen": after.last_seen,
                "last_notified": after.last_notified,
                "clear_streak": after.clear_streak,
                "resolved_on": snapshot if after.status == lifecycle.RESOLVED else None,
            }
            record = {
                "facility_id": facility,
                "snapshot_date": snapshot,
                "event": event,
                "code": after.code,
                "notified": notify,
                "at": now,
            }
            if stored is None:
                inserts.append((change, record))
            else:
                updates.append({**{f"new_{k}": v for k, v in change.items()}, "alert": stored.id})
                events.append({**record, "alert_id": stored.id})
    if inserts:
        ids = (
            connection.execute(
                alerts.insert().returning(alerts.c.id, sort_by_parameter_order=True), [c for c, _ in inserts]
            )
            .scalars()
            .all()
        )
        events.extend(
            {**record, "alert_id": alert_id} for (_, record), alert_id in zip(inserts, ids, strict=True)
        )
    if updates:
        keep_ack = case(
            (alerts.c.status == lifecycle.ACKNOWLEDGED, bindparam("new_status_if_ack")),
            else_=bindparam("new_status"),
        )
        for change in updates:
            change["new_status_if_ack"] = (
                lifecycle.ACKNOWLEDGED if change["new_status"] == lifecycle.ONGOING else change["new_status"]
            )
        connection.execute(
            update(alerts)
            .where(alerts.c.id == bindparam("alert"))
            .values(
                code=bindparam("new_code"),
                status=keep_ack,
                last_seen=bindparam("new_last_seen"),
                last_notified=bindparam("new_last_notified"),
                clear_streak=bindparam("new_clear_streak"),
                resolved_on=bindparam("new_resolved_on"),
            ),
            updates,
        )
    if events:
        columns = ["alert_id", "facility_id", "snapshot_date", "event", "code", "notified", "at"]
        bulk_insert(connection, alert_events, columns, ([event[c] for c in columns] for event in events))


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
    engine: Engine, source: Path, target: Path, report: RecordReport, chunk_rows: int = 50_000
) -> Path:
    """Copy ``source`` to ``target`` (atomically, may be the same) with two columns added.

    A Parquet folder (the Spark engine's output) becomes a folder with one part file.
    """
    from crm_modes.data.io import AtomicTableWriter, replace_folder

    dates = [*report.recorded, *report.skipped]
    statuses = row_statuses(engine, dates).set_index(["facility_id", "snapshot_date"])
    folder = target.is_dir() or (source.is_dir() and target == source)
    written = target.with_name(f".{target.name}.annotating") if folder else target
    if folder:
        shutil.rmtree(written, ignore_errors=True)
        written.mkdir(parents=True)
    with AtomicTableWriter(written / "part-00000.parquet" if folder else written) as writer:
        for chunk in iter_scores(source, chunk_rows):
            keys = pd.MultiIndex.from_arrays(
                [
                    chunk["facility_id"].astype(str),
                    pd.to_datetime(chunk["snapshot_date"], errors="coerce").dt.date,
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
