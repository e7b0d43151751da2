"""The campaign timeline: fan-out and first/last delivery times on the campaign, its milestones
(with the trace id current when each happened, the send request's among them) and its delivery-path
problems counted per reason.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"

_TIMES = ("fanned_out_at", "first_delivery_at", "last_delivery_at")


def upgrade() -> None:
    for name in _TIMES:
        op.add_column("campaigns", sa.Column(name, sa.DateTime(timezone=True)))
    op.create_table(
        "campaign_timeline",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("campaign_id", sa.Text, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("trace_id", sa.Text),
    )
    op.create_index("campaign_timeline_by_campaign", "campaign_timeline", ["campaign_id", "id"])
    op.create_table(
        "campaign_deferrals",
        sa.Column("campaign_id", sa.Text, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("reason", sa.Text, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("campaign_deferrals")
    op.drop_index("campaign_timeline_by_campaign", table_name="campaign_timeline")
    op.drop_table("campaign_timeline")
    for name in _TIMES:
        op.drop_column("campaigns", name)
