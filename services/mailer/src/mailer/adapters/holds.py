"""Deliveries held while their campaign is paused (table `held_deliveries`, migration 0002): taken
off the MAIL stream so a long pause neither spins redeliveries nor uses up a message's deliveries,
and published again, through the outbox, once the campaign is resumed or cancelled."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mailstify_contracts import DeliverEmail

_HOLD = sa.text(
    """
    INSERT INTO held_deliveries (campaign_id, subscriber_id, round, message)
    SELECT * FROM unnest(
        CAST(:campaign_ids AS text[]), CAST(:subscriber_ids AS text[]), CAST(:rounds AS int[]),
        CAST(:messages AS bytea[])
    )
    ON CONFLICT DO NOTHING
    """
)

# SKIP LOCKED: two replicas releasing the same campaign take different rows instead of waiting.
_RELEASE = sa.text(
    """
    DELETE FROM held_deliveries WHERE ctid IN (
        SELECT ctid FROM held_deliveries WHERE campaign_id = :campaign_id
        LIMIT :limit FOR UPDATE SKIP LOCKED
    )
    RETURNING message
    """
)


class SqlHeldDeliveries:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def hold(self, deliveries: Sequence[DeliverEmail]) -> None:
        """Keep these deliveries (a copy already held is kept once), in one statement."""
        if not deliveries:
            return
        await self.session.execute(
            _HOLD,
            {
                "campaign_ids": [d.campaign_id for d in deliveries],
                "subscriber_ids": [d.recipient.subscriber_id for d in deliveries],
                "rounds": [d.round for d in deliveries],
                "messages": [d.to_json() for d in deliveries],
            },
        )

    async def held_campaigns(self) -> list[str]:
        result = await self.session.execute(sa.text("SELECT DISTINCT campaign_id FROM held_deliveries"))
        return list(result.scalars())

    async def release(self, campaign_id: str, limit: int) -> list[bytes]:
        """Take up to `limit` held deliveries of the campaign out of the table (as their messages)."""
        result = await self.session.execute(_RELEASE, {"campaign_id": campaign_id, "limit": limit})
        return [bytes(message) for message in result.scalars()]
