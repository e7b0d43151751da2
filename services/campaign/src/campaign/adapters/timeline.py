"""The campaign timeline on PostgreSQL: milestones appended with the trace that was current, and
delivery-path problems counted per (campaign, reason) by upsert."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from opentelemetry import trace
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.timeline import DeferralTally, Milestone
from .tables import campaign_deferrals, campaign_timeline

# A reason is the mailer's words; a pathological one must not bloat the key.
MAX_REASON = 500


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class SqlTimelineLog:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def add(self, milestones: Sequence[Milestone]) -> None:
        if not milestones:
            return
        trace_id = current_trace_id()
        await self.session.execute(
            sa.insert(campaign_timeline),
            [
                {
                    "campaign_id": m.campaign_id,
                    "at": m.at,
                    "kind": m.kind,
                    "status": m.status,
                    "detail": m.detail,
                    "trace_id": m.trace_id or trace_id,
                }
                for m in milestones
            ],
        )

    async def count_deferrals(self, deferrals: Sequence[tuple[str, str, int]], now: datetime) -> None:
        if not deferrals:
            return
        statement = insert(campaign_deferrals).values(
            [
                {"campaign_id": c, "reason": reason[:MAX_REASON], "count": n, "first_at": now, "last_at": now}
                for c, reason, n in deferrals
            ]
        )
        statement = statement.on_conflict_do_update(
            index_elements=["campaign_id", "reason"],
            set_={"count": campaign_deferrals.c.count + statement.excluded.count, "last_at": statement.excluded.last_at},
        )
        await self.session.execute(statement)

    async def milestones(self, campaign_id: str) -> list[Milestone]:
        query = (
            sa.select(campaign_timeline)
            .where(campaign_timeline.c.campaign_id == campaign_id)
            .order_by(campaign_timeline.c.id)
        )
        return [
            Milestone(row.campaign_id, row.at, row.kind, row.status, row.detail, row.trace_id)
            for row in await self.session.execute(query)
        ]

    async def deferrals(self, campaign_id: str) -> list[DeferralTally]:
        query = (
            sa.select(campaign_deferrals)
            .where(campaign_deferrals.c.campaign_id == campaign_id)
            .order_by(campaign_deferrals.c.first_at, campaign_deferrals.c.reason)
        )
        return [
            DeferralTally(row.reason, row.count, row.first_at, row.last_at)
            for row in await self.session.execute(query)
        ]
