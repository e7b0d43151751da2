"""The batch pull-consume loop against a real JetStream: retry with delay, reject, handler failure,
undecodable payloads."""

from __future__ import annotations

import asyncio
import time

import nats.errors
import nats.js.errors

from mailstify_messaging import Delivery, OutgoingMessage, PullConsumer, publish

from .conftest import an_event, consumer_for, eventually, running, settled, terminated_advisories


async def test_a_retried_message_comes_back_after_its_delay(js, scratch):
    # ack_wait far beyond the test: an early return can only come from the nak's delay, and a
    # missing nak would not bring the message back within the deadline below.
    spec = await scratch.stream_with_consumer(ack_wait_seconds=30)
    seen: list[tuple[float, int]] = []

    async def handler(deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            seen.append((time.monotonic(), delivery.attempt))
            if delivery.attempt == 1:
                delivery.retry(delay=1.0)

    await publish(js, OutgoingMessage.for_event(an_event(), scratch.subject()))
    async with running(consumer_for(js, spec, handler)):
        await eventually(lambda: len(seen) >= 2, timeout=20.0)

    (first_at, first_attempt), (again_at, again_attempt) = seen
    assert (first_attempt, again_attempt) == (1, 2)
    # Not before the delay (the nak leaves after the handler returned, so the gap is at least the
    # delay), and long before ack_wait would have brought it back: margins that hold on busy cores.
    assert 0.95 <= again_at - first_at <= 15.0


async def test_a_rejected_message_never_comes_back(nc, js, scratch):
    spec = await scratch.stream_with_consumer(ack_wait_seconds=1.0)
    seen: list[int] = []

    async def handler(deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            seen.append(delivery.attempt)
            delivery.reject()

    ack = await publish(js, OutgoingMessage.for_event(an_event(), scratch.subject()))
    async with terminated_advisories(nc, spec) as terminated, running(consumer_for(js, spec, handler)):
        await eventually(lambda: terminated == [ack.seq])
        # Three ack_waits: an unsettled (or merely nak'ed) message would have been redelivered by now.
        await asyncio.sleep(3.0)

    assert seen == [1]
    info = await js.consumer_info(spec.stream, spec.durable)
    assert (info.num_ack_pending, info.num_redelivered, info.num_pending) == (0, 0, 0)


async def test_a_failing_handler_gets_its_batch_again(js, scratch):
    spec = await scratch.stream_with_consumer(ack_wait_seconds=30)
    for _ in range(3):
        await publish(js, OutgoingMessage.for_event(an_event(), scratch.subject()))
    batches: list[list[tuple[str, int]]] = []

    async def handler(deliveries: list[Delivery]) -> None:
        batches.append([(str(d.event.event_id), d.attempt) for d in deliveries])
        if len(batches) == 1:
            deliveries[0].reject()  # a verdict taken before the failure stands
            raise RuntimeError("database went away")

    async with running(consumer_for(js, spec, handler, batch_size=10)):

        async def failed_batch_came_back() -> bool:
            redelivered = {eid for batch in batches[1:] for eid, _ in batch}
            return len(batches) >= 2 and redelivered >= {eid for eid, _ in batches[0][1:]}

        await eventually(failed_batch_came_back, timeout=5.0)
        await eventually(lambda: settled(js, spec))

    first = batches[0]
    assert len(first) == 3 and all(attempt == 1 for _, attempt in first)
    rejected = first[0][0]
    again = [item for batch in batches[1:] for item in batch]
    assert sorted(again) == sorted((eid, 2) for eid, _ in first[1:])
    assert rejected not in {eid for eid, _ in again}


async def test_an_undecodable_message_is_terminated_without_calling_the_handler(nc, js, scratch):
    spec = await scratch.stream_with_consumer(ack_wait_seconds=1.0)
    handled: list[str] = []

    async def handler(deliveries: list[Delivery]) -> None:
        handled.extend(str(d.event.event_id) for d in deliveries)

    bad = [
        await publish(js, OutgoingMessage(scratch.subject(), payload, f"bad-{n}"))
        for n, payload in enumerate([b"\x00not json", b'{"type": "no.such.event"}', b'{"type": "campaign.fanout_completed"}'])
    ]
    good = an_event()
    await publish(js, OutgoingMessage.for_event(good, scratch.subject()))

    async with terminated_advisories(nc, spec) as terminated, running(consumer_for(js, spec, handler)):
        await eventually(lambda: sorted(terminated) == [ack.seq for ack in bad])
        await eventually(lambda: settled(js, spec))

    assert handled == [str(good.event_id)]


async def test_the_loop_survives_fetch_timeouts(js, scratch):
    # A fetch deadline that is already spent when nats-py checks it raises asyncio's TimeoutError, not
    # nats-py's; a tiny fetch timeout on an idle consumer makes that happen within a few fetches.
    spec = await scratch.stream_with_consumer()
    handled: list[Delivery] = []
    timeouts: list[type[BaseException]] = []

    async def handler(deliveries: list[Delivery]) -> None:
        handled.extend(deliveries)

    consumer = PullConsumer(js, spec, handler, fetch_timeout=0.001)
    subscribe = consumer._subscribe

    async def recording_subscribe():  # type: ignore[no-untyped-def]
        subscription = await subscribe()
        fetch = subscription.fetch

        async def recording_fetch(*args, **kwargs):  # type: ignore[no-untyped-def]
            try:
                return await fetch(*args, **kwargs)
            except TimeoutError as exc:
                timeouts.append(type(exc))
                raise

        subscription.fetch = recording_fetch  # type: ignore[method-assign]
        return subscription

    consumer._subscribe = recording_subscribe  # type: ignore[method-assign]
    async with running(consumer):
        # Both kinds of timeout must have reached the loop, or this test proves nothing.
        await eventually(lambda: TimeoutError in timeouts and nats.errors.TimeoutError in timeouts, timeout=10.0)
        await publish(js, OutgoingMessage.for_event(an_event(), scratch.subject()))
        await eventually(lambda: len(handled) == 1)


async def test_the_loop_survives_jetstream_unavailable_while_the_server_restarts(js, scratch):
    # A NATS server shutting down (or not yet serving JetStream after a restart) answers a pending pull
    # request with a 503, which nats-py raises as ServiceUnavailableError: the loop waits and fetches
    # again rather than crashing. The 503 is injected: the real one depends on the shutdown's timing.
    spec = await scratch.stream_with_consumer()
    handled: list[Delivery] = []
    unavailable: list[int] = []

    async def handler(deliveries: list[Delivery]) -> None:
        handled.extend(deliveries)

    consumer = consumer_for(js, spec, handler)
    subscribe = consumer._subscribe

    async def unavailable_once_subscribe():  # type: ignore[no-untyped-def]
        subscription = await subscribe()
        fetch = subscription.fetch

        async def fetch_after_a_503(*args, **kwargs):  # type: ignore[no-untyped-def]
            if not unavailable:
                unavailable.append(503)
                raise nats.js.errors.ServiceUnavailableError(code=503)
            return await fetch(*args, **kwargs)

        subscription.fetch = fetch_after_a_503  # type: ignore[method-assign]
        return subscription

    consumer._subscribe = unavailable_once_subscribe  # type: ignore[method-assign]
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: unavailable == [503])
        await publish(js, OutgoingMessage.for_event(an_event(), scratch.subject()))
        await eventually(lambda: len(handled) == 1)
        assert not task.done(), task
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 5)
