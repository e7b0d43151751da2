"""Import jobs, the account's suppression list, per-status subscriber counts kept by triggers, and
an index for status-filtered pages.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"

# Statement-level triggers with transition tables: one aggregate per statement, so a million-row
# import merge costs one GROUP BY over its rows, not a million counter updates; and every path that
# changes subscribers (API, import, bounce, list deletion) keeps the counts right without knowing.
COUNT_TRIGGERS = """
CREATE FUNCTION subscriber_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO list_status_counts AS c (list_id, status, n)
    SELECT list_id, status, count(*) FROM new_rows GROUP BY list_id, status ORDER BY list_id, status
    ON CONFLICT (list_id, status) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE FUNCTION subscriber_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- No insert: a count row exists for every (list, status) that ever had a row, and on a
    -- cascaded list deletion its count rows may already be gone (nothing left to count).
    UPDATE list_status_counts AS c SET n = c.n - d.n
    FROM (SELECT list_id, status, count(*) AS n FROM old_rows GROUP BY list_id, status) AS d
    WHERE c.list_id = d.list_id AND c.status = d.status;
    RETURN NULL;
END $$;

CREATE FUNCTION subscriber_counts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO list_status_counts AS c (list_id, status, n)
    SELECT list_id, status, sum(n) FROM (
        SELECT list_id, status, count(*) AS n FROM new_rows GROUP BY list_id, status
        UNION ALL
        SELECT list_id, status, -count(*) FROM old_rows GROUP BY list_id, status
    ) AS d GROUP BY list_id, status HAVING sum(n) <> 0 ORDER BY list_id, status
    ON CONFLICT (list_id, status) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE TRIGGER subscribers_counted_on_insert AFTER INSERT ON subscribers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION subscriber_counts_inserted();
CREATE TRIGGER subscribers_counted_on_delete AFTER DELETE ON subscribers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION subscriber_counts_deleted();
CREATE TRIGGER subscribers_counted_on_update AFTER UPDATE ON subscribers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION subscriber_counts_updated();
"""


def upgrade() -> None:
    op.create_table(
        "list_status_counts",
        sa.Column("list_id", sa.BigInteger, sa.ForeignKey("lists.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("list_id", "status"),
    )
    op.execute(
        "INSERT INTO list_status_counts (list_id, status, n) "
        "SELECT list_id, status, count(*) FROM subscribers GROUP BY list_id, status"
    )
    op.execute(COUNT_TRIGGERS)
    # Status-filtered keyset pages: `list_id = ? AND status = ? AND id > ? ORDER BY id LIMIT n` is an
    # index range scan here (plan: Index Scan using ix_subscribers_list_status_id, Index Cond:
    # list_id, status, id > ?), however few rows of that status a 1M list has. The recipients cursor
    # uses it the same way with status = 'subscribed', so the partial index of 0001 is redundant.
    op.create_index("ix_subscribers_list_status_id", "subscribers", ["list_id", "status", "id"])
    op.drop_index("ix_subscribers_subscribed", table_name="subscribers")

    op.create_table(
        "imports",
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
        sa.CheckConstraint("mode IN ('skip', 'update')", name="ck_imports_mode"),
        sa.CheckConstraint("status IN ('queued', 'running', 'completed', 'failed')", name="ck_imports_status"),
    )
    # One running import per list: a second one's insert conflicts here (→ 409), race-free.
    op.create_index(
        "uq_imports_one_running_per_list",
        "imports",
        ["list_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )

    op.create_table(
        "suppressions",
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # (account_id, email): the recipients cursor's anti-join looks each address up here.
        sa.PrimaryKeyConstraint("account_id", "email"),
        sa.CheckConstraint("reason IN ('bounced', 'complained')", name="ck_suppressions_reason"),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    op.drop_table("imports")
    op.create_index(
        "ix_subscribers_subscribed", "subscribers", ["list_id", "id"], postgresql_where=sa.text("status = 'subscribed'")
    )
    op.drop_index("ix_subscribers_list_status_id", table_name="subscribers")
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER subscribers_counted_on_{trigger} ON subscribers")
    for function in ("inserted", "deleted", "updated"):
        op.execute(f"DROP FUNCTION subscriber_counts_{function}()")
    op.drop_table("list_status_counts")
