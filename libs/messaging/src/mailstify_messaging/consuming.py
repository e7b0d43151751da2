"""The batch pull-consume loop every consumer uses.

A handler gets a batch of decoded `Delivery`s and decides, per delivery, ack / retry-later / reject.
Undecided deliveries are acked when the handler returns; if the handler raises, they come back after
a backoff delay. Decisions are sent only after the handler returned, i.e. after its database commit,
so a crash in between means a redelivery, which idempotent handlers absorb (ARCHITECTURE.md §6).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from mailstify_contracts import Event, decode_event
from mailstify_contracts.topology import ConsumerSpec

from .retry import backoff_delay
from opentelemetry import trace
from opentelemetry.util.types import Attributes

from .tracing import (
    FANNED_OUT_HEADER,
    batch_links,
    batch_parent,
    carried_producers,
    event_attributes,
    link_threshold,
    links_dropped,
    messaging_attributes,
    tracer,
)

log = logging.getLogger(__name__)


class Verdict(enum.Enum):
    ACK = "ack"
    RETRY = "retry"
    REJECT = "reject"


@dataclass
class Delivery:
    event: Event
    msg: Msg
    max_deliver: int = -1
    verdict: Verdict | None = None
    retry_delay: float | None = None
    settled: bool = False

    @property
    def attempt(self) -> int:
        """1 on first delivery, n on the n-th redelivery."""
        return self.msg.metadata.num_delivered

    @property
    def is_last_attempt(self) -> bool:
        """JetStream will not redeliver this one again: a retry now would lose it."""
        return 0 < self.max_deliver <= self.attempt

    def ack(self) -> None:
        self.verdict = Verdict.ACK

    def retry(self, delay: float | None = None) -> None:
        """Redeliver after `delay` seconds (default: exponential backoff with jitter)."""
        self.verdict = Verdict.RETRY
        self.retry_delay = backoff_delay(self.attempt) if delay is None else delay

    def reject(self) -> None:
        """Never redeliver (poison message)."""
        self.verdict = Verdict.REJECT

    async def settle(self) -> None:
        """Tell JetStream the verdict now (ack when undecided), rather than when the handler returns:
        a handler that commits part of its batch early settles that part early. Once only."""
        if self.settled:
            return
        self.settled = True
        try:
            if self.verdict is Verdict.RETRY:
                await self.msg.nak(delay=self.retry_delay)
            elif self.verdict is Verdict.REJECT:
                await self.msg.term()
            else:
                await self.msg.ack()
        except nats.errors.Error as exc:
            # Lost ack: the message is redelivered after ack_wait and the handler's idempotency absorbs it.
            log.warning("could not settle %s: %s", self.msg.subject, exc)

    async def keep_in_progress(self) -> None:
        """Reset the ack deadline of a message still being worked on (no-op once settled)."""
        if not self.settled:
            try:
                await self.msg.in_progress()
            except nats.errors.Error as exc:
                log.warning("could not signal progress on %s: %s", self.msg.subject, exc)


BatchHandler = Callable[[list[Delivery]], Awaitable[None]]


@contextlib.asynccontextmanager
async def kept_in_progress(deliveries: Sequence[Delivery], every: float) -> AsyncIterator[None]:
    """Reset the ack deadline of the deliveries not settled yet every `every` seconds while the block
    works on them, however long one step takes (a slow relay, a database outage, a wait for room in
    the mail queue). The consumer's ack_wait can then be short: what a dead process held is delivered
    again within about ack_wait of its death, not after the worst case of a long batch."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every)
            await asyncio.gather(*(delivery.keep_in_progress() for delivery in deliveries))

    heartbeat = asyncio.create_task(beat())
    try:
        yield
    finally:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat


async def unsubscribe_quietly(subscription: Subscription | JetStreamContext.PullSubscription) -> None:
    """End a loop's subscription; the connection may be closing already, which ends it anyway."""
    try:
        await subscription.unsubscribe()
    except nats.errors.Error:
        pass


@dataclass
class PullConsumer:
    js: JetStreamContext
    spec: ConsumerSpec
    handler: BatchHandler
    batch_size: int | None = None
    fetch_timeout: float = 1.0
    # Batches up to this size are traced in their producers' traces; larger ones link (tracing.py).
    link_threshold: int = field(default_factory=link_threshold)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        subscription = await self._subscribe()
        size = self.batch_size or self.spec.batch_size
        try:
            while not self._stopping.is_set():
                try:
                    messages = await subscription.fetch(size, timeout=self.fetch_timeout)
                except TimeoutError:  # nats-py raises its own TimeoutError or, at fetch's deadline, asyncio's
                    continue
                except (
                    nats.errors.ConnectionClosedError,
                    nats.errors.ConnectionReconnectingError,
                    nats.errors.NoRespondersError,
                    # JetStream's 503 to a pull request while the server shuts down or starts up.
                    nats.js.errors.ServiceUnavailableError,
                ):
                    await asyncio.sleep(0.5)
                    continue
                if self.spec.linger_seconds and len(messages) < size:
                    messages += await self._more(subscription, size - len(messages))
                await self.process(messages)
        finally:
            # A pull subscription left subscribed keeps stray fetch-timeout replies in its queue,
            # and `nc.drain()` then waits its full 30 s timeout for them at every shutdown.
            await unsubscribe_quietly(subscription)

    def stop(self) -> None:
        self._stopping.set()

    async def _more(self, subscription: JetStreamContext.PullSubscription, room: int) -> list[Msg]:
        """What else arrives within the linger (see `ConsumerSpec.linger_seconds`), up to `room`."""
        await asyncio.sleep(self.spec.linger_seconds)
        try:
            return await subscription.fetch(room, timeout=0.01)
        except (TimeoutError, nats.errors.Error):  # nothing more, or the connection is away: go on
            return []

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        while True:
            try:
                return await self.js.pull_subscribe_bind(self.spec.durable, stream=self.spec.stream)
            except (nats.errors.Error, TimeoutError) as exc:
                if self._stopping.is_set():
                    raise
                log.warning("cannot bind consumer %s yet: %s", self.spec.durable, exc)
                await asyncio.sleep(1.0)

    async def process(self, messages: list[Msg]) -> None:
        decoded = [await self._decode(m) for m in messages]
        deliveries = [d for d in decoded if d is not None]
        if not deliveries:
            return
        subject = deliveries[0].msg.subject
        producers = carried_producers(d.msg.headers for d in deliveries)
        fanned_out = any(FANNED_OUT_HEADER in (d.msg.headers or {}) for d in deliveries)
        parent = batch_parent(producers, len(deliveries), self.link_threshold, fanned_out)
        links = batch_links(producers, parent)
        attributes = self._batch_attributes(subject, deliveries)
        if dropped := links_dropped(producers, links, parent):
            attributes["mailstify.trace.links_dropped"] = dropped
        with tracer.start_as_current_span(
            f"{self.spec.durable} process",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            links=links,
            attributes=attributes,
        ) as batch_span:
            try:
                await self.handler(deliveries)
            except Exception:
                log.exception("handler of %s failed; batch will be redelivered", self.spec.durable)
                for delivery in deliveries:
                    if delivery.verdict is None or delivery.verdict is Verdict.ACK:
                        delivery.retry()
            with tracer.start_as_current_span(
                f"{self.spec.durable} settle",
                attributes=messaging_attributes(
                    subject, "settle", len(deliveries), consumer_group=self.spec.durable
                ),
            ):
                await asyncio.gather(*(d.settle() for d in deliveries))
        if len(deliveries) <= self.link_threshold and not fanned_out:
            self._trace_in_other_producers(producers, batch_span, subject, attributes)

    def _batch_attributes(self, subject: str, deliveries: list[Delivery]) -> dict[str, object]:
        attributes = messaging_attributes(subject, "process", len(deliveries), consumer_group=self.spec.durable)
        if len(deliveries) == 1:
            msg_id = (deliveries[0].msg.headers or {}).get("Nats-Msg-Id")
            if msg_id:
                attributes["messaging.message.id"] = msg_id
            attributes["messaging.message.delivery_count"] = deliveries[0].attempt
        if len(deliveries) <= self.link_threshold:
            attributes.update(event_attributes([d.event for d in deliveries]))
        else:  # one pass is cheap, but a big batch names a campaign only if it is about one
            attributes.update({k: v for k, v in event_attributes([d.event for d in deliveries]).items() if k != "subscriber.id"})
        return attributes

    def _trace_in_other_producers(
        self, producers: list[trace.SpanContext], batch_span: trace.Span, subject: str, attributes: Attributes
    ) -> None:
        """A small batch is processed as part of every producer's trace, not only the parent's: each
        other producer gets a span of the same duration, linked to the batch span that did the work."""
        parent_trace = batch_span.get_span_context().trace_id
        start, end = getattr(batch_span, "start_time", None), getattr(batch_span, "end_time", None)
        for producer in producers:
            if producer.trace_id == parent_trace:
                continue
            span = tracer.start_span(
                f"{self.spec.durable} process",
                context=trace.set_span_in_context(trace.NonRecordingSpan(producer)),
                kind=trace.SpanKind.CONSUMER,
                links=[trace.Link(batch_span.get_span_context())],
                attributes=attributes,
                start_time=start,
            )
            span.end(end_time=end)

    async def _decode(self, msg: Msg) -> Delivery | None:
        try:
            return Delivery(event=decode_event(msg.data), msg=msg, max_deliver=self.spec.max_deliver)
        except ValueError as exc:
            log.error("rejecting undecodable message on %s: %s", msg.subject, exc)
            await msg.term()
            return None
