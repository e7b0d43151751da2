"""Failed login attempts, by address and by client, for the login throttle.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
    )
    # The throttle's one question: this key's failures since a moment.
    op.create_index("login_failures_by_key", "login_failures", ["key", "failed_at"])


def downgrade() -> None:
    op.drop_table("login_failures")
