"""The account's suppression list on PostgreSQL: one row per address, whatever its lists."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.model import Suppression
from .tables import suppressions


class SqlSuppressionRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def add(self, account_id: str, email: str, reason: str, detail: str) -> bool:
        """False when the address was suppressed already (a redelivered bounce changes nothing)."""
        statement = (
            insert(suppressions)
            .values(account_id=account_id, email=email, reason=reason, detail=detail)
            .on_conflict_do_nothing(index_elements=[suppressions.c.account_id, suppressions.c.email])
        )
        return (await self.session.execute(statement)).rowcount == 1

    async def page(self, account_id: str, after: str, limit: int) -> list[Suppression]:
        # Keyset on the primary key (account_id, email).
        statement = (
            sa.select(suppressions)
            .where(suppressions.c.account_id == account_id, suppressions.c.email > after)
            .order_by(suppressions.c.email)
            .limit(limit + 1)
        )
        return [Suppression(**row._mapping) for row in await self.session.execute(statement)]

    async def remove(self, account_id: str, email: str) -> Suppression | None:
        statement = (
            sa.delete(suppressions)
            .where(suppressions.c.account_id == account_id, suppressions.c.email == email)
            .returning(*suppressions.c)
        )
        row = (await self.session.execute(statement)).first()
        return Suppression(**row._mapping) if row else None
