"""A fan-out that gave up: when and why (decision 0007).
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("fanouts", sa.Column("failed_at", sa.DateTime(timezone=True)))
    op.add_column("fanouts", sa.Column("failure_reason", sa.Text))


def downgrade() -> None:
    op.drop_column("fanouts", "failure_reason")
    op.drop_column("fanouts", "failed_at")
