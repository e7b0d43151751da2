"""Account settings: the default sender a new campaign starts with.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("accounts", sa.Column("default_from_name", sa.Text))
    op.add_column("accounts", sa.Column("default_from_email", sa.Text))


def downgrade() -> None:
    op.drop_column("accounts", "default_from_email")
    op.drop_column("accounts", "default_from_name")
