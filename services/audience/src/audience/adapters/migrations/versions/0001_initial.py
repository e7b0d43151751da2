"""Initial schema: the outbox, lists and subscribers.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from mailstify_messaging.migrations import create_outbox, drop_outbox

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_outbox()
    op.create_table(
        "lists",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # Names are unique per account (listmonk allows duplicates): a campaign form that offers two
        # "Newsletter" lists invites sending to the wrong one, and a double-clicked "create" makes one list.
        sa.UniqueConstraint("account_id", "name", name="uq_lists_account_name"),
    )
    # The account's list page: account_id = ? AND id > ? ORDER BY id.
    op.create_index("ix_lists_account_id_id", "lists", ["account_id", "id"])
    op.create_table(
        "subscribers",
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
    # Keyset pages of a list's subscribers (any status), and the list's max id for the recipients snapshot.
    op.create_index("ix_subscribers_list_id_id", "subscribers", ["list_id", "id"])
    # The recipients cursor and subscriber_count only ever look at subscribed rows: a partial index
    # keeps both an index-only range scan even when a list has many unsubscribed/bounced members.
    op.create_index(
        "ix_subscribers_subscribed",
        "subscribers",
        ["list_id", "id"],
        postgresql_where=sa.text("status = 'subscribed'"),
    )


def downgrade() -> None:
    op.drop_table("subscribers")
    op.drop_table("lists")
    drop_outbox()
