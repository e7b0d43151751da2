"""The send rate limit's token buckets, shared by every mailer replica (decision record 0019)."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "send_rate_buckets",
        # `*` (the overall limit) or `domain:<recipient domain>`.
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        # Epoch seconds on the database's clock, the one clock every replica shares.
        sa.Column("updated_at", sa.Float, nullable=False),
        # A throttled domain's slow-down: its rate is base × factor, climbing back after the hold.
        sa.Column("slow_factor", sa.Float, nullable=False, server_default="1"),
        sa.Column("slowed_at", sa.Float, nullable=False, server_default="0"),
        sa.Column("slowed_until", sa.Float, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("send_rate_buckets")
