"""Sends to recipients the campaign service names itself, outside any fan-out: test sends, and the
failed recipients that retry-failed queues again. Neither reads nor writes a fan-out.

Idempotent by msg id: a redelivered request publishes the same messages under the same ids
(`deliver:{campaign}:{subscriber}[:r{round}]`), which JetStream drops. A refused publish (full mail
queue, NATS unreachable) raises, and the consumer redelivers the request after a backoff."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mailstify_contracts import CampaignRecipientsRequeued, CampaignTestSendRequested, DeliverEmail, Recipient, subjects

from ..ports import ContentStore, DeliveryPublisher

log = logging.getLogger(__name__)


@dataclass
class NamedRecipientSends:
    publisher: DeliveryPublisher
    content: ContentStore

    async def test_send(self, request: CampaignTestSendRequested) -> int:
        """Content under the request's own key (the campaign's, and a send running meanwhile, stay as
        they are), then one DeliverEmail per test recipient; returns how many were queued."""
        # Only ids the campaign service never counts: a malformed request must not add to a campaign's stats.
        recipients = [r for r in request.recipients if subjects.is_test_recipient(r.subscriber_id)]
        if len(recipients) < len(request.recipients):
            log.error(
                "test send of campaign %s named %d recipient(s) without the test prefix; not sending to them",
                request.campaign_id,
                len(request.recipients) - len(recipients),
            )
        if not recipients:
            return 0
        await self.content.put(request.content_key, request.content)
        return await self._publish(request, recipients, content_key=request.content_key, round_number=0)

    async def requeue(self, request: CampaignRecipientsRequeued) -> int:
        """One DeliverEmail per recipient in the request's retry round, with the campaign's content (in
        the content bucket since its fan-out); returns how many were queued."""
        return await self._publish(
            request, request.recipients, content_key=request.campaign_id, round_number=request.round
        )

    async def _publish(
        self,
        request: CampaignTestSendRequested | CampaignRecipientsRequeued,
        recipients: list[Recipient],
        *,
        content_key: str,
        round_number: int,
    ) -> int:
        await self.publisher.publish(
            [
                DeliverEmail(
                    account_id=request.account_id,
                    campaign_id=request.campaign_id,
                    recipient=recipient,
                    content_key=content_key,
                    round=round_number,
                )
                for recipient in recipients
            ]
        )
        return len(recipients)
