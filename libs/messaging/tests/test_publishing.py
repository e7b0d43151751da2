"""Publishing: msg-id de-duplication, pipelined batches, and back-pressure from a full work queue."""

from __future__ import annotations

import nats.js.errors
import pytest

from mailstify_contracts.topology import Retention
from mailstify_messaging import OutgoingMessage, PublishTimeout, publish, publish_many

from .conftest import an_event


async def test_the_same_msg_id_is_stored_once(js, scratch):
    stream = scratch.stream()
    await scratch.declare([stream])
    event = an_event()
    message = OutgoingMessage.for_event(event, scratch.subject())

    first = await publish(js, message)
    second = await publish(js, message)

    assert not first.duplicate
    assert second.duplicate is True
    assert second.seq == first.seq
    assert (await js.stream_info(stream.name)).state.messages == 1
    stored = await js.get_msg(stream.name, first.seq)
    assert stored.headers["Nats-Msg-Id"] == str(event.event_id)


async def test_publish_many_lands_every_message(js, scratch):
    stream = scratch.stream()
    await scratch.declare([stream])
    messages = [OutgoingMessage.for_event(an_event(), scratch.subject(f"m{n % 7}")) for n in range(1000)]

    acks = await publish_many(js, messages)

    assert len(acks) == 1000
    assert sorted(ack.seq for ack in acks) == list(range(1, 1001))
    assert not any(ack.duplicate for ack in acks)
    assert (await js.stream_info(stream.name)).state.messages == 1000

    again = await publish_many(js, messages[:10])  # a retried batch: msg ids make it harmless
    assert all(ack.duplicate for ack in again)
    assert (await js.stream_info(stream.name)).state.messages == 1000


async def test_publish_many_into_a_full_work_queue_raises(js, scratch):
    stream = scratch.stream(retention=Retention.WORK_QUEUE, max_msgs=10, discard_new=True)
    await scratch.declare([stream])
    messages = [OutgoingMessage.for_event(an_event(), scratch.subject()) for _ in range(15)]

    with pytest.raises(nats.js.errors.APIError) as refused:
        await publish_many(js, messages)

    assert refused.value.code == 503  # "maximum messages exceeded": the producer must slow down
    assert (await js.stream_info(stream.name)).state.messages == 10


async def test_publish_many_without_a_stream_raises(js, scratch):
    with pytest.raises(nats.js.errors.NoStreamResponseError):
        await publish_many(js, [OutgoingMessage.for_event(an_event(), scratch.subject("nowhere"))])


async def test_publish_many_reports_unacknowledged_messages(nc, js, scratch):
    # A plain subscriber that never answers: the messages are taken, but nobody acknowledges them.
    silent = await nc.subscribe(scratch.subject("silent"))
    messages = [OutgoingMessage.for_event(an_event(), scratch.subject("silent")) for _ in range(3)]

    with pytest.raises(PublishTimeout, match="3 of 3 unacked"):
        await publish_many(js, messages, timeout=0.3)

    await silent.unsubscribe()
