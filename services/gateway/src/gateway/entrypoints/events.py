"""Live progress as server-sent events, served by the gateway itself (registered before the proxy,
so `/api/v1/campaigns/{id}/events` is not relayed to the campaign service).

Each message is `id: <n>`, `event: campaign` or `event: list`, `data: <JSON>`:
- campaign: `{id, status, total, sent_count, failed_count, unknown_count, cancelled_count,
  unsubscribe_count, last_error}` — a full snapshot, at most ~4 a second per campaign, the latest
  always delivered, and every status the campaign went through (a change of status is never
  merged into the next snapshot);
- list (account stream only): `{id, change, subscriber_id, email, status, import_id, imported,
  updated}` — the latest change of that list (`added|updated|removed|imported`), at most ~4 a
  second per list: re-read the list for its counts.

`id:` is a counter of the stream, not a JetStream sequence: the gateway receives these events over
a core NATS subscription (no per-replica consumer state), and a sequence would promise a replay
from that point that nobody needs. Every campaign message is the complete state, so a reconnect
(`Last-Event-ID`) resumes by sending the current state again, and the counter carries on from the
id the browser sent so ids keep rising. Comments (`: keep-alive`) every ~15 s keep proxies from
closing an idle stream; `retry:` tells the browser how soon to reconnect.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse

from ..domain import sse
from ..service_layer.campaign_state import current_campaign_progress
from .dependencies import Dependencies
from .security import Authenticated

router = APIRouter(tags=["events"])

EVENT_STREAM = "text/event-stream"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # nginx: do not buffer

LastEventId = Annotated[
    str | None,
    Header(alias="Last-Event-ID", description="sent by a reconnecting browser: the stream resumes from the current state"),
]


def _described(what: str) -> dict:
    return {200: {"content": {EVENT_STREAM: {"schema": {"type": "string"}}}, "description": what}}


@router.get(
    "/api/v1/campaigns/{campaign_id}/events",
    response_class=StreamingResponse,
    summary="Live status and counts of a campaign",
    responses={
        **_described("`event: campaign` messages; the first is the campaign's current state"),
        404: {"description": "no such campaign in the caller's account"},
    },
)
async def campaign_events(
    campaign_id: str, principal: Authenticated, dependencies: Dependencies, last_event_id: LastEventId = None
) -> StreamingResponse:
    account_id, upstreams = principal.account_id, dependencies.upstreams
    # Answered before the stream starts, so another account's campaign is a 404 like the API's.
    await current_campaign_progress(upstreams, account_id, campaign_id)
    stream = dependencies.live_streams.stream(
        account_id,
        sse.next_event_id(last_event_id),
        campaign_id=campaign_id,
        current=lambda: current_campaign_progress(upstreams, account_id, campaign_id),
    )
    return StreamingResponse(stream, media_type=EVENT_STREAM, headers=STREAM_HEADERS)


@router.get(
    "/api/v1/events",
    response_class=StreamingResponse,
    summary="Live changes of the account's campaigns and lists",
    responses=_described("`event: campaign` and `event: list` messages as things change"),
)
async def account_events(
    principal: Authenticated, dependencies: Dependencies, last_event_id: LastEventId = None
) -> StreamingResponse:
    stream = dependencies.live_streams.stream(principal.account_id, sse.next_event_id(last_event_id))
    return StreamingResponse(stream, media_type=EVENT_STREAM, headers=STREAM_HEADERS)
