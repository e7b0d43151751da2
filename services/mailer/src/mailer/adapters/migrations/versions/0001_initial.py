"""Initial schema: the outbox and the delivery ledger.
"""

import sqlalchemy as sa
from alembic import op

from mailstify_messaging.migrations import create_outbox, drop_outbox

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_outbox()
    op.create_table(
        "deliveries",
        sa.Column("campaign_id", sa.Text, nullable=False),
        sa.Column("subscriber_id", sa.Text, nullable=False),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("message_id", sa.Text),
        sa.Column("smtp_code", sa.Integer),
        sa.Column("smtp_reply", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("campaign_id", "subscriber_id", name="deliveries_pkey"),
        sa.CheckConstraint(
            "status IN ('sending', 'sent', 'failed', 'retry', 'unknown')", name="deliveries_status_check"
        ),
    )


def downgrade() -> None:
    op.drop_table("deliveries")
    drop_outbox()
