"""The transactional outbox against real PostgreSQL and JetStream: only committed events leave, each
exactly once, across relay crashes and concurrent relays."""

from __future__ import annotations

import asyncio
import importlib
from collections import Counter

import nats.js.errors
import pytest
import sqlalchemy as sa

from mailstify_messaging import OutboxRelay, add_to_outbox, outbox

from .conftest import an_event, eventually, running

# The package exports the table under the module's name, so reach the module itself this way.
outbox_module = importlib.import_module("mailstify_messaging.outbox")


async def outbox_size(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(outbox))).scalar_one()


async def outbox_empty(engine) -> bool:
    return await outbox_size(engine) == 0


async def stored_msg_ids(js, stream: str) -> list[str]:
    """Nats-Msg-Id of every message in the stream, in stream order (walking the stored messages, not
    assuming their sequences are 1..count)."""
    msg_ids, seq = [], 1
    while True:
        try:
            stored = await js.get_msg(stream, seq, subject=">", next=True)
        except nats.js.errors.NotFoundError:
            return msg_ids
        msg_ids.append(stored.headers["Nats-Msg-Id"])
        seq = stored.seq + 1


def record_publishes(monkeypatch) -> list[tuple[str, bool]]:
    """(msg id, PubAck.duplicate) of every message the relay hands to JetStream. Deterministic msg ids
    make JetStream drop a repeat, so "published once" is checked here, at the effect, not by counting
    the stream."""
    real_publish_many = outbox_module.publish_many
    published: list[tuple[str, bool]] = []

    async def recording_publish_many(js_, messages, **kwargs):
        acks = await real_publish_many(js_, messages, **kwargs)
        published.extend((m.msg_id, bool(a.duplicate)) for m, a in zip(messages, acks, strict=True))
        return acks

    monkeypatch.setattr(outbox_module, "publish_many", recording_publish_many)
    return published


async def stage(engine, subject: str, count: int) -> list[str]:
    events = [an_event() for _ in range(count)]
    async with engine.begin() as conn:
        await add_to_outbox(conn, [(event, subject) for event in events])
    return [str(event.event_id) for event in events]


async def test_only_committed_events_are_published_once(js, scratch, outbox_engine, monkeypatch):
    published = record_publishes(monkeypatch)
    stream = scratch.stream()
    await scratch.declare([stream])
    rolled_back, committed = an_event(), an_event()
    async with outbox_engine.connect() as conn:
        transaction = await conn.begin()
        await add_to_outbox(conn, [(rolled_back, scratch.subject())])
        await transaction.rollback()
    async with outbox_engine.begin() as conn:
        await add_to_outbox(conn, [(committed, scratch.subject(), "custom-msg-id")])

    async with running(OutboxRelay(outbox_engine, js, idle_interval=0.05)):

        async def relayed() -> bool:
            return await outbox_size(outbox_engine) == 0 and (await js.stream_info(stream.name)).state.messages > 0

        await eventually(relayed)
        await asyncio.sleep(0.3)  # several more polls: nothing else may leave, nothing twice

    assert published == [("custom-msg-id", False)]  # handed to JetStream once, not deduplicated by it
    assert await stored_msg_ids(js, stream.name) == ["custom-msg-id"]
    stored = await js.get_msg(stream.name, 1)
    assert stored.subject == scratch.subject()
    assert stored.data == committed.to_json()


async def test_a_relay_that_dies_after_publishing_is_followed_without_duplicates(
    js, scratch, outbox_engine, monkeypatch
):
    stream = scratch.stream()
    await scratch.declare([stream])
    msg_ids = await stage(outbox_engine, scratch.subject(), 25)
    real_publish_many = outbox_module.publish_many

    async def publish_then_crash(*args, **kwargs):
        await real_publish_many(*args, **kwargs)
        raise ConnectionError("relay died before its DELETE committed")

    monkeypatch.setattr(outbox_module, "publish_many", publish_then_crash)
    with pytest.raises(ConnectionError):
        await OutboxRelay(outbox_engine, js, batch_size=10).relay_batch()
    monkeypatch.setattr(outbox_module, "publish_many", real_publish_many)
    assert (await js.stream_info(stream.name)).state.messages == 10  # the first batch did leave...
    assert await outbox_size(outbox_engine) == 25  # ...but its rows were not deleted

    published = record_publishes(monkeypatch)
    async with running(OutboxRelay(outbox_engine, js, batch_size=10, idle_interval=0.05)):
        await eventually(lambda: outbox_empty(outbox_engine))

    # The follower did publish the first batch again, and JetStream dropped exactly those copies:
    # the duplicate was attempted, so the stream below shows the msg ids at work.
    assert [msg_id for msg_id, _ in published] == msg_ids
    assert [msg_id for msg_id, duplicate in published if duplicate] == msg_ids[:10]
    assert await stored_msg_ids(js, stream.name) == msg_ids


async def test_concurrent_relays_publish_each_event_once(js, scratch, outbox_engine, monkeypatch):
    stream = scratch.stream()
    await scratch.declare([stream])
    msg_ids = await stage(outbox_engine, scratch.subject(), 300)
    real_publish_many = outbox_module.publish_many
    published_by: dict[int, Counter[str]] = {}

    async def counting_publish_many(js_, messages, **kwargs):
        relay = id(asyncio.current_task())
        published_by.setdefault(relay, Counter()).update(m.msg_id for m in messages)
        # Slow enough that both relays hold locked batches at the same time.
        await asyncio.sleep(0.02)
        return await real_publish_many(js_, messages, **kwargs)

    monkeypatch.setattr(outbox_module, "publish_many", counting_publish_many)
    relays = [OutboxRelay(outbox_engine, js, batch_size=20, idle_interval=0.05) for _ in range(2)]
    async with running(relays[0]), running(relays[1]):
        await eventually(lambda: outbox_empty(outbox_engine), timeout=10)

    total = sum(published_by.values(), Counter())
    assert total == Counter(msg_ids)  # every event handed to NATS exactly once: SKIP LOCKED, not dedupe
    assert len(published_by) == 2 and all(published_by.values())  # both relays did share the work
    assert sorted(await stored_msg_ids(js, stream.name)) == sorted(msg_ids)


async def test_wake_publishes_without_waiting_for_the_next_poll(js, scratch, outbox_engine):
    stream = scratch.stream()
    await scratch.declare([stream])
    relay = OutboxRelay(outbox_engine, js, idle_interval=60)  # polling alone would not deliver in time
    batches: list[int] = []
    relay_batch = relay.relay_batch

    async def counted_relay_batch() -> int:
        relayed = await relay_batch()
        batches.append(relayed)
        return relayed

    relay.relay_batch = counted_relay_batch  # type: ignore[method-assign]
    async with running(relay):
        # It found the table empty and went idle (a fixed sleep could stage the row before its first
        # poll, which would then publish without any wake-up).
        await eventually(lambda: batches == [0])
        msg_ids = await stage(outbox_engine, scratch.subject(), 1)
        relay.wake()  # what UnitOfWork.commit does through Runtime.uow()

        async def published() -> bool:
            return (await js.stream_info(stream.name)).state.messages == 1

        await eventually(published, timeout=10)

    assert batches[:2] == [0, 1]  # the second poll came from the wake-up, 60 s before the next one
    assert await stored_msg_ids(js, stream.name) == msg_ids
