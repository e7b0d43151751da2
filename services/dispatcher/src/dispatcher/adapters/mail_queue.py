"""The mail queue (DeliverEmail on the MAIL work-queue stream): publishing, and its backlog."""

from __future__ import annotations

from collections.abc import Sequence

import nats.errors
from nats.js import JetStreamContext
from opentelemetry import metrics

from mailstify_contracts import DeliverEmail, subjects, topology
from mailstify_messaging import OutgoingMessage, PublishTimeout, publish_many

from ..service_layer.ports import PublishRefused

# Counted per page the queue acknowledged (one add per publish call, never per message).
published = metrics.get_meter("mailstify.dispatcher").create_counter(
    "mailstify.fanout.deliveries", unit="{message}", description="DeliverEmail messages the dispatcher published"
)


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
        published.add(len(messages))


class MailQueueBacklog:
    """The MAIL stream's message count: a work queue removes a message once a mailer acks it, so what
    it holds is what the mailers have not settled yet (pending, or fetched and in flight)."""

    def __init__(self, js: JetStreamContext):
        self._js = js

    async def size(self) -> int:
        try:
            info = await self._js.stream_info(topology.MAIL_STREAM.name)
        except (nats.errors.Error, TimeoutError) as exc:
            raise PublishRefused(f"{exc.__class__.__name__}: {exc}") from exc
        return info.state.messages
