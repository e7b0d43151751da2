"""The body of every service's alembic `env.py`: online migrations with a synchronous psycopg
connection, serialised across replicas by a PostgreSQL advisory lock."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

MIGRATION_LOCK_KEY = 727_001  # arbitrary, constant: one migration at a time per database


def run_migrations() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        try:
            context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
    engine.dispose()
