"""`stream_events` reads what a stream holds, waiting for events still on their way when told how many
to expect, up to a deadline."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import nats
import pytest
from nats.js import JetStreamContext

from mailstify_contracts.events import FanoutCompleted
from mailstify_devstack.inprocess import stream_events
from mailstify_devstack.nats import NatsServer


@pytest.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[tuple[JetStreamContext, str, str]]:
    connection = await nats.connect(nats_server.url)
    context = connection.jetstream()
    name = f"TEST_{uuid.uuid4().hex[:8].upper()}"
    await context.add_stream(name=name, subjects=[f"{name.lower()}.>"])
    try:
        yield context, name, f"{name.lower()}.events"
    finally:
        await context.delete_stream(name)
        await connection.close()


async def publish(context: JetStreamContext, subject: str, count: int, delay: float = 0.0) -> None:
    await asyncio.sleep(delay)
    for total in range(count):
        await context.publish(subject, FanoutCompleted(account_id="a", campaign_id="c", total=total).to_json())


async def test_it_waits_for_expected_events_that_arrive_after_a_quiet_spell(js) -> None:
    context, stream, subject = js
    late = asyncio.create_task(publish(context, subject, 3, delay=1.5))  # longer than one empty fetch

    events = await stream_events(context, stream, subject, expected=3, timeout=20)
    await late

    assert [e.total for e in events] == [0, 1, 2]


async def test_it_still_reads_events_beyond_the_expected_count(js) -> None:
    context, stream, subject = js
    await publish(context, subject, 4)

    events = await stream_events(context, stream, subject, expected=3)

    assert len(events) == 4  # so an "exactly 3" check fails, as it should


async def test_at_the_deadline_it_returns_what_it_read(js) -> None:
    context, stream, subject = js
    await publish(context, subject, 2)
    started = time.monotonic()

    events = await stream_events(context, stream, subject, expected=5, timeout=2.0)

    assert len(events) == 2
    assert 2.0 <= time.monotonic() - started < 5.0


async def test_without_an_expected_count_it_reads_what_is_stored(js) -> None:
    context, stream, subject = js
    await publish(context, subject, 2)

    assert len(await stream_events(context, stream, subject)) == 2
