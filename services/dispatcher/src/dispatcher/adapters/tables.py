"""The dispatcher's table (SQLAlchemy Core); the migrations in `migrations/versions` create it: keep
the two in step."""

from __future__ import annotations

import sqlalchemy as sa

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
)
