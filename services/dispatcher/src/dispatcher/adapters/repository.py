"""PostgreSQL repository of fan-outs, on the unit of work's session."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from mailstify_contracts import Recipient

from ..domain.fanout import Fanout, PendingPage
from .tables import fanouts

# The columns that hold a Fanout field as it is; the pending page is stored in two columns of its own.
_PLAIN_FIELDS = [f.name for f in fields(Fanout) if f.name != "pending"]


def _pending_columns(pending: PendingPage | None) -> dict[str, Any]:
    if pending is None:
        return {"pending_recipients": None, "pending_next_after": None}
    return {
        "pending_recipients": [r.model_dump(mode="json") for r in pending.recipients],
        "pending_next_after": pending.next_after,
    }


def _pending_of(row: sa.Row) -> PendingPage | None:
    if row.pending_recipients is None:
        return None
    return PendingPage(
        recipients=tuple(Recipient.model_validate(r) for r in row.pending_recipients),
        next_after=row.pending_next_after,
    )


class SqlFanoutRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def get_or_create(self, fanout: Fanout) -> Fanout:
        # ON CONFLICT DO NOTHING: a redelivered request (or a second replica) finds the existing
        # row and resumes it instead of failing or starting over.
        values = {name: getattr(fanout, name) for name in _PLAIN_FIELDS} | _pending_columns(fanout.pending)
        await self.session.execute(insert(fanouts).values(**values).on_conflict_do_nothing(index_elements=["campaign_id"]))
        row = (await self.session.execute(sa.select(fanouts).where(fanouts.c.campaign_id == fanout.campaign_id))).one()
        return Fanout(**{name: getattr(row, name) for name in _PLAIN_FIELDS}, pending=_pending_of(row))

    async def save(self, fanout: Fanout) -> bool:
        # Compare-and-set on the version read: of two workers on one fan-out, only the first to
        # save a step wins; the other sees 0 rows and stops.
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
                **_pending_columns(fanout.pending),
            )
        )
        if result.rowcount != 1:
            return False
        fanout.version += 1
        return True
