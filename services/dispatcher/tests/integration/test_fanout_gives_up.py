"""B7, against real PostgreSQL and NATS: an audience service that always answers 503 makes the
dispatcher give up after `fanout_max_attempts` deliveries of the send request, with FanoutFailed (and
its reason) on the CAMPAIGN stream, and the request acked rather than dropped or retried forever."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from nats.js import JetStreamContext

from mailstify_contracts import CampaignContent, CampaignSendRequested, FanoutCompleted, FanoutFailed, subjects, topology
from mailstify_devstack.inprocess import consumed_up_to, running_service, serve_app, stream_events, until
from mailstify_messaging import OutgoingMessage, publish

from dispatcher.config import Settings
from dispatcher.entrypoints.app import create_app

from .conftest import TOKEN

pytestmark = pytest.mark.integration

CONTENT = CampaignContent(subject="Hi", from_name="Team", from_email="team@example.com", body_html="<p>Hi</p>")


def unavailable_audience(calls: list[str]) -> FastAPI:
    app = FastAPI()

    @app.get("/internal/lists/{list_id}/recipients")
    async def recipients(list_id: str) -> JSONResponse:
        calls.append(list_id)
        return JSONResponse({"detail": "audience database is down"}, status_code=503)

    return app


async def fanout_ends_of(js: JetStreamContext, campaign_id: str) -> list[FanoutCompleted | FanoutFailed]:
    # Read until every message stored under the subjects was seen (the stream is shared with other tests).
    subject = "campaign.fanout.>"
    info = await js.stream_info(topology.CAMPAIGN_STREAM.name, subjects_filter=subject)
    stored = sum((info.state.subjects or {}).values())
    events = await stream_events(js, topology.CAMPAIGN_STREAM.name, subject, expected=stored, timeout=30)
    assert len(events) >= stored, f"read {len(events)} of {stored} stored events"
    return [e for e in events if isinstance(e, (FanoutCompleted, FanoutFailed)) and e.campaign_id == campaign_id]



async def test_an_audience_that_always_fails_ends_the_fanout_with_fanout_failed(
    nats_server, fresh_database, js: JetStreamContext
) -> None:
    campaign_id = uuid.uuid4().hex
    account = f"acct-{uuid.uuid4().hex[:8]}"
    # A list id of its own: the stream is shared with other tests' send requests.
    list_id = f"list-{uuid.uuid4().hex[:8]}"
    request = CampaignSendRequested(account_id=account, campaign_id=campaign_id, list_id=list_id, content=CONTENT)
    calls: list[str] = []

    def my_calls() -> int:
        return calls.count(list_id)

    try:
        async with serve_app(unavailable_audience(calls)) as audience_url:
            settings = Settings(
                database_url=fresh_database,
                nats_url=nats_server.url,
                audience_url=audience_url,
                internal_token=TOKEN,
                fanout_max_attempts=2,
            )
            async with running_service(create_app(settings)):
                first = await publish(js, OutgoingMessage.for_event(request, subjects.CAMPAIGN_SEND_REQUESTED))
                assert not first.duplicate

                (ended,) = await until(lambda: fanout_ends_of(js, campaign_id), timeout=120)
                assert isinstance(ended, FanoutFailed)
                assert (ended.account_id, ended.published) == (account, 0)
                assert "after 2 attempts" in ended.reason and "audience database is down" in ended.reason
                assert my_calls() == 2

                # Acked: nothing left pending, and the request is not delivered again.
                await until(lambda: consumed_up_to(js, topology.DISPATCHER_SEND_REQUESTS, first.seq), timeout=60)
                assert my_calls() == 2

                # A redelivered request (new msg id) of the failed fan-out does nothing. It is stored
                # (not a duplicate) and acked; "nothing" is judged by the audience calls, since a second
                # FanoutFailed/FanoutCompleted would share the first one's msg id and be dropped.
                again = CampaignSendRequested(**{**request.model_dump(), "event_id": uuid.uuid4()})
                redelivered = await publish(js, OutgoingMessage.for_event(again, subjects.CAMPAIGN_SEND_REQUESTED))
                assert not redelivered.duplicate
                await until(lambda: consumed_up_to(js, topology.DISPATCHER_SEND_REQUESTS, redelivered.seq), timeout=60)
                assert my_calls() == 2
                assert len(await fanout_ends_of(js, campaign_id)) == 1
    finally:
        kv = await js.key_value(topology.CAMPAIGN_CONTENT.bucket)
        await kv.purge(campaign_id)


def test_send_requests_are_never_exhausted_by_jetstream() -> None:
    assert topology.DISPATCHER_SEND_REQUESTS.max_deliver == -1
