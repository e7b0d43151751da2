"""Publishing to JetStream: every message carries a `Nats-Msg-Id` (the server drops a second copy
within the stream's duplicate window) and the caller's trace context."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from nats.js import JetStreamContext
from nats.js.api import PubAck

from mailstify_contracts import Event

from .tracing import inject_trace_headers, messaging_attributes, tracer

MSG_ID_HEADER = "Nats-Msg-Id"


@dataclass(frozen=True)
class OutgoingMessage:
    subject: str
    payload: bytes
    msg_id: str
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_event(cls, event: Event, subject: str, msg_id: str | None = None) -> OutgoingMessage:
        return cls(subject=subject, payload=event.to_json(), msg_id=msg_id or str(event.event_id))

    def nats_headers(self) -> dict[str, str]:
        return {**inject_trace_headers(self.headers), MSG_ID_HEADER: self.msg_id}


class PublishTimeout(Exception):
    """JetStream did not acknowledge every message in time; nothing is known about the unacked ones."""


async def publish(js: JetStreamContext, message: OutgoingMessage, timeout: float = 5.0) -> PubAck:
    with tracer.start_as_current_span(
        f"{message.subject} publish", attributes=messaging_attributes(message.subject, "publish")
    ):
        return await js.publish(message.subject, message.payload, timeout=timeout, headers=message.nats_headers())


async def publish_many(
    js: JetStreamContext, messages: Sequence[OutgoingMessage], timeout: float = 10.0
) -> list[PubAck]:
    """Pipeline a batch with `publish_async` (~10× sequential publishes) and wait for every ack.

    Raises the first failure (e.g. a full work-queue stream refusing new messages) or PublishTimeout;
    the caller retries the whole batch, which the msg ids make safe.
    """
    if not messages:
        return []
    subject = messages[0].subject
    with tracer.start_as_current_span(
        f"{subject} publish", attributes=messaging_attributes(subject, "publish", len(messages))
    ):
        futures = [
            await js.publish_async(m.subject, m.payload, wait_stall=timeout, headers=m.nats_headers())
            for m in messages
        ]
        try:
            outcomes = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), timeout)
        except TimeoutError as exc:
            for future in futures:
                future.cancel()
            raise PublishTimeout(f"{sum(not f.done() for f in futures)} of {len(futures)} unacked") from exc
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return list(outcomes)
