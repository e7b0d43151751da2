"""The status machine and exact counts: schedule time, cancelled and bounce counts, send and retry
rounds, finish time; result rows remember the delivery round that settled them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

_COUNTERS = ("cancelled_count", "bounce_count", "send_round", "retry_round")


def upgrade() -> None:
    for name in _COUNTERS:
        op.add_column("campaigns", sa.Column(name, sa.Integer, nullable=False, server_default="0"))
    op.add_column("campaigns", sa.Column("send_at", sa.DateTime(timezone=True)))
    op.add_column("campaigns", sa.Column("finished_at", sa.DateTime(timezone=True)))
    # The scheduler's query: scheduled campaigns whose time has come, oldest first.
    op.create_index(
        "campaigns_due", "campaigns", ["send_at"], postgresql_where=sa.text("status = 'scheduled'")
    )
    op.add_column("campaign_results", sa.Column("round", sa.Integer, nullable=False, server_default="0"))
    op.drop_constraint("campaign_results_outcome", "campaign_results", type_="check")
    op.create_check_constraint(
        "campaign_results_outcome",
        "campaign_results",
        "outcome IN ('sent', 'failed', 'unknown', 'cancelled', 'retrying')",
    )


def downgrade() -> None:
    op.drop_constraint("campaign_results_outcome", "campaign_results", type_="check")
    op.create_check_constraint(
        "campaign_results_outcome", "campaign_results", "outcome IN ('sent', 'failed', 'unknown')"
    )
    op.drop_column("campaign_results", "round")
    op.drop_index("campaigns_due", table_name="campaigns")
    op.drop_column("campaigns", "finished_at")
    op.drop_column("campaigns", "send_at")
    for name in _COUNTERS:
        op.drop_column("campaigns", name)
