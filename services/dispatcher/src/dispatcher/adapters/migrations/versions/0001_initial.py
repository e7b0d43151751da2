"""Initial schema: fan-out progress, the outbox.
"""

import sqlalchemy as sa
from alembic import op

from mailstify_messaging.migrations import create_outbox, drop_outbox

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_outbox()
    op.create_table(
        "fanouts",
        sa.Column("campaign_id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("list_id", sa.Text, nullable=False),
        sa.Column("up_to", sa.Text),
        sa.Column("last_subscriber_id", sa.Text),
        sa.Column("published", sa.Integer, nullable=False, server_default="0"),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("fanouts")
    drop_outbox()
