"""Pause, for the mailer: deliveries of a paused campaign are held (stored, acked) instead of sent,
and released (published again to the MAIL stream through the outbox) once the campaign is no longer
paused — resumed, and they are sent; cancelled, and the consumer settles them as cancelled.

Held rows are released in the same transaction that stages their messages, so a delivery is never
lost between the two; a copy published twice (a crash after the relay published, before it deleted
its outbox rows) is absorbed by the delivery ledger's claim like any duplicate.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence

from mailstify_contracts import DeliverEmail, decode_event, subjects

from ..ports import CampaignControl, MailerUnitOfWork

log = logging.getLogger(__name__)

# Held deliveries released per transaction.
RELEASE_CHUNK = 500


def released_msg_id(event: DeliverEmail) -> str:
    """A fresh msg id: the original one is still inside the MAIL stream's duplicate window and would
    make JetStream drop the released copy."""
    key = subjects.deliver_msg_id(event.campaign_id, event.recipient.subscriber_id, event.round)
    return f"{key}:released:{uuid.uuid4().hex[:12]}"


class HoldService:
    def __init__(self, unit_of_work: Callable[[], MailerUnitOfWork], control: CampaignControl):
        self._unit_of_work = unit_of_work
        self._control = control

    async def hold(self, deliveries: Sequence[DeliverEmail]) -> None:
        async with self._unit_of_work() as uow:
            await uow.held.hold(deliveries)
            await uow.commit()

    async def release_unpaused(self) -> int:
        """Release the held deliveries of every campaign that is no longer paused; how many."""
        async with self._unit_of_work() as uow:
            campaigns = await uow.held.held_campaigns()
        released = 0
        for campaign_id in campaigns:
            if await self._control.state(campaign_id) == "paused":
                continue
            while True:
                async with self._unit_of_work() as uow:
                    messages = await uow.held.release(campaign_id, RELEASE_CHUNK)
                    for message in messages:
                        event = decode_event(message)
                        if isinstance(event, DeliverEmail):
                            uow.emit(event, subjects.mail_deliver(campaign_id), msg_id=released_msg_id(event))
                    await uow.commit()
                released += len(messages)
                if len(messages) < RELEASE_CHUNK:
                    break
            log.info("released the held deliveries of campaign %s", campaign_id)
        return released
