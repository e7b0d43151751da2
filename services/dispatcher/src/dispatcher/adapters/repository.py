"""PostgreSQL repository of fan-outs, on the unit of work's session."""

from __future__ import annotations

from dataclasses import asdict, fields

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.fanout import Fanout
from .tables import fanouts

_FIELDS = [f.name for f in fields(Fanout)]


class SqlFanoutRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def get_or_create(self, fanout: Fanout) -> Fanout:
        # ON CONFLICT DO NOTHING: a redelivered request (or a second replica) finds the existing
        # row and resumes it instead of failing or starting over.
        await self.session.execute(
            insert(fanouts).values(**asdict(fanout)).on_conflict_do_nothing(index_elements=["campaign_id"])
        )
        row = (await self.session.execute(sa.select(fanouts).where(fanouts.c.campaign_id == fanout.campaign_id))).one()
        return Fanout(**{name: getattr(row, name) for name in _FIELDS})

    async def save(self, fanout: Fanout) -> bool:
        # Compare-and-set on the version read: of two workers on one fan-out, only the first to
        # checkpoint a step wins; the other sees 0 rows and stops.
        result = await self.session.execute(
            sa.update(fanouts)
            .where(fanouts.c.campaign_id == fanout.campaign_id, fanouts.c.version == fanout.version)
            .values(
                up_to=fanout.up_to,
                last_subscriber_id=fanout.last_subscriber_id,
                published=fanout.published,
                completed_at=fanout.completed_at,
                failed_at=fanout.failed_at,
                failure_reason=fanout.failure_reason,
                version=fanout.version + 1,
            )
        )
        if result.rowcount != 1:
            return False
        fanout.version += 1
        return True
