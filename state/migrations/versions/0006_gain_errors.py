"""Each decision remembers the standard error of each mode's gain over today's, where the economics
ask a move to beat it (``move_confidence``): how sure the recommendation was when it was made.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = ("gain_error_basic", "gain_error_reactive", "gain_error_responsible")


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
