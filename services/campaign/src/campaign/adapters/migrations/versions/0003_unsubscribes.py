"""Unsubscribes per campaign: a ledger of (campaign, subscriber) and the count it feeds.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("unsubscribe_count", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "campaign_unsubscribes",
        sa.Column("campaign_id", sa.Text, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("subscriber_id", sa.Text, primary_key=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("campaign_unsubscribes")
    op.drop_column("campaigns", "unsubscribe_count")
