"""Issue 7 against real PostgreSQL and NATS, through the dispatcher's own consumers:
- exact totals: the process dies mid-page, the list changes before it resumes, and the resumed
  fan-out republishes exactly the recorded page: its total is the set of recipients on MAIL;
- pause and cancel hold: a control state written to the CAMPAIGN_CONTROL bucket mid-fan-out stops
  it at the next page (pause: the resume's request carries on; cancel: total = published so far);
- test sends and retry-failed rounds are queued by the named-sends consumer."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
from nats.js import JetStreamContext
from nats.js.api import PubAck

from mailstify_contracts import (
    CampaignContent,
    CampaignControlChanged,
    CampaignRecipientsRequeued,
    CampaignSendRequested,
    CampaignTestSendRequested,
    ControlState,
    DeliverEmail,
    Event,
    Recipient,
    subjects,
    topology,
)
from mailstify_devstack.inprocess import consumed_up_to, running_service, serve_app, until
from mailstify_messaging import OutgoingMessage, publish

from dispatcher.config import Settings
from dispatcher.entrypoints.app import create_app
from dispatcher.service_layer.handlers import Dispatcher
from dispatcher.service_layer.ports import DeliveryPublisher

from .conftest import TOKEN, StubAudience, completions_of, deliver_emails_of, forget_campaign, queued_count

pytestmark = pytest.mark.integration

PAGE = 100
CONTENT = CampaignContent(subject="Hi", from_name="Team", from_email="team@example.com", body_html="<p>Hi</p>")


class ProcessDied(Exception):
    pass


class DiesMidPage:
    """The real mail queue, until the process dies `messages` messages into page `page` (from 1)."""

    def __init__(self, real: DeliveryPublisher, page: int, messages: int):
        self.real, self.page, self.messages, self.calls = real, page, messages, 0

    async def publish(self, deliveries: Sequence[DeliverEmail]) -> None:
        self.calls += 1
        if self.calls == self.page:
            await self.real.publish(deliveries[: self.messages])
            raise ProcessDied(f"killed {self.messages} messages into page {self.page}")
        await self.real.publish(deliveries)


class ThenControl:
    """The real mail queue; once page `after_page` is acknowledged, the campaign service writes a
    control state (as its outbox does: a put of the campaign's key)."""

    def __init__(self, real: DeliveryPublisher, after_page: int, write: Callable[[], Awaitable[None]]):
        self.real, self.after_page, self.write, self.calls = real, after_page, write, 0

    async def publish(self, deliveries: Sequence[DeliverEmail]) -> None:
        await self.real.publish(deliveries)
        self.calls += 1
        if self.calls == self.after_page:
            await self.write()


class Case:
    def __init__(self, js: JetStreamContext, subscribers: int):
        self.js = js
        self.account = f"acct-{uuid.uuid4().hex[:8]}"
        self.campaign_id = uuid.uuid4().hex
        self.audience = StubAudience(self.account, f"list-{uuid.uuid4().hex[:8]}", range(1, subscribers + 1))

    def request(self) -> CampaignSendRequested:
        """A new send request each time (a new event id), as the campaign service emits on resume."""
        return CampaignSendRequested(
            account_id=self.account, campaign_id=self.campaign_id, list_id=self.audience.list_id, content=CONTENT
        )

    async def emit(self, event: Event, subject: str) -> PubAck:
        ack = await publish(self.js, OutgoingMessage.for_event(event, subject))
        assert not ack.duplicate
        return ack

    async def settled(self, ack: PubAck, consumer=topology.DISPATCHER_SEND_REQUESTS) -> None:
        await until(lambda: consumed_up_to(self.js, consumer, ack.seq), timeout=60)

    async def set_control(self, state: ControlState) -> None:
        kv = await self.js.key_value(topology.CAMPAIGN_CONTROL.bucket)
        event = CampaignControlChanged(account_id=self.account, campaign_id=self.campaign_id, state=state)
        await kv.put(self.campaign_id, event.to_json())

    async def queued_subscribers(self) -> list[int]:
        queued = await deliver_emails_of(self.js, self.campaign_id)
        assert len({msg_id for msg_id, _ in queued}) == len(queued)
        return sorted(int(e.recipient.subscriber_id) for _, e in queued)

    async def total(self) -> int:
        (completed,) = await until(lambda: completions_of(self.js, self.campaign_id), timeout=60)
        return completed.total


@pytest.fixture
async def case(js: JetStreamContext) -> AsyncIterator[Case]:
    case = Case(js, subscribers=450)
    try:
        yield case
    finally:
        await forget_campaign(js, case.campaign_id)
        await (await js.key_value(topology.CAMPAIGN_CONTROL.bucket)).purge(case.campaign_id)


@contextlib.asynccontextmanager
async def dispatcher_for(case: Case, nats_url: str, database_url: str) -> AsyncIterator[Dispatcher]:
    """The dispatcher service (page size 100) running with the case's audience; yields its fan-out
    use case, whose mail queue a test may wrap."""
    async with serve_app(case.audience.app) as audience_url:
        settings = Settings(
            database_url=database_url,
            nats_url=nats_url,
            audience_url=audience_url,
            internal_token=TOKEN,
            fanout_page_size=PAGE,
        )
        app = create_app(settings)
        async with running_service(app):
            yield app.state.runtime.dependencies().fanouts


async def test_a_resume_after_a_crash_and_a_changed_list_totals_exactly_what_was_published(
    nats_server, fresh_database, case: Case
) -> None:
    async with dispatcher_for(case, nats_server.url, fresh_database) as dispatcher:
        real = dispatcher.publisher
        dispatcher.publisher = DiesMidPage(real, page=3, messages=37)
        with pytest.raises(ProcessDied):
            await dispatcher.fan_out(case.request())
        dispatcher.publisher = real
    assert await case.queued_subscribers() == list(range(1, 238))

    # While the dispatcher is down, subscribers leave: already mailed (5, 150, 220), on the recorded
    # page but not yet mailed (250, 299), on later pages (320, 400, 450).
    for gone in (5, 150, 220, 250, 299, 320, 400, 450):
        case.audience.ids.remove(gone)

    async with dispatcher_for(case, nats_server.url, fresh_database):
        await case.settled(await case.emit(case.request(), subjects.CAMPAIGN_SEND_REQUESTED))
        total = await case.total()

    expected = [*range(1, 301), *(i for i in range(301, 451) if i not in (320, 400, 450))]
    assert await case.queued_subscribers() == expected
    assert total == len(expected) == await queued_count(case.js, case.campaign_id)
    # The recorded page (after 200) was fetched once, before the crash; the resume went on after it.
    assert [c["after"] for c in case.audience.calls] == [None, "100", "200", "300", "402"]


async def test_a_pause_mid_fanout_holds_and_the_resume_request_carries_on(
    nats_server, fresh_database, case: Case
) -> None:
    async with dispatcher_for(case, nats_server.url, fresh_database) as dispatcher:
        dispatcher.publisher = ThenControl(dispatcher.publisher, after_page=1, write=lambda: case.set_control("paused"))
        await case.settled(await case.emit(case.request(), subjects.CAMPAIGN_SEND_REQUESTED))
        assert await case.queued_subscribers() == list(range(1, 101))

        # Redelivered while paused (a new event id, so JetStream keeps it): acked, nothing fetched.
        calls = len(case.audience.calls)
        await case.settled(await case.emit(case.request(), subjects.CAMPAIGN_SEND_REQUESTED))
        assert len(case.audience.calls) == calls == 1
        assert await completions_of(case.js, case.campaign_id) == []

        await case.set_control("active")
        await case.settled(await case.emit(case.request(), subjects.CAMPAIGN_SEND_REQUESTED))
        assert await case.total() == 450

    assert await case.queued_subscribers() == list(range(1, 451))
    assert case.audience.calls[1]["after"] == "100"


async def test_a_cancel_mid_fanout_ends_it_with_the_published_total(nats_server, fresh_database, case: Case) -> None:
    async with dispatcher_for(case, nats_server.url, fresh_database) as dispatcher:
        dispatcher.publisher = ThenControl(
            dispatcher.publisher, after_page=2, write=lambda: case.set_control("cancelled")
        )
        await case.settled(await case.emit(case.request(), subjects.CAMPAIGN_SEND_REQUESTED))
        assert await case.total() == 200

        # Over: a later request (a resume can no longer come, but a redelivery can) fetches nothing.
        await case.settled(await case.emit(case.request(), subjects.CAMPAIGN_SEND_REQUESTED))
    assert len(case.audience.calls) == 2
    assert await case.queued_subscribers() == list(range(1, 201))
    assert len(await completions_of(case.js, case.campaign_id)) == 1


async def test_test_sends_and_requeued_recipients_are_queued_once_each(
    nats_server, fresh_database, case: Case
) -> None:
    content_key = f"test-{uuid.uuid4().hex}"
    trial = CampaignTestSendRequested(
        account_id=case.account,
        campaign_id=case.campaign_id,
        content_key=content_key,
        content=CONTENT.model_copy(update={"subject": "[Test] Hi"}),
        recipients=[
            Recipient(subscriber_id=f"{subjects.TEST_SUBSCRIBER_PREFIX}req:{n}", email=f"t{n}@example.com")
            for n in range(2)
        ],
    )
    requeued = CampaignRecipientsRequeued(
        account_id=case.account,
        campaign_id=case.campaign_id,
        round=1,
        recipients=[Recipient(subscriber_id=str(i), email=f"s{i}@example.com") for i in (3, 8)],
    )
    async with dispatcher_for(case, nats_server.url, fresh_database):
        for event, subject in [(trial, subjects.CAMPAIGN_TEST_SEND_REQUESTED), (requeued, subjects.CAMPAIGN_RECIPIENTS_REQUEUED)]:
            await case.emit(event, subject)
            # Redelivered (a new event id): the same msg ids, dropped by JetStream.
            again = await case.emit(event.model_copy(update={"event_id": uuid.uuid4()}), subject)
            await case.settled(again, topology.DISPATCHER_NAMED_SENDS)

    queued = {msg_id: e for msg_id, e in await deliver_emails_of(case.js, case.campaign_id)}
    assert sorted(queued) == sorted(
        [
            subjects.deliver_msg_id(case.campaign_id, "test:req:0"),
            subjects.deliver_msg_id(case.campaign_id, "test:req:1"),
            subjects.deliver_msg_id(case.campaign_id, "3", 1),
            subjects.deliver_msg_id(case.campaign_id, "8", 1),
        ]
    )
    assert {(e.content_key, e.round) for e in queued.values()} == {(content_key, 0), (case.campaign_id, 1)}
    kv = await case.js.key_value(topology.CAMPAIGN_CONTENT.bucket)
    try:
        assert CampaignContent.model_validate_json((await kv.get(content_key)).value).subject == "[Test] Hi"
    finally:
        await kv.purge(content_key)
    assert case.audience.calls == []  # no fan-out involved
