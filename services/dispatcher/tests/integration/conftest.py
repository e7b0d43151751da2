"""What the dispatcher's integration tests share: a JetStream client on the session's NATS server,
a stub of the audience service's recipients cursor, and readers of what the dispatcher published."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import nats
import pytest
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from nats.js import JetStreamContext

from mailstify_contracts import DeliverEmail, FanoutCompleted, decode_event, subjects, topology
from mailstify_devstack.inprocess import stream_events
from mailstify_servicekit import ACCOUNT_HEADER, TOKEN_HEADER

TOKEN = "dispatcher-test-token"


@pytest.fixture
async def js(nats_server) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_server.url)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


class StubAudience:
    """The recipients cursor of the internal contract over one list of one account, subscribers
    `ids`; a test may remove some mid-fan-out, as unsubscribes would."""

    def __init__(self, account: str, list_id: str, ids: Iterable[int]) -> None:
        self.account = account
        self.list_id = list_id
        self.ids = sorted(ids)
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
        if request.headers.get(TOKEN_HEADER) != TOKEN or request.headers.get(ACCOUNT_HEADER) != self.account:
            return JSONResponse({"detail": "not found"}, status_code=404)
        if list_id != self.list_id:
            return JSONResponse({"detail": f"list {list_id} not found"}, status_code=404)
        self.calls.append({"after": after, "up_to": up_to})
        bound = int(up_to) if up_to is not None else self.ids[-1]
        eligible = [i for i in self.ids if (after is None or i > int(after)) and i <= bound]
        chosen = eligible[:limit]
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
                    for i in chosen
                ],
                "up_to": str(bound),
                "next_after": str(chosen[-1]) if len(eligible) > limit else None,
            }
        )


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


async def forget_campaign(js: JetStreamContext, campaign_id: str) -> None:
    """MAIL is a shared work queue: leave nothing for a mailer started by a later test; and no content."""
    await js.purge_stream(topology.MAIL_STREAM.name, subject=subjects.mail_deliver(campaign_id))
    kv = await js.key_value(topology.CAMPAIGN_CONTENT.bucket)
    await kv.purge(campaign_id)
