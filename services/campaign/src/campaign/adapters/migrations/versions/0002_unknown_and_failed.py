"""Outcomes of unknown delivery, `last_error`, and the `failed` status (decision 0007).
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

_STATUSES_0001 = "status IN ('draft', 'scheduled', 'sending', 'paused', 'sent', 'cancelled')"
_STATUSES_0002 = "status IN ('draft', 'scheduled', 'sending', 'paused', 'sent', 'cancelled', 'failed')"


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("unknown_count", sa.Integer, nullable=False, server_default="0"))
    op.add_column("campaigns", sa.Column("last_error", sa.Text))
    op.drop_constraint("campaigns_status", "campaigns", type_="check")
    op.create_check_constraint("campaigns_status", "campaigns", _STATUSES_0002)
    op.drop_constraint("campaign_results_outcome", "campaign_results", type_="check")
    op.create_check_constraint("campaign_results_outcome", "campaign_results", "outcome IN ('sent', 'failed', 'unknown')")


def downgrade() -> None:
    op.execute("DELETE FROM campaign_results WHERE outcome = 'unknown'")
    op.drop_constraint("campaign_results_outcome", "campaign_results", type_="check")
    op.create_check_constraint("campaign_results_outcome", "campaign_results", "outcome IN ('sent', 'failed')")
    op.execute("UPDATE campaigns SET status = 'cancelled' WHERE status = 'failed'")
    op.drop_constraint("campaigns_status", "campaigns", type_="check")
    op.create_check_constraint("campaigns_status", "campaigns", _STATUSES_0001)
    op.drop_column("campaigns", "last_error")
    op.drop_column("campaigns", "unknown_count")
