"""Exhausted messages against a real JetStream: the max-deliveries advisory reaches the handler once,
with the original event, and the message is then deleted from the stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from nats.js.errors import NotFoundError

from mailstify_contracts.topology import Retention
from mailstify_messaging import Delivery, ExhaustedMessage, ExhaustedMessageListener, OutgoingMessage, publish

from .conftest import an_event, consumer_for, eventually, running


async def work_queue_consumer(scratch, **overrides: object):
    stream = scratch.stream(retention=Retention.WORK_QUEUE)
    spec = scratch.consumer(stream, max_deliver=2, ack_wait_seconds=0.5, **overrides)
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
