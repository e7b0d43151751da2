"""The `claimed` status: a delivery reserved by a replica but not on the wire yet, so that a crash
leaves only the messages on the wire `unknown` (the others are claimed again and sent).
"""

from alembic import op

revision = "0003"
down_revision = "0002"

_STATUSES_0002 = "status IN ('sending', 'sent', 'failed', 'retry', 'unknown', 'cancelled')"
_STATUSES_0003 = "status IN ('claimed', 'sending', 'sent', 'failed', 'retry', 'unknown', 'cancelled')"


def upgrade() -> None:
    op.drop_constraint("deliveries_status_check", "deliveries", type_="check")
    op.create_check_constraint("deliveries_status_check", "deliveries", _STATUSES_0003)


def downgrade() -> None:
    # A claim never went out: retrying it is what the older code would do.
    op.execute("UPDATE deliveries SET status = 'retry' WHERE status = 'claimed'")
    op.drop_constraint("deliveries_status_check", "deliveries", type_="check")
    op.create_check_constraint("deliveries_status_check", "deliveries", _STATUSES_0002)
