"""Alerts with a lifecycle (one open alert per facility and topic) and their audit trail.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

KEY = sa.BigInteger().with_variant(sa.Integer, "sqlite")
OPEN = sa.text("status <> 'resolved'")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", KEY, primary_key=True, autoincrement=True),
        sa.Column("facility_id", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("first_seen", sa.Date, nullable=False),
        sa.Column("last_seen", sa.Date, nullable=False),
        sa.Column("last_notified", sa.Date),
        sa.Column("clear_streak", sa.Integer, nullable=False),
        sa.Column("resolved_on", sa.Date),
        sa.Column("acknowledged_by", sa.String(200)),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.Column("note", sa.Text),
    )
    op.create_index(
        "one_open_alert_per_facility_topic",
        "alerts",
        ["facility_id", "topic"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_index("alerts_by_status", "alerts", ["status"])
    op.create_table(
        "alert_events",
        sa.Column("id", KEY, primary_key=True, autoincrement=True),
        sa.Column("alert_id", KEY, sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("facility_id", sa.String(64), nullable=False),
        sa.Column("snapshot_date", sa.Date),
        sa.Column("run_id", sa.String(36)),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("notified", sa.Boolean, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(200)),
        sa.Column("note", sa.Text),
    )
    op.create_index("events_by_facility", "alert_events", ["facility_id", "snapshot_date"])


def downgrade() -> None:
    op.drop_table("alert_events")
    op.drop_table("alerts")
