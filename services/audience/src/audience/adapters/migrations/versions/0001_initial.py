"""Initial schema.

Revision ID: 0001
Revises:
"""

from mailstify_messaging.migrations import create_outbox, drop_outbox

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox()


def downgrade() -> None:
    drop_outbox()
