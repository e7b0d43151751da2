"""PostgreSQL repositories for campaigns and the result ledger, on the unit of work's session."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.model import Campaign, Outcome, OutcomeKind, RecordedOutcome
from ..service_layer.ports import DeliveryRecord
from .tables import campaign_results, campaign_unsubscribes, campaigns

_CAMPAIGN_FIELDS = [f.name for f in fields(Campaign)]

# A batch of outcomes in one statement whose text never changes: the ids travel as parallel arrays
# and are `unnest`ed server-side, so neither SQLAlchemy nor psycopg compiles anything per outcome (a
# multi-row VALUES was a third of this service's CPU per email). See `SqlResultLedger.record`.
_RECORD_RESULTS = sa.text(
    """
    INSERT INTO campaign_results AS r (campaign_id, subscriber_id, outcome, email, detail, recorded_at, round)
    SELECT campaign_id, subscriber_id, outcome, email, detail, :recorded_at, round
    FROM unnest(
        CAST(:campaign_ids AS text[]), CAST(:subscriber_ids AS text[]), CAST(:outcomes AS text[]),
        CAST(:emails AS text[]), CAST(:details AS text[]), CAST(:rounds AS int[])
    ) AS o(campaign_id, subscriber_id, outcome, email, detail, round)
    ON CONFLICT (campaign_id, subscriber_id) DO UPDATE SET
        outcome = excluded.outcome, detail = excluded.detail, recorded_at = excluded.recorded_at,
        round = excluded.round
    WHERE r.outcome = :retrying AND r.round < excluded.round
    RETURNING r.campaign_id, r.subscriber_id, r.outcome
    """
)
# A result row taken back by retry-failed, waiting for the next round's outcome.
RETRYING = "retrying"
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

    async def lock_due(self, now: datetime, limit: int) -> list[Campaign]:
        """Scheduled campaigns whose time has come, locked; SKIP LOCKED lets two replicas of the
        service share the work without waiting on each other (partial index `campaigns_due`)."""
        query = (
            sa.select(campaigns)
            .where(campaigns.c.status == "scheduled", campaigns.c.send_at <= now)
            .order_by(campaigns.c.send_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_campaign(row) for row in await self.session.execute(query)]

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

    async def record(self, outcomes: Sequence[Outcome], now: datetime) -> list[RecordedOutcome]:
        """Insert outcomes not seen before, and settle recipients taken back for a later round; return
        exactly the rows written.

        ON CONFLICT ... WHERE + RETURNING is what makes counting idempotent: a redelivered or duplicated
        outcome writes nothing, so it is returned nowhere and counted nowhere. Only a `retrying` row
        is overwritten, and only by an outcome of a later round than the one that had settled it, so a
        late copy of the earlier round's outcome cannot settle the retry."""
        if not outcomes:
            return []
        by_key = {(o.campaign_id, o.subscriber_id): o for o in outcomes}
        batch = by_key.values()
        result = await self.session.execute(
            _RECORD_RESULTS,
            {
                "campaign_ids": [o.campaign_id for o in batch],
                "subscriber_ids": [o.subscriber_id for o in batch],
                "outcomes": [o.outcome for o in batch],
                "emails": [o.email for o in batch],
                "details": [o.detail for o in batch],
                "rounds": [o.round for o in batch],
                "recorded_at": now,
                "retrying": RETRYING,
            },
        )
        return [
            RecordedOutcome(row.campaign_id, row.outcome, by_key[(row.campaign_id, row.subscriber_id)].hard_bounce)
            for row in result
        ]

    async def subscribers_with(
        self, campaign_id: str, outcomes: Sequence[OutcomeKind], limit: int, after: str | None
    ) -> list[str]:
        """Subscriber ids of the campaign whose outcome is one of `outcomes`, in id order after `after`
        (keyset on the primary key)."""
        query = (
            sa.select(campaign_results.c.subscriber_id)
            .where(campaign_results.c.campaign_id == campaign_id, campaign_results.c.outcome.in_(outcomes))
            .order_by(campaign_results.c.subscriber_id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(campaign_results.c.subscriber_id > after)
        return list((await self.session.execute(query)).scalars())

    async def take_back(
        self, campaign_id: str, subscriber_ids: Sequence[str], outcomes: Sequence[OutcomeKind]
    ) -> list[tuple[str, OutcomeKind]]:
        """Mark these recipients `retrying` (only those still settled as one of `outcomes`); returns
        (subscriber_id, previous outcome) of each row taken, so the counts move by exactly those."""
        previous = sa.alias(campaign_results, "previous")
        statement = (
            sa.update(campaign_results)
            .where(
                campaign_results.c.campaign_id == previous.c.campaign_id,
                campaign_results.c.subscriber_id == previous.c.subscriber_id,
                previous.c.campaign_id == campaign_id,
                previous.c.subscriber_id.in_(list(subscriber_ids)),
                previous.c.outcome.in_(outcomes),
            )
            .values(outcome=RETRYING)
            .returning(campaign_results.c.subscriber_id, previous.c.outcome)
        )
        return [(row[0], row[1]) for row in await self.session.execute(statement)]

    async def page(
        self,
        campaign_id: str,
        outcome: str | None,
        limit: int,
        after: tuple[datetime, str] | None,
        search: str | None = None,
    ) -> list[DeliveryRecord]:
        query = (
            sa.select(campaign_results)
            .where(campaign_results.c.campaign_id == campaign_id)
            .order_by(campaign_results.c.recorded_at, campaign_results.c.subscriber_id)
            .limit(limit)
        )
        if outcome is not None:
            query = query.where(campaign_results.c.outcome == outcome)
        if search:
            # A substring of the address, case-insensitive; LIKE's wildcards in the input are literal.
            escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(sa.func.lower(campaign_results.c.email).like(f"%{escaped}%", escape="\\"))
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
                round=row.round,
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
