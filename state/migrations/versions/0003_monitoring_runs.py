"""Monitoring runs: the book's levels each run saw, so that the next run compares month on month.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

KEY = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitoring_runs",
        sa.Column("id", KEY, primary_key=True, autoincrement=True),
        sa.Column("model_version", sa.String(200), nullable=False),
        sa.Column("snapshot_date", sa.Date),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("figures", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("monitoring_by_version", "monitoring_runs", ["model_version", "snapshot_date"])


def downgrade() -> None:
    op.drop_table("monitoring_runs")
