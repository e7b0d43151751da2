"""Messages a consumer gave up on: JetStream's max-deliveries advisory turned into a handler call,
backed by a periodic sweep of the stream for the ones whose advisory was missed.

When a message has been delivered `max_deliver` times without an ack, JetStream stops redelivering
it and publishes `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<durable>` carrying its stream
sequence. The message itself stays stored (in a work-queue stream too: only an ack or a term removes
it), so it is fetched by sequence, the decoded event handed to a handler, and the message deleted once
the handler succeeded: the work queue does not keep a message nobody will ever deliver again.

Advisories are plain core-NATS messages, not persisted: one published while no replica is subscribed
(all replicas down, or between a crash and the restart) is lost, and so is one whose handler kept
failing. `ExhaustedMessageSweep` closes that gap for work-queue streams by reading the consumer's
state instead (see its docstring for what JetStream guarantees and what it does not);
`ExhaustedMessages` runs both as one loop and is what services start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo, RawStreamMsg, RetentionPolicy
from nats.js.errors import NotFoundError

from mailstify_contracts import Event, decode_event
from mailstify_contracts.topology import ConsumerSpec

from .consuming import unsubscribe_quietly
from .tracing import messaging_attributes, producer_link, tracer

log = logging.getLogger(__name__)

# A failing handler gets this many tries (with a growing pause) before the advisory is dropped; the
# sweep hands the message over again later.
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


class UnsupportedStream(Exception):
    """The sweep cannot tell exhausted messages apart on this stream (not a work queue)."""


async def _hand_over(
    js: JetStreamContext,
    spec: ConsumerSpec,
    stored: RawStreamMsg,
    deliveries: int,
    handle: Callable[[ExhaustedMessage], Awaitable[bool]],
    undecodable: set[int],
) -> bool:
    """Decode a stored exhausted message, let `handle` report it, delete it once reported.

    True when the handler succeeded (whether or not the delete did)."""
    seq = stored.seq or 0
    try:
        event = decode_event(stored.data or b"")
    except ValueError as exc:
        # Kept in the stream for an operator to inspect: there is nothing to report it as. Said once
        # per process, not at every sweep.
        if seq not in undecodable:
            undecodable.add(seq)
            log.error("exhausted message %s #%d is undecodable: %s", spec.stream, seq, exc)
        return False
    exhausted = ExhaustedMessage(event=event, stream_seq=seq, deliveries=deliveries)
    log.warning("%s gave up on %s #%d after %d deliveries", spec.durable, event.type, seq, deliveries)
    with tracer.start_as_current_span(
        f"{spec.durable} exhausted",
        links=[producer_link(stored.headers)],
        attributes=messaging_attributes(stored.subject or "", "process", 1),
    ):
        if not await handle(exhausted):
            return False
    try:
        await js.delete_msg(spec.stream, seq)
    except NotFoundError:
        pass  # another replica's sweep or listener handled it too: handlers are idempotent
    except (nats.errors.Error, TimeoutError):
        # The next sweep hands it over again; handlers are idempotent.
        log.warning("could not delete exhausted message %s #%d", spec.stream, seq, exc_info=True)
    return True


@dataclass
class ExhaustedMessageListener:
    """Long-running loop (`run` / `stop`, like `PullConsumer`) handling one consumer's exhausted messages
    as their advisories arrive.

    Replicas subscribe in one queue group, so each advisory is handled by one of them. Advisories are
    handled one at a time; `stop` lets the one in hand finish. On its own it misses advisories sent
    while no replica listens: start `ExhaustedMessages` (listener + sweep) instead.
    """

    nc: Client
    js: JetStreamContext
    spec: ConsumerSpec
    handler: ExhaustedHandler
    poll_timeout: float = 1.0
    retry_pause: float = 0.5
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _undecodable: set[int] = field(default_factory=set)

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
            log.exception("cannot fetch exhausted message %s #%d; left to the sweep", self.spec.stream, seq)
            return
        await _hand_over(self.js, self.spec, stored, deliveries, self._handle, self._undecodable)

    async def _handle(self, exhausted: ExhaustedMessage) -> bool:
        for try_number in range(1, HANDLER_TRIES + 1):
            try:
                await self.handler(exhausted)
                return True
            except Exception:
                if try_number == HANDLER_TRIES or self._stopping.is_set():
                    log.exception(
                        "handler of exhausted %s #%d failed; it stays in the stream for the sweep",
                        self.spec.stream,
                        exhausted.stream_seq,
                    )
                    return False
                log.warning("handler of exhausted message failed (try %d); retrying", try_number, exc_info=True)
                await asyncio.sleep(self.retry_pause * try_number)
        raise AssertionError("unreachable")


@dataclass
class ExhaustedMessageSweep:
    """Periodically hand every message `spec.durable` gave up on to `handler`, then delete it, whether
    or not its advisory was ever seen. Work-queue streams only.

    What JetStream (nats-server 2.15.1, observed and pinned by tests/test_exhausted.py) shows of an exhausted message
    of a durable pull consumer with explicit ack:

    * it stays stored, in a work-queue stream as in a limits stream, until deleted;
    * it leaves the consumer's pending set: not counted in `num_ack_pending`, but counted in
      `num_redelivered` until it leaves the stream;
    * giving up does not move `ack_floor`, not even when nothing else is pending (the floor stays
      below the message, while `num_ack_pending` is 0). The floor moves only on an ack: an ack that
      leaves nothing pending puts it at `delivered`; an ack of the delivery numbered floor+1 puts it
      just below the next message still pending, past exhausted ones. Redelivery renumbers a
      message's delivery, so once the message just above the floor was redelivered, the floor
      waits for an ack that leaves nothing pending.

    In a work-queue stream an ack or a term removes the message, so a stored message matching the
    consumer's filter is either still pending or given up on. Pending messages lie above the ack
    floor, hence: a stored, matching message with stream seq <= `ack_floor.stream_seq` was given up
    on; and when `num_ack_pending` is 0, so is every stored, matching message up to
    `delivered.stream_seq`. The sweep scans exactly that range with get-next-by-subject requests,
    which skip deleted sequences, so its cost is the number of exhausted messages found, plus one
    request per filter subject.

    Limit: on a consumer that always has something pending, an exhausted message above the ack floor
    waits until the floor passes it or the consumer drains (the advisory usually got it long before).

    Limits streams are refused (`UnsupportedStream`): acked messages stay stored there, and JetStream
    exposes no per-message ack state, so nothing in the stream or the consumer info tells an acked
    message below the floor from an exhausted one. What is correct there is persisting the advisory
    itself: a stream capturing `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<durable>` (the
    server stores advisories like any message) consumed by a durable that never gives up.

    Replicas may sweep at once: handlers are idempotent, and deleting a message another replica
    deleted already is fine. A failing handler leaves the message in place for the next sweep.
    `settle` is the pause between reading the consumer's state and reading the stream, so that in a
    replicated stream an ack the consumer leader counted has removed its message before it is looked at.
    """

    js: JetStreamContext
    spec: ConsumerSpec
    handler: ExhaustedHandler
    interval: float = 30.0
    settle: float = 1.0
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _undecodable: set[int] = field(default_factory=set)
    _checked_retention: bool = False

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.sweep_once()
            except UnsupportedStream as exc:
                log.error("%s; not sweeping", exc)
                return
            except (nats.errors.Error, TimeoutError) as exc:
                log.warning("sweep of exhausted %s messages failed: %s", self.spec.durable, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)

    def stop(self) -> None:
        self._stopping.set()

    async def sweep_once(self) -> int:
        """Hand over every exhausted message found now; return how many the handler took."""
        await self._check_retention()
        info = await self.js.consumer_info(self.spec.stream, self.spec.durable)
        bound = self.given_up_bound(info)
        if bound == 0:
            return 0
        if self.settle > 0:
            await asyncio.sleep(self.settle)
        handed_over = 0
        for subject in self._filters(info):
            seq = 1
            while seq <= bound and not self._stopping.is_set():
                try:
                    stored = await self.js.get_msg(self.spec.stream, seq, subject=subject, next=True)
                except NotFoundError:
                    break
                if stored.seq is None or stored.seq > bound:
                    break
                if await _hand_over(self.js, self.spec, stored, self.spec.max_deliver, self._handle, self._undecodable):
                    handed_over += 1
                seq = stored.seq + 1
        if handed_over:
            log.warning("sweep handed over %d exhausted %s messages", handed_over, self.spec.durable)
        return handed_over

    @staticmethod
    def given_up_bound(info: ConsumerInfo) -> int:
        """Highest stream seq up to which every stored message matching the consumer was given up on."""
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        if info.num_ack_pending == 0 and info.delivered:
            return max(floor, info.delivered.stream_seq)
        return floor

    def _filters(self, info: ConsumerInfo) -> list[str]:
        config = info.config
        declared = list(config.filter_subjects or ([config.filter_subject] if config.filter_subject else []))
        return declared or list(self.spec.filter_subjects) or [">"]

    async def _check_retention(self) -> None:
        if self._checked_retention:
            return
        config = (await self.js.stream_info(self.spec.stream)).config
        if config.retention != RetentionPolicy.WORK_QUEUE:
            raise UnsupportedStream(
                f"stream {self.spec.stream} is not a work queue: exhausted messages of {self.spec.durable} "
                "cannot be told from acked ones"
            )
        self._checked_retention = True

    async def _handle(self, exhausted: ExhaustedMessage) -> bool:
        try:
            await self.handler(exhausted)
            return True
        except Exception:
            log.warning(
                "handler of exhausted %s #%d failed; it stays for the next sweep",
                self.spec.stream,
                exhausted.stream_seq,
                exc_info=True,
            )
            return False


@dataclass
class ExhaustedMessages:
    """One loop for a consumer's exhausted messages: the advisory listener (prompt) and, on work-queue
    streams, the sweep (complete). `run` / `stop` like every `MessageLoop`."""

    nc: Client
    js: JetStreamContext
    spec: ConsumerSpec
    handler: ExhaustedHandler
    sweep_interval: float = 30.0
    listener: ExhaustedMessageListener = field(init=False)
    sweep: ExhaustedMessageSweep = field(init=False)

    def __post_init__(self) -> None:
        self.listener = ExhaustedMessageListener(self.nc, self.js, self.spec, self.handler)
        self.sweep = ExhaustedMessageSweep(self.js, self.spec, self.handler, interval=self.sweep_interval)

    async def run(self) -> None:
        tasks = [asyncio.create_task(self.listener.run()), asyncio.create_task(self.sweep.run())]
        try:
            # The sweep returns early on a limits stream; the listener alone carries on then.
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        self.listener.stop()
        self.sweep.stop()
