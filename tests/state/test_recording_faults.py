"""Recording that stays exact under concurrency and faults, on SQLite and the real PostgreSQL.

Four months recorded at once end in the same store as recording them one after another; a
connection the database terminates mid-write ends in one clear line, and the rerun leaves every
count true; text no store can hold is quarantined before anything is written.
"""

import subprocess
import time

import pandas as pd
import pytest
from sqlalchemy import create_engine, func, select, text

from crm_modes.state.record import record_scores
from crm_modes.state.store import connect
from crm_modes.state.tables import alert_events, alerts, decisions, runs, snapshots
from tests.conftest import REPO
from tests.state.test_store import POLICY, month, recorder, scores

pytestmark = pytest.mark.integration

#: Four months in which alerts are raised, go on, escalate, clear and resolve.
PLAN = [
    {"F0": "PD_WATCH", "F1": "DPD_1", "F2": "COVENANT_BREACH"},
    {"F0": "PD_WARNING", "F2": "COVENANT_BREACH", "F3": "PD_WATCH"},
    {"F0": "PD_CRITICAL", "F3": "PD_WATCH"},
    {"F1": "DPD_30", "F3": "PD_WATCH"},
]


def months(tmp_path, facilities: int = 2_000) -> list:
    paths = []
    for index, codes in enumerate(PLAN):
        frame = scores(month(index), codes, facilities)
        path = tmp_path / f"month-{index}.parquet"
        frame.to_parquet(path)
        paths.append(path)
    return paths


def contents(url: str) -> dict:
    """What the store holds, without ids, run ids or times (which differ from run to run)."""
    with connect(url).connect() as connection:
        return {
            "decisions": sorted(
                connection.execute(
                    select(decisions.c.facility_id, decisions.c.snapshot_date, decisions.c.alert_codes)
                ).all()
            ),
            "alerts": sorted(
                connection.execute(
                    select(
                        alerts.c.facility_id,
                        alerts.c.topic,
                        alerts.c.code,
                        alerts.c.status,
                        alerts.c.first_seen,
                        alerts.c.last_seen,
                        alerts.c.last_notified,
                        alerts.c.clear_streak,
                        alerts.c.resolved_on,
                    )
                ).all()
            ),
            "events": sorted(
                connection.execute(
                    select(
                        alert_events.c.facility_id,
                        alert_events.c.snapshot_date,
                        alert_events.c.event,
                        alert_events.c.code,
                        alert_events.c.notified,
                    )
                ).all()
            ),
            "snapshots": sorted(
                connection.execute(
                    select(snapshots.c.snapshot_date, snapshots.c.rows, snapshots.c.status)
                ).all()
            ),
            "runs": sorted(
                connection.execute(select(runs.c.status, runs.c.rows_in, runs.c.rows_recorded)).all()
            ),
        }


def test_four_months_recorded_at_once_equal_recording_them_one_after_another(state_url, tmp_path):
    paths = months(tmp_path)
    sequential = f"sqlite:///{tmp_path / 'sequential.db'}"
    for path in paths:
        record_scores(connect(sequential), path, POLICY, queue_seconds=0)
    connect(state_url)
    # newest first, all at once: the store must not depend on who reaches it first
    processes = [recorder(state_url, path, queue_seconds=5) for path in reversed(paths)]
    outcomes = [(process.wait(timeout=300), *process.communicate()) for process in processes]
    assert [code for code, _, _ in outcomes] == [0, 0, 0, 0], outcomes
    together, expected = contents(state_url), contents(sequential)
    assert together == expected
    assert len(expected["events"]) > len(PLAN)  # the lifecycle moved: new, ongoing, escalated, cleared
    assert [row.status for row in together["runs"]] == ["done"] * 4


def test_a_connection_terminated_mid_write_ends_in_one_line_and_the_rerun_is_exact(
    cli, postgres_database, tmp_path
):
    path = tmp_path / "month.parquet"
    scores(month(0), {f"F{i}": "PD_WATCH" for i in range(0, 60_000, 3)}, 60_000).to_parquet(path)
    engine = connect(postgres_database)
    logs = tmp_path / "logs"
    command = [cli, "record", str(path), "--state", postgres_database, "--queue-seconds", "0"]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={"CRM_MODES_LOG_DIR": str(logs), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    admin = create_engine(postgres_database.replace("postgresql://", "postgresql+psycopg://"))
    database = postgres_database.rsplit("/", 1)[1]
    deadline = time.monotonic() + 120
    with engine.connect() as watcher:
        while time.monotonic() < deadline and process.poll() is None:  # once some rows are in
            if watcher.execute(select(func.count()).select_from(decisions)).scalar_one() > 0:
                break
            watcher.rollback()
            time.sleep(0.02)
    terminated = 0
    with admin.connect() as connection:  # terminate the recorder's connection in the middle of a write
        while terminated == 0 and process.poll() is None and time.monotonic() < deadline:
            terminated = connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = :name "
                    "AND pid <> pg_backend_pid() AND state IN ('active', 'idle in transaction')"
                ),
                {"name": database},
            ).scalar_one()
            connection.commit()
            time.sleep(0.01)
    _stdout, stderr = process.communicate(timeout=120)
    assert terminated > 0
    assert process.returncode == 1, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr  # one line, no traceback
    assert lines[0].startswith("state store fault: ")
    assert "F1" not in stderr
    assert "PD_WATCH" not in stderr
    logged = (logs / "faults.log").read_text()
    assert "Traceback" in logged
    assert "SQL parameters hidden" in logged or "terminat" in logged
    assert "'F3'" not in logged
    assert "PD_WATCH" not in logged

    rerun = record_scores(connect(postgres_database), path, POLICY, queue_seconds=0)
    assert rerun.reconciles
    assert rerun.rows_already + rerun.rows_recorded == 60_000
    with connect(postgres_database).connect() as connection:
        assert connection.execute(select(func.count()).select_from(decisions)).scalar_one() == 60_000
        assert connection.execute(select(func.count()).select_from(alert_events)).scalar_one() == 20_000
        assert connection.execute(select(snapshots.c.rows, snapshots.c.status)).one() == (60_000, "recorded")
        statuses = dict(connection.execute(select(runs.c.run_id, runs.c.status)).all())
        assert "running" not in statuses.values()
        counted = connection.execute(select(func.sum(runs.c.rows_recorded))).scalar_one()
        assert counted == 60_000  # the failed run's committed rows plus the rerun's
    admin.dispose()


def test_text_no_store_can_hold_is_quarantined_before_anything_is_written(state_url, tmp_path):
    frame = scores(month(0), {"F0": "PD_WATCH"}, facilities=40)
    frame.loc[3, "facility_id"] = "F\x003"
    frame.loc[4, "client_id"] = "C\x00"
    path = tmp_path / "scores.parquet"
    frame.to_parquet(path)
    report = record_scores(connect(state_url), path, POLICY, queue_seconds=0, max_quarantined_share=0.1)
    assert (report.rows_in, report.rows_recorded, report.rows_quarantined) == (40, 38, 2)
    assert report.quarantine_reasons == {
        "facility_id holds a NUL or a lone surrogate: no store can": 1,
        "client_id holds a NUL or a lone surrogate: no store can": 1,
    }
    with connect(state_url).connect() as connection:
        assert connection.execute(select(snapshots.c.rows, snapshots.c.status)).one() == (38, "recorded")
    assert pd.read_parquet(path).shape[0] == 40  # the input is left as it was


def test_a_drivers_own_warning_goes_to_the_fault_log_not_the_screen(monkeypatch, tmp_path, capsys):
    import logging

    from crm_modes.cli.faults import drivers_to_fault_log

    monkeypatch.setenv("CRM_MODES_LOG_DIR", str(tmp_path / "logs"))
    logger = logging.getLogger("psycopg")
    handlers, propagate = list(logger.handlers), logger.propagate
    try:
        drivers_to_fault_log()
        drivers_to_fault_log()  # once is enough: a second call adds no second handler
        logger.warning("error ignored terminating %s: %s", "<psycopg.Copy [BAD]>", "the connection is lost")
    finally:
        logger.handlers[:], logger.propagate = handlers, propagate
    written = (tmp_path / "logs" / "faults.log").read_text()
    assert written.count("error ignored terminating <psycopg.Copy [BAD]>: the connection is lost") == 1
    assert capsys.readouterr().err == ""
