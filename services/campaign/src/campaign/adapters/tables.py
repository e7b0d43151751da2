"""The campaign service's tables (SQLAlchemy Core). The migration in `migrations/versions` creates
them; keep the two in step."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

campaigns = sa.Table(
    "campaigns",
    metadata,
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
    sa.Column("sent_count", sa.Integer, nullable=False),
    sa.Column("failed_count", sa.Integer, nullable=False),
    sa.Column("unknown_count", sa.Integer, nullable=False),
    sa.Column("cancelled_count", sa.Integer, nullable=False),
    sa.Column("bounce_count", sa.Integer, nullable=False),
    sa.Column("unsubscribe_count", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("send_at", sa.DateTime(timezone=True)),
    sa.Column("send_requested_at", sa.DateTime(timezone=True)),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("send_round", sa.Integer, nullable=False),
    sa.Column("retry_round", sa.Integer, nullable=False),
    sa.Column("fanned_out_at", sa.DateTime(timezone=True)),
    sa.Column("first_delivery_at", sa.DateTime(timezone=True)),
    sa.Column("last_delivery_at", sa.DateTime(timezone=True)),
)

# The campaign's milestones (domain/timeline.py): a handful of rows per campaign, never one per email.
campaign_timeline = sa.Table(
    "campaign_timeline",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("campaign_id", sa.Text, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("trace_id", sa.Text),
    sa.Index("campaign_timeline_by_campaign", "campaign_id", "id"),
)

# Delivery-path problems per campaign and reason: one row per distinct reason, counted.
campaign_deferrals = sa.Table(
    "campaign_deferrals",
    metadata,
    sa.Column("campaign_id", sa.Text, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("reason", sa.Text, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
)

campaign_unsubscribes = sa.Table(
    "campaign_unsubscribes",
    metadata,
    sa.Column("campaign_id", sa.Text, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("subscriber_id", sa.Text, primary_key=True),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

campaign_results = sa.Table(
    "campaign_results",
    metadata,
    sa.Column("campaign_id", sa.Text, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("subscriber_id", sa.Text, primary_key=True),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    # The delivery round that settled it; `retrying` rows wait for a later round's outcome.
    sa.Column("round", sa.Integer, nullable=False),
)
