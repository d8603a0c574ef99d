"""Each decision remembers the probability the logging policy gave the mode applied, so that a bank's
own later off-policy evaluation of its recorded decisions has what it needs.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("assigned_propensity", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("assigned_propensity")
