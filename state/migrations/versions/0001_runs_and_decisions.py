"""Runs, recorded snapshots and the append-only decisions.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

KEY = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("input_path", sa.Text, nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("model_versions", sa.Text, nullable=False),
        sa.Column("snapshots", sa.Text, nullable=False),
        sa.Column("rows_in", sa.BigInteger, nullable=False),
        sa.Column("rows_recorded", sa.BigInteger, nullable=False),
        sa.Column("rows_quarantined", sa.BigInteger, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_table(
        "snapshots",
        sa.Column("snapshot_date", sa.Date, primary_key=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True)),
        sa.Column("rows", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "decisions",
        sa.Column("id", KEY, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("facility_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64)),
        sa.Column("snapshot_date", sa.Date, nullable=False),
        sa.Column("model_version", sa.String(200), nullable=False),
        sa.Column("committee_mode", sa.String(16)),
        sa.Column("recommended_mode", sa.String(16)),
        sa.Column("assigned_mode", sa.String(16)),
        sa.Column("value_basic", sa.Float),
        sa.Column("value_reactive", sa.Float),
        sa.Column("value_responsible", sa.Float),
        sa.Column("default_probability", sa.Float),
        sa.Column("churn_probability", sa.Float),
        sa.Column("risk_grade", sa.String(8)),
        sa.Column("alert_level", sa.String(16)),
        sa.Column("alert_codes", sa.Text),
        sa.UniqueConstraint("facility_id", "snapshot_date", name="one_decision_per_facility_month"),
    )
    op.create_index("decisions_by_snapshot", "decisions", ["snapshot_date"])


def downgrade() -> None:
    op.drop_table("decisions")
    op.drop_table("snapshots")
    op.drop_table("runs")
