"""The dispatcher against real PostgreSQL and NATS, with a stub audience service over HTTP:
2,500 recipients over 3 pages become 2,500 distinct DeliverEmail messages on MAIL and one
FanoutCompleted{total: 2500}; a redelivered request adds nothing."""

from __future__ import annotations

import uuid

import nats
import pytest
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from nats.js import JetStreamContext

from mailstify_contracts import (
    CampaignContent,
    CampaignSendRequested,
    DeliverEmail,
    FanoutCompleted,
    decode_event,
    subjects,
    topology,
)
from mailstify_devstack.inprocess import consumed_up_to, running_service, stream_events, until
from mailstify_devstack.inprocess import serve_app
from mailstify_messaging import OutgoingMessage, publish
from mailstify_servicekit import ACCOUNT_HEADER, TOKEN_HEADER

from dispatcher.config import Settings
from dispatcher.entrypoints.app import create_app

pytestmark = pytest.mark.integration

TOKEN = "dispatcher-test-token"
ACCOUNT = f"acct-{uuid.uuid4().hex[:8]}"
LIST_ID = "list-2500"
SUBSCRIBERS = 2500
CONTENT = CampaignContent(
    subject="Hello {{ subscriber.first_name }}",
    from_name="Team",
    from_email="team@example.com",
    body_html="<p>Hi {{ subscriber.first_name }}</p>",
)


class StubAudience:
    """The recipients cursor of the internal contract, over subscribers 1..2500 of one list."""

    def __init__(self) -> None:
        self.calls: list[dict[str, str | None]] = []
        self.app = FastAPI()
        self.app.get("/internal/lists/{list_id}/recipients")(self.recipients)

    async def recipients(
        self,
        list_id: str,
        request: Request,
        after: str | None = None,
        up_to: str | None = None,
        limit: int = Query(default=1000, ge=1, le=5000),
    ) -> JSONResponse:
        if request.headers.get(TOKEN_HEADER) != TOKEN or request.headers.get(ACCOUNT_HEADER) != ACCOUNT:
            return JSONResponse({"detail": "not found"}, status_code=404)
        if list_id != LIST_ID:
            return JSONResponse({"detail": f"list {list_id} not found"}, status_code=404)
        self.calls.append({"after": after, "up_to": up_to})
        bound = int(up_to) if up_to is not None else SUBSCRIBERS
        start = int(after) + 1 if after is not None else 1
        ids = list(range(start, min(bound, start + limit - 1) + 1))
        return JSONResponse(
            {
                "items": [
                    {
                        "subscriber_id": str(i),
                        "email": f"s{i}@example.com",
                        "first_name": f"S{i}",
                        "last_name": None,
                        "attributes": {"n": i},
                    }
                    for i in ids
                ],
                "up_to": str(bound),
                "next_after": str(ids[-1]) if ids and ids[-1] < bound else None,
            }
        )


@pytest.fixture
async def audience() -> StubAudience:
    return StubAudience()


async def deliver_emails_of(js: JetStreamContext, campaign_id: str) -> list[tuple[str, DeliverEmail]]:
    """(msg id, event) of every DeliverEmail queued for the campaign, read by sequence (MAIL is a
    work queue: a second consumer on it is not allowed)."""
    subject = subjects.mail_deliver(campaign_id)
    found: list[tuple[str, DeliverEmail]] = []
    seq = 0
    while True:
        try:
            msg = await js.get_msg(topology.MAIL_STREAM.name, seq=seq + 1, subject=subject, next=True)
        except nats.js.errors.NotFoundError:
            return found
        event = decode_event(msg.data)
        assert isinstance(event, DeliverEmail)
        found.append((msg.headers["Nats-Msg-Id"], event))
        seq = msg.seq


async def queued_count(js: JetStreamContext, campaign_id: str) -> int:
    subject = subjects.mail_deliver(campaign_id)
    info = await js.stream_info(topology.MAIL_STREAM.name, subjects_filter=subject)
    return (info.state.subjects or {}).get(subject, 0)


async def completions_of(js: JetStreamContext, campaign_id: str) -> list[FanoutCompleted]:
    # Read until every message stored under the subject was seen (the stream is shared with other tests).
    subject = subjects.CAMPAIGN_FANOUT_COMPLETED
    info = await js.stream_info(topology.CAMPAIGN_STREAM.name, subjects_filter=subject)
    stored = (info.state.subjects or {}).get(subject, 0)
    events = await stream_events(js, topology.CAMPAIGN_STREAM.name, subject, expected=stored, timeout=30)
    assert len(events) >= stored, f"read {len(events)} of {stored} stored events"
    return [e for e in events if isinstance(e, FanoutCompleted) and e.campaign_id == campaign_id]



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
        # MAIL is a shared work queue: leave nothing for a mailer started by a later test.
        await js.purge_stream(topology.MAIL_STREAM.name, subject=subjects.mail_deliver(campaign_id))
        kv = await js.key_value(topology.CAMPAIGN_CONTENT.bucket)
        await kv.purge(campaign_id)
