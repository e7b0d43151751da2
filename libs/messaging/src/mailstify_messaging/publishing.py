"""Publishing to JetStream: every message carries a `Nats-Msg-Id` (the server drops a second copy
within the stream's duplicate window) and the caller's trace context."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import Header, PubAck
from nats.js.errors import APIError, NoStreamResponseError

from mailstify_contracts import Event

from opentelemetry import trace

from .tracing import (
    FANNED_OUT_HEADER,
    TRACEPARENT_HEADER,
    batch_links,
    carried_producers,
    inject_trace_headers,
    link_threshold,
    messaging_attributes,
    root_context,
    tracer,
)

MSG_ID_HEADER = "Nats-Msg-Id"
NO_RESPONDERS_STATUS = "503"


@dataclass(frozen=True)
class OutgoingMessage:
    subject: str
    payload: bytes
    msg_id: str
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_event(cls, event: Event, subject: str, msg_id: str | None = None) -> OutgoingMessage:
        return cls(subject=subject, payload=event.to_json(), msg_id=msg_id or str(event.event_id))

    def marked_fanned_out(self) -> OutgoingMessage:
        return OutgoingMessage(self.subject, self.payload, self.msg_id, {**self.headers, FANNED_OUT_HEADER: "1"})

    def nats_headers(self, ambient: Mapping[str, str] | None = None) -> dict[str, str]:
        """The message's NATS headers; `ambient`: the current trace context already injected (one
        injection for a whole batch published in one span)."""
        # A trace context given with the message wins over the ambient one: the outbox relay publishes
        # with its writer's context, so the consumer links to the request that caused the event.
        if TRACEPARENT_HEADER in self.headers:
            return {**self.headers, MSG_ID_HEADER: self.msg_id}
        return {**self.headers, **(inject_trace_headers() if ambient is None else ambient), MSG_ID_HEADER: self.msg_id}


class PublishTimeout(Exception):
    """JetStream did not acknowledge every message in time; nothing is known about the unacked ones."""


async def publish(js: JetStreamContext, message: OutgoingMessage, timeout: float = 5.0) -> PubAck:
    with tracer.start_as_current_span(
        f"{message.subject} publish",
        kind=trace.SpanKind.PRODUCER,
        attributes=messaging_attributes(message.subject, "publish", message_id=message.msg_id),
    ):
        return await js.publish(message.subject, message.payload, timeout=timeout, headers=message.nats_headers())


async def publish_many(
    js: JetStreamContext, messages: Sequence[OutgoingMessage], timeout: float = 10.0
) -> list[PubAck]:
    """Pipeline a batch (several times faster than sequential publishes) and wait for every ack.

    Raises the first failure (e.g. a full work-queue stream refusing new messages) or PublishTimeout;
    the caller retries the whole batch, which the msg ids make safe.
    """
    if not messages:
        return []
    subject = messages[0].subject
    carried = carried_producers(m.headers for m in messages)
    if not carried:
        # The caller's own messages (a fan-out page): all of them continue the caller's trace. A page
        # above the link threshold is a fan-out: its consumers link to it rather than join its trace.
        if len(messages) > link_threshold():
            messages = [m.marked_fanned_out() for m in messages]
        with tracer.start_as_current_span(
            f"{subject} publish",
            kind=trace.SpanKind.PRODUCER,
            attributes=messaging_attributes(subject, "publish", len(messages)),
        ):
            return await _publish_pipelined(js, messages, timeout)
    # Messages written by others (the outbox relay): each keeps its writer's traceparent, so its
    # consumer continues the writer's trace; the one `publish` span links to the writers (bounded)
    # and belongs to no writer's trace. No span per message: relay batches can be one per email.
    with tracer.start_as_current_span(
        f"{subject} publish",
        context=root_context(),
        kind=trace.SpanKind.PRODUCER,
        links=batch_links(carried, root_context()),
        attributes=messaging_attributes(subject, "publish", len(messages)),
    ):
        return await _publish_pipelined(js, messages, timeout)


async def _publish_pipelined(
    js: JetStreamContext, messages: Sequence[OutgoingMessage], timeout: float
) -> list[PubAck]:
    replies = await _pipelined_requests(js._nc, messages, timeout)
    return [_pub_ack(reply) for reply in replies]


async def _pipelined_requests(nc: Client, messages: Sequence[OutgoingMessage], timeout: float) -> list[Msg]:
    # Not `js.publish_async`: nats-py 2.16 raises a JetStream error reply (e.g. 503 "maximum messages
    # exceeded" from a full work queue) inside its reply callback instead of failing the future, so
    # the refusal never reaches the caller, who sees only a timeout. Here the replies are collected
    # raw and judged by `_pub_ack`, in the caller's task.
    loop = asyncio.get_running_loop()
    replies: list[asyncio.Future[Msg]] = [loop.create_future() for _ in messages]
    inbox = nc.new_inbox()

    async def collect(reply: Msg) -> None:
        future = replies[int(reply.subject.rsplit(".", 1)[1])]
        if not future.done():
            future.set_result(reply)

    subscription = await nc.subscribe(f"{inbox}.*", cb=collect)
    try:
        ambient = inject_trace_headers()
        for index, message in enumerate(messages):
            headers = message.nats_headers(ambient)
            await nc.publish(message.subject, message.payload, reply=f"{inbox}.{index}", headers=headers)
        _, unacked = await asyncio.wait(replies, timeout=timeout)
        if unacked:
            raise PublishTimeout(f"{len(unacked)} of {len(replies)} unacked")
        return [future.result() for future in replies]
    finally:
        with contextlib.suppress(nats.errors.Error):  # a closed connection must not mask the real error
            await subscription.unsubscribe()


def _pub_ack(reply: Msg) -> PubAck:
    if reply.headers and reply.headers.get(Header.STATUS) == NO_RESPONDERS_STATUS:
        raise NoStreamResponseError
    response = json.loads(reply.data)
    if "error" in response:
        raise APIError.from_error(response["error"])  # from_error raises the specific subclass itself
    return PubAck.from_response(response)
