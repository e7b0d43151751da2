"""The dispatcher against real PostgreSQL and NATS, with a stub audience service over HTTP:
2,500 recipients over 3 pages become 2,500 distinct DeliverEmail messages on MAIL and one
FanoutCompleted{total: 2500}; a redelivered request adds nothing."""

from __future__ import annotations

import uuid

import pytest
from nats.js import JetStreamContext

from mailstify_contracts import CampaignContent, CampaignSendRequested, subjects, topology
from mailstify_devstack.inprocess import consumed_up_to, running_service, serve_app, until
from mailstify_messaging import OutgoingMessage, publish

from dispatcher.config import Settings
from dispatcher.entrypoints.app import create_app

from .conftest import TOKEN, StubAudience, completions_of, deliver_emails_of, forget_campaign, queued_count

pytestmark = pytest.mark.integration

ACCOUNT = f"acct-{uuid.uuid4().hex[:8]}"
LIST_ID = "list-2500"
SUBSCRIBERS = 2500
CONTENT = CampaignContent(
    subject="Hello {{ subscriber.first_name }}",
    from_name="Team",
    from_email="team@example.com",
    body_html="<p>Hi {{ subscriber.first_name }}</p>",
)


@pytest.fixture
async def audience() -> StubAudience:
    return StubAudience(ACCOUNT, LIST_ID, range(1, SUBSCRIBERS + 1))


async def test_a_list_of_2500_fans_out_exactly_once(
    nats_server, fresh_database, audience: StubAudience, js: JetStreamContext
) -> None:
    campaign_id = uuid.uuid4().hex
    request = CampaignSendRequested(account_id=ACCOUNT, campaign_id=campaign_id, list_id=LIST_ID, content=CONTENT)
    try:
        async with serve_app(audience.app) as audience_url:
            settings = Settings(
                database_url=fresh_database, nats_url=nats_server.url, audience_url=audience_url, internal_token=TOKEN
            )
            async with running_service(create_app(settings)):
                first = await publish(js, OutgoingMessage.for_event(request, subjects.CAMPAIGN_SEND_REQUESTED))
                assert not first.duplicate

                (completed,) = await until(lambda: completions_of(js, campaign_id), timeout=120)
                assert completed.total == SUBSCRIBERS

                async def all_queued() -> bool:
                    return await queued_count(js, campaign_id) >= SUBSCRIBERS

                await until(all_queued, timeout=30)
                queued = await deliver_emails_of(js, campaign_id)
                assert len(queued) == SUBSCRIBERS
                assert len({msg_id for msg_id, _ in queued}) == SUBSCRIBERS
                # One message per distinct subscriber, judged by the payload (not only by the msg ids).
                assert sorted(int(e.recipient.subscriber_id) for _, e in queued) == list(range(1, SUBSCRIBERS + 1))
                assert {msg_id for msg_id, _ in queued} == {
                    subjects.deliver_msg_id(campaign_id, str(i)) for i in range(1, SUBSCRIBERS + 1)
                }
                sample = next(e for _, e in queued if e.recipient.subscriber_id == "7")
                assert (sample.recipient.email, sample.recipient.first_name, sample.recipient.attributes) == (
                    "s7@example.com",
                    "S7",
                    {"n": 7},
                )
                assert sample.content_key == campaign_id

                kv = await js.key_value(topology.CAMPAIGN_CONTENT.bucket)
                stored = await kv.get(campaign_id)
                assert CampaignContent.model_validate_json(stored.value) == CONTENT

                # Three pages, the snapshot pinned by the first.
                assert audience.calls == [
                    {"after": None, "up_to": None},
                    {"after": "1000", "up_to": "2500"},
                    {"after": "2000", "up_to": "2500"},
                ]

                # The same request again, under a new msg id so JetStream cannot de-duplicate it: it is
                # stored (not a duplicate) and the dispatcher acks it.
                again = CampaignSendRequested(**{**request.model_dump(), "event_id": uuid.uuid4()})
                redelivered = await publish(js, OutgoingMessage.for_event(again, subjects.CAMPAIGN_SEND_REQUESTED))
                assert not redelivered.duplicate
                await until(lambda: consumed_up_to(js, topology.DISPATCHER_SEND_REQUESTS, redelivered.seq), timeout=60)

                # A second fan-out is counted at its effects, not on the streams: its DeliverEmail and
                # FanoutCompleted would carry the same deterministic msg ids and JetStream would drop
                # them. It would page the audience again and rewrite the content.
                republished = await publish(
                    js,
                    OutgoingMessage.for_event(
                        queued[0][1], subjects.mail_deliver(campaign_id), msg_id=queued[0][0]
                    ),
                )
                assert republished.duplicate  # what a second fan-out's publishes would meet
                assert len(audience.calls) == 3
                assert (await kv.get(campaign_id)).revision == stored.revision
                assert await queued_count(js, campaign_id) == SUBSCRIBERS
                assert len(await completions_of(js, campaign_id)) == 1
    finally:
        await forget_campaign(js, campaign_id)
