"""The mail queue (DeliverEmail on the MAIL work-queue stream)."""

from __future__ import annotations

from collections.abc import Sequence

import nats.errors
from nats.js import JetStreamContext

from mailstify_contracts import DeliverEmail, subjects
from mailstify_messaging import OutgoingMessage, PublishTimeout, publish_many

from ..service_layer.ports import PublishRefused


class MailQueuePublisher:
    def __init__(self, js: JetStreamContext, timeout: float = 30.0):
        self._js = js
        self._timeout = timeout

    async def publish(self, deliveries: Sequence[DeliverEmail]) -> None:
        messages = [
            OutgoingMessage.for_event(
                d,
                subjects.mail_deliver(d.campaign_id),
                msg_id=subjects.deliver_msg_id(d.campaign_id, d.recipient.subscriber_id, d.round),
            )
            for d in deliveries
        ]
        try:
            await publish_many(self._js, messages, timeout=self._timeout)
        # A full MAIL stream (discard=new) answers with an API error; a lost link times out.
        except (nats.errors.Error, PublishTimeout, TimeoutError) as exc:
            raise PublishRefused(f"{exc.__class__.__name__}: {exc}") from exc
