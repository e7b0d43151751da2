"""PostgreSQL repositories for campaigns and the result ledger, on the unit of work's session."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.model import Campaign, Outcome
from ..service_layer.ports import DeliveryRecord
from .tables import campaign_results, campaign_unsubscribes, campaigns

_CAMPAIGN_FIELDS = [f.name for f in fields(Campaign)]
# Set once at creation; everything else is rewritten by `save`.
_IMMUTABLE = {"id", "account_id", "created_at"}


def _campaign(row: sa.Row) -> Campaign:
    return Campaign(**{name: getattr(row, name) for name in _CAMPAIGN_FIELDS})


class SqlCampaignRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def add(self, campaign: Campaign) -> None:
        await self.session.execute(sa.insert(campaigns).values(**asdict(campaign)))

    async def get(self, account_id: str, campaign_id: str, *, for_update: bool = False) -> Campaign | None:
        query = sa.select(campaigns).where(campaigns.c.id == campaign_id, campaigns.c.account_id == account_id)
        if for_update:
            # Serialises state transitions of one campaign: of two concurrent sends, the second reads
            # the row only after the first committed, and sees it `sending`.
            query = query.with_for_update()
        row = (await self.session.execute(query)).one_or_none()
        return _campaign(row) if row else None

    async def lock_many(self, campaign_ids: Sequence[str]) -> dict[str, Campaign]:
        """Lock the campaigns an event batch touches, in id order so that two batches locking
        overlapping sets cannot deadlock; unknown ids are simply absent."""
        query = (
            sa.select(campaigns)
            .where(campaigns.c.id.in_(sorted(set(campaign_ids))))
            .order_by(campaigns.c.id)
            .with_for_update()
        )
        return {row.id: _campaign(row) for row in await self.session.execute(query)}

    async def save(self, campaign: Campaign) -> None:
        values = {k: v for k, v in asdict(campaign).items() if k not in _IMMUTABLE}
        await self.session.execute(sa.update(campaigns).where(campaigns.c.id == campaign.id).values(**values))

    async def delete(self, campaign_id: str) -> None:
        await self.session.execute(sa.delete(campaigns).where(campaigns.c.id == campaign_id))

    async def list_newest_first(
        self, account_id: str, limit: int, before: tuple[datetime, str] | None
    ) -> list[Campaign]:
        query = (
            sa.select(campaigns)
            .where(campaigns.c.account_id == account_id)
            .order_by(campaigns.c.created_at.desc(), campaigns.c.id.desc())
            .limit(limit)
        )
        if before is not None:
            # Row comparison = keyset paging on the (account, created_at DESC, id DESC) index.
            query = query.where(sa.tuple_(campaigns.c.created_at, campaigns.c.id) < sa.tuple_(*before))
        return [_campaign(row) for row in await self.session.execute(query)]


class SqlResultLedger:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def record(self, outcomes: Sequence[Outcome], now: datetime) -> list[tuple[str, str]]:
        """Insert outcomes not seen before; return (campaign_id, outcome) of exactly the rows inserted.

        ON CONFLICT DO NOTHING + RETURNING is what makes counting idempotent: a redelivered or
        duplicated outcome inserts nothing, so it is returned nowhere and counted nowhere."""
        if not outcomes:
            return []
        statement = (
            insert(campaign_results)
            .values(
                [
                    {
                        "campaign_id": o.campaign_id,
                        "subscriber_id": o.subscriber_id,
                        "outcome": o.outcome,
                        "email": o.email,
                        "detail": o.detail,
                        "recorded_at": now,
                    }
                    for o in outcomes
                ]
            )
            .on_conflict_do_nothing(index_elements=["campaign_id", "subscriber_id"])
            .returning(campaign_results.c.campaign_id, campaign_results.c.outcome)
        )
        return [(row.campaign_id, row.outcome) for row in await self.session.execute(statement)]

    async def page(
        self, campaign_id: str, outcome: str | None, limit: int, after: tuple[datetime, str] | None
    ) -> list[DeliveryRecord]:
        query = (
            sa.select(campaign_results)
            .where(campaign_results.c.campaign_id == campaign_id)
            .order_by(campaign_results.c.recorded_at, campaign_results.c.subscriber_id)
            .limit(limit)
        )
        if outcome is not None:
            query = query.where(campaign_results.c.outcome == outcome)
        if after is not None:
            # Keyset on (recorded_at, subscriber_id): outcomes keep arriving while someone pages.
            query = query.where(
                sa.tuple_(campaign_results.c.recorded_at, campaign_results.c.subscriber_id) > sa.tuple_(*after)
            )
        return [
            DeliveryRecord(
                subscriber_id=row.subscriber_id,
                email=row.email,
                status=row.outcome,
                detail=row.detail,
                recorded_at=row.recorded_at,
            )
            for row in await self.session.execute(query)
        ]


class SqlUnsubscribeLedger:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def record(self, unsubscribes: Sequence[tuple[str, str]], now: datetime) -> list[str]:
        """As the result ledger: ON CONFLICT DO NOTHING + RETURNING, so a (campaign, subscriber) pair
        is counted once however often its event arrives."""
        if not unsubscribes:
            return []
        statement = (
            insert(campaign_unsubscribes)
            .values([{"campaign_id": c, "subscriber_id": s, "recorded_at": now} for c, s in unsubscribes])
            .on_conflict_do_nothing(index_elements=["campaign_id", "subscriber_id"])
            .returning(campaign_unsubscribes.c.campaign_id)
        )
        return [row.campaign_id for row in await self.session.execute(statement)]
