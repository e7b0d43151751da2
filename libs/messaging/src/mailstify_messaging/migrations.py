"""Alembic helpers for the tables this library owns inside each service's database."""

from __future__ import annotations

from alembic import op

from .outbox import OUTBOX_TABLE, outbox_columns


def create_outbox() -> None:
    op.create_table(OUTBOX_TABLE, *outbox_columns())


def drop_outbox() -> None:
    op.drop_table(OUTBOX_TABLE)
