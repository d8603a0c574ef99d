"""The state store's tables (SQLAlchemy Core), as the migrations in ``migrations/versions`` build them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

#: Auto-incrementing keys: BIGINT on PostgreSQL, INTEGER (the rowid) on SQLite.
Key = BigInteger().with_variant(Integer, "sqlite")
metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("input_path", Text, nullable=False),
    Column("input_hash", String(64), nullable=False),
    Column("model_versions", Text, nullable=False),
    Column("snapshots", Text, nullable=False),
    Column("rows_in", BigInteger, nullable=False),
    Column("rows_recorded", BigInteger, nullable=False),
    Column("rows_quarantined", BigInteger, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False),
    Column("holder", String(200)),  # host:pid of the recorder, so the next run can tell it is dead
    Column("heartbeat_at", DateTime(timezone=True)),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("snapshot_date", Date, primary_key=True),
    Column("run_id", String(36), nullable=False),
    Column("status", String(16), nullable=False),
    Column("holder", String(200), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True)),
    Column("rows", BigInteger, nullable=False),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("run_id", String(36), nullable=False),
    Column("facility_id", String(64), nullable=False),
    Column("client_id", String(64)),
    Column("snapshot_date", Date, nullable=False),
    Column("model_version", String(200), nullable=False),
    Column("committee_mode", String(16)),
    Column("recommended_mode", String(16)),
    Column("assigned_mode", String(16)),
    # the probability the logging policy (the bank's practice, as the bundle's recorded propensity
    # reads it) gave the mode applied: for the bank's own off-policy evaluation of its decisions
    Column("assigned_propensity", Float),
    Column("value_basic", Float),
    Column("value_reactive", Float),
    Column("value_responsible", Float),
    # the standard error of each mode's gain over today's (empty unless move_confidence asks for it)
    Column("gain_error_basic", Float),
    Column("gain_error_reactive", Float),
    Column("gain_error_responsible", Float),
    Column("default_probability", Float),
    Column("churn_probability", Float),
    Column("risk_grade", String(8)),
    Column("alert_level", String(16)),
    Column("alert_codes", Text),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("facility_id", String(64), nullable=False),
    Column("topic", String(32), nullable=False),
    Column("code", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("first_seen", Date, nullable=False),
    Column("last_seen", Date, nullable=False),
    Column("last_notified", Date),
    Column("clear_streak", Integer, nullable=False),
    Column("resolved_on", Date),
    Column("acknowledged_by", String(200)),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("note", Text),
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("alert_id", Key, ForeignKey("alerts.id"), nullable=False),
    Column("facility_id", String(64), nullable=False),
    Column("snapshot_date", Date),
    Column("run_id", String(36)),
    Column("event", String(16), nullable=False),
    Column("code", String(32), nullable=False),
    Column("notified", Boolean, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("by", String(200)),
    Column("note", Text),
)

monitoring_runs = Table(
    "monitoring_runs",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("model_version", String(200), nullable=False),
    Column("snapshot_date", Date),
    Column("status", String(16), nullable=False),
    Column("figures", Text, nullable=False),  # JSON: the report's portfolio.current
    Column("at", DateTime(timezone=True), nullable=False),
)

access_log = Table(
    "access_log",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("holder", String(200), nullable=False),
    Column("action", String(32), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("rows", BigInteger, nullable=False),
)
