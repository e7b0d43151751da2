"""Exhausted messages against a real JetStream: the max-deliveries advisory reaches the handler once,
with the original event, and the message is then deleted from the stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from nats.js.errors import NotFoundError

from mailstify_contracts.topology import Retention
from mailstify_messaging import (
    Delivery,
    ExhaustedMessage,
    ExhaustedMessageListener,
    ExhaustedMessages,
    ExhaustedMessageSweep,
    OutgoingMessage,
    UnsupportedStream,
    publish,
)

from .conftest import an_event, consumer_for, eventually, running


async def work_queue_consumer(scratch, **overrides: object):
    stream = scratch.stream(retention=Retention.WORK_QUEUE)
    spec = scratch.consumer(stream, **{"max_deliver": 2, "ack_wait_seconds": 0.5, **overrides})
    await scratch.declare([stream], [spec])
    return spec


async def test_an_exhausted_message_is_handed_over_once_and_deleted(nc, js, scratch):
    spec = await work_queue_consumer(scratch)
    handed_over: list[ExhaustedMessage] = []

    async def handler(exhausted: ExhaustedMessage) -> None:
        handed_over.append(exhausted)

    event = an_event()
    ack = await publish(js, OutgoingMessage.for_event(event, scratch.subject()))
    listener = ExhaustedMessageListener(nc, js, spec, handler, poll_timeout=0.25)
    attempts: list[int] = []
    async with running(listener), never_acking(js, spec, attempts):

        async def deleted() -> bool:
            try:
                await js.get_msg(spec.stream, ack.seq)
                return False
            except NotFoundError:
                return True

        await eventually(lambda: handed_over, timeout=10.0)
        await eventually(deleted, timeout=5.0)
        # A few more ack_waits with the puller still asking: no second advisory, no redelivery.
        await asyncio.sleep(1.5)

    (exhausted,) = handed_over
    assert exhausted.event == event
    assert (exhausted.stream_seq, exhausted.deliveries) == (ack.seq, 2)
    assert attempts == [1, 2]
    assert (await js.stream_info(spec.stream)).state.messages == 0


@contextlib.asynccontextmanager
async def never_acking(js, spec, attempts: list[int]) -> AsyncIterator[None]:
    """A puller that takes every delivery and never settles it: ack_wait runs out each time. It keeps
    pulling, since JetStream gives up on a message (and sends the advisory) when it next tries to
    deliver it."""
    subscription = await js.pull_subscribe_bind(spec.durable, stream=spec.stream)

    async def pull() -> None:
        while True:
            try:
                for msg in await subscription.fetch(1, timeout=0.25):
                    attempts.append(msg.metadata.num_delivered)
            except TimeoutError:
                continue

    task = asyncio.create_task(pull())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await subscription.unsubscribe()


async def test_a_failing_handler_leaves_the_message_in_the_stream(nc, js, scratch):
    spec = await work_queue_consumer(scratch)
    tries: list[int] = []

    async def never_acks(deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            delivery.retry(delay=0.1)

    async def failing(exhausted: ExhaustedMessage) -> None:
        tries.append(exhausted.stream_seq)
        raise RuntimeError("database went away")

    ack = await publish(js, OutgoingMessage.for_event(an_event(), scratch.subject()))
    listener = ExhaustedMessageListener(nc, js, spec, failing, poll_timeout=0.25, retry_pause=0.05)
    async with running(listener):
        await nc.flush()
        async with running(consumer_for(js, spec, never_acks)):
            await eventually(lambda: len(tries) == 3, timeout=10.0)

    assert tries == [ack.seq] * 3
    stored = await js.get_msg(spec.stream, ack.seq)
    assert stored.seq == ack.seq


@pytest.mark.parametrize("payload", [b"not json", b'{"stream": "X"}'])
async def test_a_malformed_advisory_is_ignored(nc, js, scratch, payload):
    spec = await work_queue_consumer(scratch)
    handed_over: list[ExhaustedMessage] = []

    async def handler(exhausted: ExhaustedMessage) -> None:
        handed_over.append(exhausted)

    ack = await publish(js, OutgoingMessage.for_event(an_event(), scratch.subject()))
    listener = ExhaustedMessageListener(nc, js, spec, handler)
    await listener.process(type("Advisory", (), {"data": payload, "subject": listener.subject})())  # type: ignore[arg-type]

    assert handed_over == []
    assert (await js.get_msg(spec.stream, ack.seq)).seq == ack.seq


# --- The sweep: exhausted messages whose advisory nobody heard ---------------------------------------


@contextlib.asynccontextmanager
async def pulling(js, spec, decide) -> AsyncIterator[dict[int, object]]:
    """A puller that asks `decide(msg)` what to do with each delivery: "ack", "hold" (kept in progress,
    i.e. still being worked on), ("nak", delay), or anything else to leave it unsettled so its
    ack_wait runs out. Yields the held messages by stream seq."""
    subscription = await js.pull_subscribe_bind(spec.durable, stream=spec.stream)
    held: dict[int, object] = {}

    async def pull() -> None:
        while True:
            try:
                messages = await subscription.fetch(10, timeout=0.2)
            except TimeoutError:
                messages = []
            for msg in messages:
                action = decide(msg)
                if action == "ack":
                    await msg.ack()
                elif action == "hold":
                    held[msg.metadata.sequence.stream] = msg
                elif isinstance(action, tuple):
                    await msg.nak(delay=action[1])
            for msg in list(held.values()):
                await msg.in_progress()

    task = asyncio.create_task(pull())
    try:
        yield held
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await subscription.unsubscribe()


async def given_up(js, spec, count: int, pending: int = 0) -> bool:
    """`count` messages exhausted (they stay in num_redelivered until they leave the stream) and only
    `pending` still awaiting an ack."""
    info = await js.consumer_info(spec.stream, spec.durable)
    return info.num_redelivered == count and info.num_ack_pending == pending and info.num_pending == 0


async def stored_seqs(js, spec) -> list[int]:
    seqs, seq = [], 1
    while True:
        try:
            stored = await js.get_msg(spec.stream, seq, subject=">", next=True)
        except NotFoundError:
            return seqs
        seqs.append(stored.seq)
        seq = stored.seq + 1


def recording() -> tuple[list[ExhaustedMessage], object]:
    handed_over: list[ExhaustedMessage] = []

    async def handler(exhausted: ExhaustedMessage) -> None:
        handed_over.append(exhausted)

    return handed_over, handler


async def test_jetstream_keeps_an_exhausted_message_out_of_pending_without_moving_the_ack_floor(js, scratch):
    # What the sweep is built on (see ExhaustedMessageSweep): if a server upgrade changes it, this fails.
    spec = await work_queue_consumer(scratch)
    ack = await publish(js, OutgoingMessage.for_event(an_event(), scratch.subject()))
    async with pulling(js, spec, lambda msg: "ignore"):
        await eventually(lambda: given_up(js, spec, 1), timeout=10.0)

    info = await js.consumer_info(spec.stream, spec.durable)
    assert (await js.get_msg(spec.stream, ack.seq)).seq == ack.seq  # still stored, in a work queue
    assert info.delivered.stream_seq == ack.seq
    assert info.ack_floor.stream_seq < ack.seq  # giving up did not move the floor...

    later = await publish(js, OutgoingMessage.for_event(an_event(), scratch.subject()))
    async with pulling(js, spec, lambda msg: "ack"):
        await eventually(lambda: given_up(js, spec, 1), timeout=5.0)
        await eventually(lambda: settled_floor(js, spec, later.seq), timeout=5.0)
    # ...the next ack did, past the exhausted message, which is still stored.
    assert await stored_seqs(js, spec) == [ack.seq]


async def settled_floor(js, spec, seq: int) -> bool:
    return (await js.consumer_info(spec.stream, spec.durable)).ack_floor.stream_seq >= seq


async def test_the_sweep_hands_over_an_exhausted_message_nobody_heard_about_once(js, scratch):
    spec = await work_queue_consumer(scratch)
    event = an_event()
    ack = await publish(js, OutgoingMessage.for_event(event, scratch.subject()))
    # No listener anywhere: the advisory goes unheard.
    async with pulling(js, spec, lambda msg: "ignore"):
        await eventually(lambda: given_up(js, spec, 1), timeout=10.0)

    handed_over, handler = recording()
    sweep = ExhaustedMessageSweep(js, spec, handler, settle=0)
    assert await sweep.sweep_once() == 1
    assert await sweep.sweep_once() == 0  # deleted: nothing left for a second hand-over

    (exhausted,) = handed_over
    assert exhausted.event == event
    assert (exhausted.stream_seq, exhausted.deliveries) == (ack.seq, spec.max_deliver)
    assert await stored_seqs(js, spec) == []
    assert (await js.consumer_info(spec.stream, spec.durable)).num_redelivered == 0


async def test_the_sweep_leaves_messages_still_being_delivered_alone(js, scratch):
    # The held messages' in-progress signals (every ~0.2 s) keep well inside ack_wait on busy cores.
    spec = await work_queue_consumer(scratch, ack_wait_seconds=1.5)
    subject = scratch.subject()
    first, exhausted, held, naked = [await publish(js, OutgoingMessage.for_event(an_event(), subject)) for _ in range(4)]
    actions = {first.seq: "hold", held.seq: "hold", naked.seq: ("nak", 60.0)}
    async with pulling(js, spec, lambda msg: actions.get(msg.metadata.sequence.stream, "ignore")) as holding:
        await eventually(lambda: given_up(js, spec, 1, pending=3), timeout=20.0)
        # Three messages pending and the floor below all four: the sweep cannot tell `exhausted`
        # from them yet, and must not touch any.
        handed_over, handler = recording()
        sweep = ExhaustedMessageSweep(js, spec, handler, settle=0)
        assert await sweep.sweep_once() == 0
        assert handed_over == []

        # `first` is done: acking the delivery right after the floor moves the floor up to the next
        # pending message, past `exhausted`, while `held` and `naked` are still pending.
        await holding.pop(first.seq).ack()
        await eventually(lambda: settled_floor(js, spec, exhausted.seq), timeout=5.0)
        assert await sweep.sweep_once() == 1
        assert [m.stream_seq for m in handed_over] == [exhausted.seq]
        # The nak'ed one waits for its redelivery, the held one is being worked on: both untouched.
        assert await sweep.sweep_once() == 0
        assert await stored_seqs(js, spec) == [held.seq, naked.seq]
        assert (await js.consumer_info(spec.stream, spec.durable)).num_ack_pending == 2


async def test_a_failing_sweep_handler_leaves_the_message_for_the_next_sweep(js, scratch):
    spec = await work_queue_consumer(scratch)
    ack = await publish(js, OutgoingMessage.for_event(an_event(), scratch.subject()))
    async with pulling(js, spec, lambda msg: "ignore"):
        await eventually(lambda: given_up(js, spec, 1), timeout=10.0)
    tries: list[int] = []

    async def flaky(exhausted: ExhaustedMessage) -> None:
        tries.append(exhausted.stream_seq)
        if len(tries) == 1:
            raise RuntimeError("database went away")

    sweep = ExhaustedMessageSweep(js, spec, flaky, settle=0)
    assert await sweep.sweep_once() == 0
    assert await stored_seqs(js, spec) == [ack.seq]
    assert await sweep.sweep_once() == 1
    assert tries == [ack.seq, ack.seq]
    assert await stored_seqs(js, spec) == []


async def test_the_sweep_refuses_a_limits_stream(js, scratch):
    spec = await scratch.stream_with_consumer()
    _, handler = recording()
    with pytest.raises(UnsupportedStream):
        await ExhaustedMessageSweep(js, spec, handler, settle=0).sweep_once()


async def test_exhausted_messages_runs_the_sweep_at_start(nc, js, scratch):
    spec = await work_queue_consumer(scratch)
    ack = await publish(js, OutgoingMessage.for_event(an_event(), scratch.subject()))
    async with pulling(js, spec, lambda msg: "ignore"):
        await eventually(lambda: given_up(js, spec, 1), timeout=10.0)

    handed_over, handler = recording()
    loop = ExhaustedMessages(nc, js, spec, handler, sweep_interval=0.2)
    loop.sweep.settle = 0
    async with running(loop):
        await eventually(lambda: handed_over, timeout=5.0)
        await asyncio.sleep(0.6)  # several more sweeps: none hands it over again

    assert [m.stream_seq for m in handed_over] == [ack.seq]
    assert await stored_seqs(js, spec) == []
