"""Initial schema: campaigns, the result ledger, the outbox.
"""

import sqlalchemy as sa
from alembic import op

from mailstify_messaging.migrations import create_outbox, drop_outbox

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_outbox()
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("list_id", sa.Text, nullable=False),
        sa.Column("from_name", sa.Text, nullable=False),
        sa.Column("from_email", sa.Text, nullable=False),
        sa.Column("reply_to", sa.Text),
        sa.Column("body_html", sa.Text, nullable=False),
        sa.Column("body_text", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("total", sa.Integer),
        sa.Column("sent_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("send_requested_at", sa.DateTime(timezone=True)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "status IN ('draft', 'scheduled', 'sending', 'paused', 'sent', 'cancelled')", name="campaigns_status"
        ),
    )
    # The account's campaign list, newest first, paged by (created_at, id).
    op.create_index(
        "campaigns_account_created", "campaigns", ["account_id", sa.text("created_at DESC"), sa.text("id DESC")]
    )
    op.create_table(
        "campaign_results",
        sa.Column("campaign_id", sa.Text, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("subscriber_id", sa.Text, primary_key=True),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("outcome IN ('sent', 'failed')", name="campaign_results_outcome"),
    )
    # The deliveries page of one campaign, optionally one outcome, in recording order.
    op.create_index(
        "campaign_results_page", "campaign_results", ["campaign_id", "outcome", "recorded_at", "subscriber_id"]
    )
    op.create_index("campaign_results_recorded", "campaign_results", ["campaign_id", "recorded_at", "subscriber_id"])


def downgrade() -> None:
    op.drop_table("campaign_results")
    op.drop_table("campaigns")
    drop_outbox()
