"""The in-memory fan-out behind the event streams: an update reaches the streams of its account
(and, for a campaign's stream, of that campaign) only; a stream starts with the current state,
coalesces, sends heartbeats, and ends — leaving nothing registered — when the client goes or the
gateway stops."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.adapters import event_feed
from gateway.adapters.event_feed import live_update_of
from gateway.domain.live_updates import LiveUpdate
from gateway.service_layer.live import LiveStreams
from mailstify_contracts import CampaignControlChanged, CampaignStatusChanged, SubscriberChanged, subjects
from mailstify_servicekit import NotFound

INTERVAL = 0.05
WAIT = 2.0  # only bounds a hang; every wait returns as soon as its message is there


def streams(heartbeat: float = 30.0) -> LiveStreams:
    return LiveStreams(min_interval=INTERVAL, heartbeat_seconds=heartbeat, retry_milliseconds=1500)


def progress(campaign_id: str, sent: int, account_id: str = "acct-1", status: str = "sending") -> LiveUpdate:
    update = live_update_of(
        CampaignStatusChanged(account_id=account_id, campaign_id=campaign_id, status=status, total=10, sent_count=sent)
    )
    assert update is not None
    return update


def list_update(list_id: str, account_id: str = "acct-1") -> LiveUpdate:
    update = live_update_of(SubscriberChanged(account_id=account_id, list_id=list_id, change="added"))
    assert update is not None
    return update


async def until_listening(hub: LiveStreams, count: int = 1) -> None:
    async with asyncio.timeout(WAIT):
        while hub.open_count() < count:
            await asyncio.sleep(0.001)


class Reader:
    """Reads a stream's messages as the client would."""

    def __init__(self, stream: AsyncIterator[bytes]):
        self.stream = stream

    async def message(self) -> str:
        async with asyncio.timeout(WAIT):
            return (await anext(self.stream)).decode()

    async def event(self) -> tuple[int, str, dict]:
        fields = dict(line.split(": ", 1) for line in (await self.message()).strip().split("\n"))
        return int(fields["id"]), fields["event"], json.loads(fields["data"])


async def test_a_campaign_stream_starts_with_the_current_state_then_each_change() -> None:
    hub = streams()

    async def current() -> LiveUpdate:
        return progress("cmp-1", 2)

    reader = Reader(hub.stream("acct-1", 5, campaign_id="cmp-1", current=current))
    assert await reader.message() == "retry: 1500\n\n"
    assert await reader.event() == (5, "campaign", {**progress("cmp-1", 2).data})
    hub.publish(progress("cmp-1", 3))
    event_id, name, data = await reader.event()
    assert (event_id, name, data["sent_count"]) == (6, "campaign", 3)
    await reader.stream.aclose()
    assert hub.open_count() == 0


async def test_updates_reach_only_their_account_and_campaign() -> None:
    hub = streams()
    mine, account_wide = Reader(hub.stream("acct-1", 1, campaign_id="cmp-1")), Reader(hub.stream("acct-1", 1))
    others = Reader(hub.stream("acct-2", 1))
    for reader in (mine, account_wide, others):
        await reader.message()  # retry hint; the listener is registered from here on
    hub.publish(progress("cmp-1", 1, account_id="acct-2"))  # same campaign id, another account
    hub.publish(progress("cmp-2", 1))
    hub.publish(list_update("7"))
    hub.publish(progress("cmp-1", 4))

    assert (await mine.event())[2] == {**progress("cmp-1", 4).data}
    seen = [(name, data["id"]) for _, name, data in [await account_wide.event() for _ in range(3)]]
    assert sorted(seen) == [("campaign", "cmp-1"), ("campaign", "cmp-2"), ("list", "7")]
    assert (await others.event())[2]["sent_count"] == 1
    mine_next = asyncio.ensure_future(mine.message())
    await asyncio.sleep(INTERVAL * 3)
    assert not mine_next.done()  # nothing else was for cmp-1 of acct-1
    mine_next.cancel()


async def test_changes_within_the_interval_are_coalesced_and_the_last_state_always_arrives() -> None:
    hub = streams()
    reader = Reader(hub.stream("acct-1", 1, campaign_id="cmp-1"))
    await reader.message()
    hub.publish(progress("cmp-1", 1))
    assert (await reader.event())[2]["sent_count"] == 1
    for sent in range(2, 51):
        hub.publish(progress("cmp-1", sent))
    assert (await reader.event())[2]["sent_count"] == 50


async def test_a_steady_trickle_is_thinned_to_one_update_per_interval() -> None:
    hub = streams()
    reader = Reader(hub.stream("acct-1", 1, campaign_id="cmp-1"))
    await reader.message()
    received: list[int] = []

    async def read_until_last() -> None:
        while not received or received[-1] != 40:
            received.append((await reader.event())[2]["sent_count"])

    reading = asyncio.create_task(read_until_last())
    started = asyncio.get_running_loop().time()
    for sent in range(1, 41):
        hub.publish(progress("cmp-1", sent))
        await asyncio.sleep(INTERVAL / 10)
    await asyncio.wait_for(reading, WAIT)
    elapsed = asyncio.get_running_loop().time() - started
    assert received == sorted(received) and received[-1] == 40
    assert len(received) <= elapsed / INTERVAL + 2  # one at once, then at most one per interval


async def test_an_idle_stream_sends_heartbeat_comments() -> None:
    hub = streams(heartbeat=0.02)
    reader = Reader(hub.stream("acct-1", 1))
    await reader.message()
    assert await reader.message() == ": keep-alive\n\n"
    assert await reader.message() == ": keep-alive\n\n"


async def test_the_streams_end_when_the_gateway_stops_and_new_ones_end_at_once() -> None:
    hub = streams()
    readers = [Reader(hub.stream("acct-1", 1)), Reader(hub.stream("acct-2", 1, campaign_id="c"))]
    for reader in readers:
        await reader.message()
    hub.close()
    for reader in readers:
        with pytest.raises(StopAsyncIteration):
            await reader.message()
    assert hub.open_count() == 0
    late = Reader(hub.stream("acct-1", 1))
    await late.message()
    with pytest.raises(StopAsyncIteration):
        await late.message()


async def test_a_client_that_goes_away_leaves_no_listener() -> None:
    hub = streams()

    async def consume() -> None:
        async for _ in hub.stream("acct-1", 1, campaign_id="cmp-1"):
            pass

    task = asyncio.create_task(consume())
    await until_listening(hub)
    task.cancel()  # what Starlette does when the client disconnects
    await asyncio.gather(task, return_exceptions=True)
    assert hub.open_count() == 0


async def test_a_campaign_gone_by_the_time_the_stream_starts_ends_it() -> None:
    hub = streams()

    async def deleted() -> LiveUpdate:
        raise NotFound("campaign not found")

    reader = Reader(hub.stream("acct-1", 1, campaign_id="cmp-1", current=deleted))
    await reader.message()
    with pytest.raises(StopAsyncIteration):
        await reader.message()
    assert hub.open_count() == 0


def test_only_status_and_subscriber_changes_become_updates() -> None:
    assert live_update_of(CampaignControlChanged(account_id="a", campaign_id="c", state="paused")) is None
    assert live_update_of(CampaignStatusChanged(account_id="a", campaign_id="c", status="sent")).topic == "campaign"


async def test_after_the_feed_missed_updates_a_campaign_stream_re_reads_its_state() -> None:
    hub = streams()
    states = iter([progress("cmp-1", 1), progress("cmp-1", 7, status="sent")])

    async def current() -> LiveUpdate:
        return next(states)

    reader = Reader(hub.stream("acct-1", 1, campaign_id="cmp-1", current=current))
    await reader.message()
    assert (await reader.event())[2]["sent_count"] == 1
    hub.missed_some()  # e.g. the NATS connection was down while the campaign finished
    _, _, data = await reader.event()
    assert (data["status"], data["sent_count"]) == ("sent", 7)


class FakeSubscription:
    def __init__(self, subject: str):
        self.subject = subject
        self.unsubscribed = False

    async def unsubscribe(self) -> None:
        self.unsubscribed = True


class FakeNats:
    def __init__(self) -> None:
        self.stats = {"reconnects": 0}
        self.callbacks: dict[str, Any] = {}
        self.subscriptions: list[FakeSubscription] = []

    async def subscribe(self, subject: str, cb: Any) -> FakeSubscription:
        self.callbacks[subject] = cb
        self.subscriptions.append(FakeSubscription(subject))
        return self.subscriptions[-1]


async def test_the_feed_fans_out_each_event_and_tells_of_reconnects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_feed, "RECONNECT_CHECK_SECONDS", 0.005)
    nc, published, missed = FakeNats(), [], []
    feed = event_feed.NatsEventFeed(nc, published.append, lambda: missed.append(True))  # type: ignore[arg-type]
    running = asyncio.create_task(feed.run())
    async with asyncio.timeout(WAIT):
        while len(nc.callbacks) < 2:
            await asyncio.sleep(0.001)
    assert set(nc.callbacks) == {subjects.CAMPAIGN_STATUS_CHANGED, subjects.AUDIENCE_SUBSCRIBER_CHANGED}
    on_status = nc.callbacks[subjects.CAMPAIGN_STATUS_CHANGED]
    await on_status(SimpleNamespace(subject="s", data=b"not json"))
    await on_status(SimpleNamespace(subject="s", data=CampaignStatusChanged(account_id="a", campaign_id="c", status="sent").to_json()))
    assert [(u.topic, u.account_id, u.subject_id) for u in published] == [("campaign", "a", "c")]

    missed.clear()
    nc.stats["reconnects"] += 1
    async with asyncio.timeout(WAIT):
        while not missed:
            await asyncio.sleep(0.001)
    feed.stop()
    await asyncio.wait_for(running, WAIT)
    assert all(subscription.unsubscribed for subscription in nc.subscriptions)
