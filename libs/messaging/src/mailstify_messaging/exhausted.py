"""Messages a consumer gave up on: JetStream's max-deliveries advisory turned into a handler call.

When a message has been delivered `max_deliver` times without an ack, JetStream stops redelivering
it and publishes `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<durable>` carrying its stream
sequence. The message itself stays stored (in a work-queue stream too: only an ack removes it), so
the listener fetches it by sequence, hands the decoded event to a handler, and deletes it once the
handler succeeded: the work queue does not keep a message nobody will ever deliver again.

Limitation: advisories are plain core-NATS messages, not persisted. One published while no replica
is subscribed (all replicas down, or between a crash and the restart) is lost, and so is one whose
handler kept failing; its message stays in the stream, exhausted and unreported. A periodic sweep of
the stream for messages older than `max_deliver × ack_wait` that the consumer no longer delivers
could close that gap later.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from mailstify_contracts import Event, decode_event
from mailstify_contracts.topology import ConsumerSpec

from .consuming import unsubscribe_quietly
from .tracing import messaging_attributes, producer_link, tracer

log = logging.getLogger(__name__)

# A failing handler gets this many tries (with a growing pause) before the advisory is dropped.
HANDLER_TRIES = 3


def max_deliveries_subject(spec: ConsumerSpec) -> str:
    return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{spec.stream}.{spec.durable}"


@dataclass(frozen=True)
class ExhaustedMessage:
    """A message `spec.durable` delivered `deliveries` times without it ever being acked."""

    event: Event
    stream_seq: int
    deliveries: int


ExhaustedHandler = Callable[[ExhaustedMessage], Awaitable[None]]


@dataclass
class ExhaustedMessageListener:
    """Long-running loop (`run` / `stop`, like `PullConsumer`) handling one consumer's exhausted messages.

    Replicas subscribe in one queue group, so each advisory is handled by one of them. Advisories are
    handled one at a time; `stop` lets the one in hand finish.
    """

    nc: Client
    js: JetStreamContext
    spec: ConsumerSpec
    handler: ExhaustedHandler
    poll_timeout: float = 1.0
    retry_pause: float = 0.5
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def subject(self) -> str:
        return max_deliveries_subject(self.spec)

    async def run(self) -> None:
        subscription = await self.nc.subscribe(self.subject, queue=f"{self.spec.durable}-exhausted")
        try:
            while not self._stopping.is_set():
                try:
                    advisory = await subscription.next_msg(timeout=self.poll_timeout)
                except TimeoutError:  # nats-py's own TimeoutError subclasses asyncio's
                    continue
                except nats.errors.ConnectionClosedError:
                    await asyncio.sleep(self.poll_timeout)
                    continue
                await self.process(advisory)
        finally:
            await unsubscribe_quietly(subscription)

    def stop(self) -> None:
        self._stopping.set()

    async def process(self, advisory: Msg) -> None:
        try:
            payload = json.loads(advisory.data)
            seq, deliveries = int(payload["stream_seq"]), int(payload.get("deliveries") or self.spec.max_deliver)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("ignoring malformed max-deliveries advisory on %s: %s", advisory.subject, exc)
            return
        try:
            stored = await self.js.get_msg(self.spec.stream, seq)
        except NotFoundError:
            # Acked at the last moment, or already handled (and deleted) after an earlier advisory.
            log.info("exhausted message %s #%d is gone already", self.spec.stream, seq)
            return
        except (nats.errors.Error, TimeoutError):
            log.exception("cannot fetch exhausted message %s #%d; it stays unreported", self.spec.stream, seq)
            return
        try:
            event = decode_event(stored.data or b"")
        except ValueError as exc:
            # Kept in the stream for an operator to inspect: there is nothing to report it as.
            log.error("exhausted message %s #%d is undecodable: %s", self.spec.stream, seq, exc)
            return
        exhausted = ExhaustedMessage(event=event, stream_seq=seq, deliveries=deliveries)
        log.warning("%s gave up on %s #%d after %d deliveries", self.spec.durable, event.type, seq, deliveries)
        link = producer_link(stored.headers)
        with tracer.start_as_current_span(
            f"{self.spec.durable} exhausted",
            links=[link],
            attributes=messaging_attributes(stored.subject or "", "process", 1),
        ):
            if not await self._handle(exhausted):
                return
        try:
            await self.js.delete_msg(self.spec.stream, seq)
        except NotFoundError:
            pass
        except (nats.errors.Error, TimeoutError):
            # Harmless beyond the stored bytes: a later advisory for it cannot come, and handlers
            # are idempotent anyway.
            log.warning("could not delete exhausted message %s #%d", self.spec.stream, seq, exc_info=True)

    async def _handle(self, exhausted: ExhaustedMessage) -> bool:
        for try_number in range(1, HANDLER_TRIES + 1):
            try:
                await self.handler(exhausted)
                return True
            except Exception:
                if try_number == HANDLER_TRIES or self._stopping.is_set():
                    log.exception(
                        "handler of exhausted %s #%d failed; it stays unreported in the stream",
                        self.spec.stream,
                        exhausted.stream_seq,
                    )
                    return False
                log.warning("handler of exhausted message failed (try %d); retrying", try_number, exc_info=True)
                await asyncio.sleep(self.retry_pause * try_number)
        raise AssertionError("unreachable")
