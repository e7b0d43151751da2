"""Deliveries JetStream gave up on (max_deliver reached): the handler crashed on the message every
time, or it was put back ("busy", 4xx) on its last delivery. Without an outcome its campaign would
stay `sending` forever, so the ledger row is settled and the outcome reported — no SMTP send.

Reported under the same msg id as the normal path (`result:{campaign}:{subscriber}`), so if a normal
outcome was published too, JetStream drops the duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mailstify_contracts import DeliverEmail

from ...domain.model import DeliveryKey, exhausted_outcome, gave_up_reason
from ..ports import GiveUp, MailerUnitOfWork
from .delivery import result_event

log = logging.getLogger(__name__)


class GiveUpService:
    def __init__(self, unit_of_work: Callable[[], MailerUnitOfWork]):
        self._unit_of_work = unit_of_work

    async def give_up(self, event: DeliverEmail, deliveries: int) -> None:
        """Record the delivery failed (or unknown, if a send was abandoned mid-way) and report it,
        unless it already has an outcome or a live replica is sending it."""
        key = DeliveryKey(event.campaign_id, event.recipient.subscriber_id)
        request = GiveUp(key, event.account_id, event.recipient.email, gave_up_reason(deliveries))
        async with self._unit_of_work() as uow:
            recorded = await uow.deliveries.give_up(request)
            if recorded is None:
                log.info("exhausted delivery %s already settled or in flight; nothing to report", key)
                return
            uow.emit(*result_event(event, exhausted_outcome(recorded, deliveries), message_id=""))
            await uow.commit()
