"""The state store on SQLite and on the real PostgreSQL server.

Lifecycle, idempotence, kills, concurrency and migrations, the same tests on both.
"""

import datetime as dt
import os
import signal
import subprocess
import sys
import uuid

import pandas as pd
import pytest
from sqlalchemy import func, inspect, select

from crm_modes.data.gate import QuarantineLimitError
from crm_modes.models.alerts import load_policy
from crm_modes.state import queries
from crm_modes.state.record import OutOfOrderError, SnapshotBusyError, record_scores
from crm_modes.state.store import connect, revision, upgrade
from crm_modes.state.tables import alert_events, alerts, decisions, runs, snapshots
from tests.conftest import REPO

POLICY = load_policy(REPO / "configs" / "alert_policy.yaml")


def month(index: int) -> dt.date:
    """Month-ends from January 2024."""
    first = dt.date(2024 + (index + 1) // 12, (index + 1) % 12 + 1, 1)
    return first - dt.timedelta(days=1)


def scores(snapshot: dt.date, codes: dict[str, str], facilities: int = 4) -> pd.DataFrame:
    """A scores file's rows: ``codes`` by facility id (F0, F1, ...), nothing for the others."""
    ids = [f"F{i}" for i in range(facilities)]
    return pd.DataFrame(
        {
            "client_id": [f"C{i}" for i in range(facilities)],
            "facility_id": ids,
            "snapshot_date": pd.to_datetime([snapshot] * facilities),
            "recommended_mode": "responsible",
            "committee_mode": "reactive",
            "assigned_mode": "reactive",
            "value_basic": 1.0,
            "value_reactive": 2.0,
            "value_responsible": 3.0,
            "default_probability": 0.01,
            "churn_probability": 0.1,
            "risk_grade": "5",
            "alert_level": ["warning" if codes.get(i) else "none" for i in ids],
            "alert_codes": [codes.get(i, "") for i in ids],
            "model_version": "crm-advisor (test)",
        }
    )


def record(url, tmp_path, frame, **options):
    path = tmp_path / f"scores-{uuid.uuid4().hex[:6]}.parquet"
    frame.to_parquet(path)
    return record_scores(connect(url), path, POLICY, **({"queue_seconds": 0} | options))


def test_migrations_from_empty_and_from_the_previous_revision(state_url):
    engine = connect(state_url, migrate=False)
    assert revision(engine) is None
    upgrade(engine, "0001")
    assert revision(engine) == "0001"
    assert "alerts" not in inspect(engine).get_table_names()
    with engine.begin() as connection:
        connection.execute(
            runs.insert().values(
                run_id="r0",
                input_path="x",
                input_hash="0" * 64,
                model_versions="m",
                snapshots="2024-01-31",
                rows_in=1,
                rows_recorded=1,
                rows_quarantined=0,
                started_at=dt.datetime.now(dt.UTC),
                status="done",
            )
        )
        connection.execute(
            decisions.insert().values(
                run_id="r0", facility_id="F0", snapshot_date=month(0), model_version="m", alert_codes=""
            )
        )
    upgrade(engine)
    assert revision(engine) == "0006"
    assert {"alerts", "alert_events", "monitoring_runs", "access_log"} <= set(
        inspect(engine).get_table_names()
    )
    assert "assigned_propensity" in {column["name"] for column in inspect(engine).get_columns("decisions")}
    with engine.connect() as connection:
        assert connection.execute(select(decisions.c.facility_id)).scalars().all() == ["F0"]
    connect(state_url)  # opening an up-to-date store changes nothing
    assert revision(engine) == "0006"


def test_each_decision_remembers_the_mode_applied_and_its_propensity(state_url, tmp_path):
    frame = scores(month(0), {}).assign(assigned_propensity=[0.9, 0.05, None, 0.5])
    record(state_url, tmp_path, frame)
    with connect(state_url).connect() as connection:
        kept = connection.execute(
            select(decisions.c.facility_id, decisions.c.assigned_mode, decisions.c.assigned_propensity)
        ).all()
    assert sorted(kept) == [
        ("F0", "reactive", 0.9),
        ("F1", "reactive", 0.05),
        ("F2", "reactive", None),
        ("F3", "reactive", 0.5),
    ]


def test_each_decision_remembers_how_sure_its_gains_were(state_url, tmp_path):
    frame = scores(month(0), {}).assign(
        gain_error_basic=[0.01, 0.0, None, 0.2],
        gain_error_reactive=[0.0, 0.02, None, 0.0],
        gain_error_responsible=[0.03, 0.04, None, 0.1],
    )
    record(state_url, tmp_path, frame)
    columns = [
        decisions.c.gain_error_basic,
        decisions.c.gain_error_reactive,
        decisions.c.gain_error_responsible,
    ]
    with connect(state_url).connect() as connection:
        kept = connection.execute(
            select(decisions.c.facility_id, *columns).order_by(decisions.c.facility_id)
        ).all()
    assert [tuple(row) for row in kept] == [
        ("F0", 0.01, 0.0, 0.03),
        ("F1", 0.0, 0.02, 0.04),
        ("F2", None, None, None),  # scored without move_confidence: no errors, none invented
        ("F3", 0.2, 0.0, 0.1),
    ]


def test_the_lifecycle_new_ongoing_cooldown_escalated_resolved(state_url, tmp_path):
    plan = [
        {"F0": "PD_WATCH", "F1": "DPD_1"},  # 0: both new
        {"F0": "PD_WATCH", "F1": "DPD_1"},  # 1: ongoing, not notified
        {"F0": "PD_WATCH", "F1": "DPD_30"},  # 2: F1 escalates
        {"F0": "PD_WATCH"},  # 3: F0 cooled down (3 months); F1 clear once
        {"F0": "PD_WATCH"},  # 4: F1 resolved (two clear snapshots)
        {"F0": "PD_WATCH", "F1": "DPD_1"},  # 5: F1 new again
    ]
    statuses = []
    for index, codes in enumerate(plan):
        report = record(state_url, tmp_path, scores(month(index), codes))
        assert report.reconciles
        statuses.append(report.events)
    assert statuses[0] == {"new": 2}
    assert statuses[1] == {"ongoing": 2}
    assert statuses[2] == {"ongoing": 1, "escalated": 1}
    assert statuses[3] == {"ongoing": 1, "cleared": 1}
    assert statuses[4] == {"ongoing": 1, "resolved": 1}
    assert statuses[5] == {"ongoing": 1, "new": 1}
    engine = connect(state_url)
    with engine.connect() as connection:
        events = pd.DataFrame(
            connection.execute(select(alert_events).order_by(alert_events.c.id)).mappings().all()
        )
        notified = events[events["notified"]].groupby("facility_id")["event"].apply(list).to_dict()
        assert notified == {"F0": ["new", "ongoing"], "F1": ["new", "escalated", "new"]}
        counts = dict(
            connection.execute(select(alerts.c.status, func.count()).group_by(alerts.c.status)).all()
        )
        assert counts == {"ongoing": 1, "resolved": 1, "new": 1}
        assert connection.execute(select(func.count()).select_from(decisions)).scalar_one() == 6 * 4


def test_an_acknowledged_alert_is_quiet_until_it_escalates(state_url, tmp_path):
    record(state_url, tmp_path, scores(month(0), {"F0": "PD_WATCH"}))
    engine = connect(state_url)
    (alert,) = queries.list_alerts(engine, status="open")
    acknowledged = queries.acknowledge(engine, alert["id"], by="ana", note="client called")
    assert acknowledged["status"] == "acknowledged"
    assert acknowledged["acknowledged_by"] == "ana"
    for index in range(1, 5):  # past the cooldown: still quiet
        report = record(state_url, tmp_path, scores(month(index), {"F0": "PD_WATCH"}))
        assert report.notifications == 0
        assert report.events == {"acknowledged": 1}
    report = record(state_url, tmp_path, scores(month(5), {"F0": "PD_CRITICAL"}))
    assert report.events == {"escalated": 1}
    assert report.notifications == 1
    with pytest.raises(queries.UnknownAlertError, match="no alert 999"):
        queries.acknowledge(engine, 999, by="ana")


def test_alerts_of_one_facility_are_stored_in_the_policys_topic_order_whatever_the_hash_seed(tmp_path):
    """String hashes differ from one process to the next: the alert ids must not follow them."""
    path = tmp_path / "scores.parquet"
    scores(month(0), {"F0": "MODE_UPGRADE,COVENANT_BREACH,PD_WARNING,DPD_1,CHURN_WATCH"}).to_parquet(path)
    script = (
        "import sys; from crm_modes.models.alerts import load_policy; "
        "from crm_modes.state.record import record_scores; from crm_modes.state.store import connect; "
        f"record_scores(connect(sys.argv[1]), {str(path)!r}, load_policy(sys.argv[2]), queue_seconds=0)"
    )
    orders = []
    for seed in ("1", "2", "3"):
        url = f"sqlite:///{tmp_path / f'seed-{seed}.db'}"
        done = subprocess.run(
            [sys.executable, "-c", script, url, str(REPO / "configs" / "alert_policy.yaml")],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        with connect(url).connect() as connection:
            orders.append(list(connection.execute(select(alerts.c.topic).order_by(alerts.c.id)).scalars()))
    assert orders[0] == [topic for topic in POLICY.notifications if topic in orders[0]]
    assert orders[0] == ["PD", "DPD", "CHURN", "COVENANT_BREACH", "MODE_UPGRADE"]
    assert orders[1] == orders[0] == orders[2]


def test_recording_the_same_snapshot_twice_changes_nothing(state_url, tmp_path):
    frame = scores(month(0), {"F0": "PD_WATCH"})
    first = record(state_url, tmp_path, frame)
    again = record(state_url, tmp_path, frame)
    assert (first.rows_recorded, again.rows_recorded, again.rows_already) == (4, 0, 4)
    assert again.skipped == {month(0): "already recorded: nothing changed"}
    assert again.reconciles
    with connect(state_url).connect() as connection:
        assert connection.execute(select(func.count()).select_from(decisions)).scalar_one() == 4
        assert connection.execute(select(func.count()).select_from(alert_events)).scalar_one() == 1


def test_snapshots_out_of_order_are_refused_unless_forced(state_url, tmp_path):
    record(state_url, tmp_path, scores(month(1), {}))
    with pytest.raises(OutOfOrderError, match="older than 2024-02-29, already recorded"):
        record(state_url, tmp_path, scores(month(0), {}))
    assert record(state_url, tmp_path, scores(month(0), {}), force=True).recorded == [month(0)]


def test_rows_that_cannot_be_recorded_are_counted_with_their_reason(state_url, tmp_path):
    frame = scores(month(0), {"F0": "PD_WATCH"})
    frame = pd.concat([frame, frame.iloc[[1]]], ignore_index=True)
    frame.loc[2, "facility_id"] = None
    report = record(state_url, tmp_path, frame, max_quarantined_share=0.5)
    assert (report.rows_in, report.rows_recorded, report.rows_quarantined) == (5, 3, 2)
    assert report.quarantine_reasons == {
        "facility_id missing": 1,
        "duplicate facility_id and snapshot_date in the file": 1,
    }


def test_a_scores_file_that_could_not_be_recorded_stops_before_anything_is_written(state_url, tmp_path):
    frame = scores(month(0), {"F0": "PD_WATCH"}, facilities=10)
    frame.loc[:3, "facility_id"] = None  # 4 rows of 10
    with pytest.raises(QuarantineLimitError) as refused:
        record(state_url, tmp_path, frame)
    assert "4 of 10 rows (40.0%) were quarantined, more than the 5% allowed" in str(refused.value)
    assert "facility_id missing 4" in str(refused.value)
    frame["default_probability"] = None
    with pytest.raises(QuarantineLimitError, match="none of the 10 rows passed"):
        record(state_url, tmp_path, frame, max_quarantined_share=1.0)
    with connect(state_url).connect() as connection:
        assert connection.execute(select(func.count()).select_from(runs)).scalar_one() == 0
        assert connection.execute(select(func.count()).select_from(decisions)).scalar_one() == 0


def test_a_snapshot_being_recorded_by_a_live_recorder_stops_the_other(state_url, tmp_path):
    engine = connect(state_url)
    with engine.begin() as connection:  # a live recorder: this test process holds the claim
        connection.execute(
            snapshots.insert().values(
                snapshot_date=month(0),
                run_id="other",
                status="recording",
                holder=f"{os.uname().nodename}:{os.getpid()}",
                heartbeat_at=dt.datetime.now(dt.UTC),
                rows=0,
            )
        )
    with pytest.raises(SnapshotBusyError, match="snapshot 2024-01-31 is being recorded by run other"):
        record(state_url, tmp_path, scores(month(0), {}))


RECORDER = """
import sys
from crm_modes.data.gate import QuarantineLimitError
from crm_modes.models.alerts import load_policy
from crm_modes.state.record import record_scores
from crm_modes.state.store import connect
report = record_scores(
    connect(sys.argv[1]), sys.argv[2], load_policy(sys.argv[3]), chunk_rows=int(sys.argv[4]),
    queue_seconds=float(sys.argv[5]), on_chunk=lambda n: print("chunk", n, flush=True),
)
print("recorded", report.rows_recorded, "already", report.rows_already, flush=True)
"""


def recorder(url, path, chunk_rows=500, queue_seconds=0.0):
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            RECORDER,
            url,
            str(path),
            str(REPO / "configs" / "alert_policy.yaml"),
            str(chunk_rows),
            str(queue_seconds),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def big_month(index: int, facilities: int = 6_000) -> pd.DataFrame:
    codes = {f"F{i}": "PD_WATCH" for i in range(0, facilities, 3)}
    return scores(month(index), codes, facilities)


def test_killed_while_recording_then_rerun_records_every_row_once(state_url, tmp_path):
    path = tmp_path / "month.parquet"
    big_month(0).to_parquet(path)
    connect(state_url)
    process = recorder(state_url, path)
    chunks = 0
    for line in process.stdout:  # kill once two chunks are committed
        chunks += line.startswith("chunk")
        if chunks == 2:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    with connect(state_url).connect() as connection:
        partial = connection.execute(select(func.count()).select_from(decisions)).scalar_one()
    assert 0 < partial < 6_000
    rerun = record_scores(connect(state_url), path, POLICY, chunk_rows=500, queue_seconds=0)
    assert rerun.rows_already == partial
    assert rerun.rows_already + rerun.rows_recorded == 6_000
    with connect(state_url).connect() as connection:
        assert connection.execute(select(func.count()).select_from(decisions)).scalar_one() == 6_000
        assert connection.execute(select(func.count()).select_from(alerts)).scalar_one() == 2_000
        assert connection.execute(select(func.count()).select_from(alert_events)).scalar_one() == 2_000
        # the bookkeeping is true too: the killed run is marked dead with what it committed
        by_status = {row.status: row for row in connection.execute(select(runs))}
        assert set(by_status) == {"dead", "done"}
        assert by_status["dead"].rows_recorded == partial
        assert (by_status["done"].rows_recorded, by_status["done"].rows_in) == (6_000 - partial, 6_000)
        assert connection.execute(select(snapshots.c.rows, snapshots.c.status)).one() == (6_000, "recorded")


def test_two_recorders_at_once(state_url, tmp_path):
    """Different snapshots: the second waits, both record in date order. The same one: one records."""
    connect(state_url)
    january, february = tmp_path / "jan.parquet", tmp_path / "feb.parquet"
    big_month(0).to_parquet(january)
    big_month(1).to_parquet(february)
    first = recorder(state_url, january)
    assert first.stdout.readline().startswith("chunk")  # January is being recorded
    processes = [first, recorder(state_url, february)]
    outcomes = [(process.wait(timeout=300), *process.communicate()) for process in processes]
    assert [code for code, _, _ in outcomes] == [0, 0], outcomes
    with connect(state_url).connect() as connection:
        assert connection.execute(select(func.count()).select_from(decisions)).scalar_one() == 12_000
        events = dict(
            connection.execute(
                select(alert_events.c.event, func.count()).group_by(alert_events.c.event)
            ).all()
        )
    assert events == {"new": 2_000, "ongoing": 2_000}  # February saw January's alerts: order kept
    march = tmp_path / "mar.parquet"
    big_month(2).to_parquet(march)
    processes = [recorder(state_url, march), recorder(state_url, march)]
    outcomes = sorted((process.wait(timeout=300), *process.communicate()) for process in processes)
    assert outcomes[0][0] == 0
    other = outcomes[1]
    assert other[0] != 0 or "already 6000" in other[1], outcomes
    if other[0]:
        assert "is being recorded by run" in other[2]
    with connect(state_url).connect() as connection:
        assert connection.execute(select(func.count()).select_from(decisions)).scalar_one() == 18_000


def test_history_of_a_facility(state_url, tmp_path):
    for index, codes in enumerate([{"F0": "PD_WATCH"}, {"F0": "PD_WARNING"}, {}]):
        record(state_url, tmp_path, scores(month(index), codes))
    history = queries.history(connect(state_url), "F0")
    assert [row["snapshot_date"] for row in history["decisions"]] == [month(0), month(1), month(2)]
    assert history["decisions"][1]["alert_codes"] == "PD_WARNING"
    assert [event["event"] for event in history["alert_events"]] == ["new", "escalated", "cleared"]
    assert queries.history(connect(state_url), "NOPE") is None


def test_a_file_with_many_snapshots_records_them_in_order(state_url, tmp_path):
    months = [
        scores(month(i), codes) for i, codes in enumerate([{"F0": "PD_WATCH"}, {"F0": "PD_WARNING"}, {}])
    ]
    frame = pd.concat(months[::-1], ignore_index=True)  # newest first in the file: recorded oldest first
    report = record(state_url, tmp_path, frame)
    assert report.recorded == [month(0), month(1), month(2)]
    assert report.events == {"new": 1, "escalated": 1, "cleared": 1}
    assert report.reconciles


def test_the_command_line_records_lists_acknowledges_and_shows_history(cli, state_url, tmp_path):
    import json

    path = tmp_path / "scores.csv"
    scores(month(0), {"F0": "PD_WATCH", "F1": "DPD_30"}).to_csv(path, index=False)

    def crm(*args):
        return subprocess.run(
            [cli, *args, "--state", state_url], capture_output=True, text=True, timeout=300, cwd=REPO
        )

    result = crm("record", str(path), "--output", str(tmp_path / "annotated.csv"))
    assert result.returncode == 0, result.stderr
    assert "4 decisions, 2 notifications (new 2)" in result.stdout
    annotated = pd.read_csv(tmp_path / "annotated.csv")
    assert annotated.set_index("facility_id")["alert_status"].to_dict() == {
        "F0": "new",
        "F1": "new",
        "F2": "none",
        "F3": "none",
    }
    assert annotated["notify"].tolist() == [True, True, False, False]
    again = crm("record", str(path))
    assert again.returncode == 0
    assert "snapshot 2024-01-31: already recorded: nothing changed" in again.stdout
    table = crm("alerts", "list").stdout
    assert "2 open alerts" in table
    assert "DPD_30" in table
    listed = json.loads(crm("alerts", "list", "--format", "json").stdout)
    assert {alert["facility_id"] for alert in listed} == {"F0", "F1"}
    result = crm("alerts", "ack", str(listed[0]["id"]), "--by", "ana", "--note", "called")
    assert result.returncode == 0, result.stderr
    assert "acknowledged by ana" in result.stdout
    assert crm("alerts", "ack", "999", "--by", "ana").returncode == 2
    assert "F0: alert events" in crm("history", "F0").stdout
    history = json.loads(crm("history", "F0", "--format", "json").stdout)
    assert [row["alert_codes"] for row in history["decisions"]] == ["PD_WATCH"]
    missing = crm("history", "NOPE")
    assert missing.returncode == 2
    assert "never recorded" in missing.stderr


def test_a_parquet_folder_as_spark_writes_it_is_recorded_and_annotated(state_url, tmp_path):
    from crm_modes.state.annotation import annotate

    folder = tmp_path / "scores.parquet"  # Spark's layout: part files and a _SUCCESS marker
    folder.mkdir()
    frame = scores(month(0), {"F0": "PD_WATCH", "F3": "DPD_1"})
    frame.iloc[:2].to_parquet(folder / "part-00000.parquet")
    frame.iloc[2:].to_parquet(folder / "part-00001.parquet")
    (folder / "_SUCCESS").touch()
    engine = connect(state_url)
    report = record_scores(engine, folder, POLICY, queue_seconds=0)
    assert (report.rows_in, report.rows_recorded) == (4, 4)
    annotate(engine, folder, folder, report)
    annotated = pd.read_parquet(folder).set_index("facility_id")
    assert annotated["alert_status"].to_dict() == {"F0": "new", "F1": "none", "F2": "none", "F3": "new"}
    assert annotated["notify"].to_dict() == {"F0": True, "F1": False, "F2": False, "F3": True}
    assert not (tmp_path / ".scores.parquet.annotating").exists()


def test_monitoring_runs_are_remembered_and_the_latest_of_a_version_read_back(state_url):
    from crm_modes.state.monitoring_runs import latest, remember

    engine = connect(state_url)
    assert latest(engine, "crm-advisor v1") is None
    remember(engine, "crm-advisor v1", "ok", {"snapshot": "2024-01-31", "rows": 10})
    remember(engine, "crm-advisor v1", "watch", {"snapshot": "2024-02-29", "rows": 12})
    remember(engine, "crm-advisor v2", "ok", {"snapshot": "2024-03-31", "rows": 1})
    assert latest(engine, "crm-advisor v1") == {"snapshot": "2024-02-29", "rows": 12}
    assert latest(engine, "crm-advisor v2") == {"snapshot": "2024-03-31", "rows": 1}
