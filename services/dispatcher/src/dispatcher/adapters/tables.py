"""The dispatcher's table (SQLAlchemy Core); the migrations in `migrations/versions` create it: keep
the two in step."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

fanouts = sa.Table(
    "fanouts",
    metadata,
    sa.Column("campaign_id", sa.Text, primary_key=True),
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("list_id", sa.Text, nullable=False),
    sa.Column("up_to", sa.Text),
    sa.Column("last_subscriber_id", sa.Text),
    sa.Column("published", sa.Integer, nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
    sa.Column("failed_at", sa.DateTime(timezone=True)),
    sa.Column("failure_reason", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    # The page recorded before publishing and not yet checkpointed: its recipients (Recipient
    # snapshots, in order) and the cursor after it; NULL recipients when there is none.
    sa.Column("pending_recipients", JSONB(none_as_null=True)),
    sa.Column("pending_next_after", sa.Text),
)
