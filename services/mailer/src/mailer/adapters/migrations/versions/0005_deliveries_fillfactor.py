"""Room on each page of `deliveries` for its rows' updates (decision record 0029).

A delivery row is written three times: inserted `claimed`, updated `sending`, then updated with its
outcome. Packed full (the default fillfactor of 100), each update finds no room on the row's page,
so PostgreSQL writes the new version elsewhere and a new entry in the primary key's index for it.
With room left on the page, and no indexed column changed, the updates are HOT: no index write,
and the dead versions are pruned within the page.
"""

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    # Applies to pages written from now on; existing rows keep their places until rewritten.
    op.execute("ALTER TABLE deliveries SET (fillfactor = 50)")


def downgrade() -> None:
    op.execute("ALTER TABLE deliveries RESET (fillfactor)")
