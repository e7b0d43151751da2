"""The page being published: recorded before its first message, so a resume republishes exactly it.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("fanouts", sa.Column("pending_recipients", JSONB))
    op.add_column("fanouts", sa.Column("pending_next_after", sa.Text))


def downgrade() -> None:
    op.drop_column("fanouts", "pending_next_after")
    op.drop_column("fanouts", "pending_recipients")
