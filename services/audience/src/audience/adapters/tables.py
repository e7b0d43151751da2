"""The audience database's tables (SQLAlchemy Core). The schema itself is created by the hand-written
migrations in `migrations/versions`; keep the two in step."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

lists = sa.Table(
    "lists",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("account_id", "name", name="uq_lists_account_name"),
)

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("list_id", sa.BigInteger, sa.ForeignKey("lists.id", ondelete="CASCADE"), nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("first_name", sa.Text),
    sa.Column("last_name", sa.Text),
    sa.Column("attributes", JSONB, nullable=False, server_default="{}"),
    sa.Column("status", sa.Text, nullable=False, server_default="subscribed"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("list_id", "email", name="uq_subscribers_list_email"),
    sa.CheckConstraint(
        "status IN ('subscribed', 'unsubscribed', 'bounced', 'complained')", name="ck_subscribers_status"
    ),
)

list_status_counts = sa.Table(
    "list_status_counts",
    metadata,
    sa.Column("list_id", sa.BigInteger, sa.ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("status", sa.Text, primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
)

imports = sa.Table(
    "imports",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("list_id", sa.BigInteger, sa.ForeignKey("lists.id", ondelete="CASCADE"), nullable=False),
    sa.Column("mode", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="queued"),
    sa.Column("file_name", sa.Text, nullable=False, server_default=""),
    sa.Column("processed", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("imported", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("updated", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("skipped", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("error_count", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("errors", JSONB, nullable=False, server_default="[]"),
    sa.Column("detail", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
)

suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("account_id", sa.Text, primary_key=True),
    sa.Column("email", sa.Text, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
