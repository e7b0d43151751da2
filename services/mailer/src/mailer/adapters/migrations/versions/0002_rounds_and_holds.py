"""Delivery rounds (retry-failed sends a recipient again in a later round), the `cancelled` status,
and the deliveries held while their campaign is paused.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

_STATUSES_0001 = "status IN ('sending', 'sent', 'failed', 'retry', 'unknown')"
_STATUSES_0002 = "status IN ('sending', 'sent', 'failed', 'retry', 'unknown', 'cancelled')"


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("round", sa.Integer, nullable=False, server_default="0"))
    op.drop_constraint("deliveries_status_check", "deliveries", type_="check")
    op.create_check_constraint("deliveries_status_check", "deliveries", _STATUSES_0002)
    op.create_table(
        "held_deliveries",
        sa.Column("campaign_id", sa.Text, nullable=False),
        sa.Column("subscriber_id", sa.Text, nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        # The DeliverEmail as received, published again when the campaign is resumed or cancelled.
        sa.Column("message", sa.LargeBinary, nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("campaign_id", "subscriber_id", "round", name="held_deliveries_pkey"),
    )


def downgrade() -> None:
    op.drop_table("held_deliveries")
    op.execute("UPDATE deliveries SET status = 'failed' WHERE status = 'cancelled'")
    op.drop_constraint("deliveries_status_check", "deliveries", type_="check")
    op.create_check_constraint("deliveries_status_check", "deliveries", _STATUSES_0001)
    op.drop_column("deliveries", "round")
