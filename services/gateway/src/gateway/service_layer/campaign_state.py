"""A campaign's current status and counts, asked of the campaign service on the caller's behalf:
what an event stream sends first, and its check that the campaign is the caller's."""

from __future__ import annotations

import json
from urllib.parse import quote

from mailstify_servicekit.errors import NotFound, UpstreamUnavailable

from ..domain.live_updates import LiveUpdate, campaign_progress_of_resource
from .ports import Upstreams

CAMPAIGN_NOT_FOUND = "campaign not found"


async def current_campaign_progress(upstreams: Upstreams, account_id: str, campaign_id: str) -> LiveUpdate:
    """NotFound for another account's campaign or an unknown one (the campaign service scopes its
    answer to `account_id`)."""
    reply = await upstreams.open(
        "campaign",
        "GET",
        raw_path=f"/api/v1/campaigns/{quote(campaign_id, safe='')}".encode(),
        raw_query=b"",
        headers=[("accept", "application/json"), ("accept-encoding", "identity")],  # read here, not relayed
        account_id=account_id,
        body=None,
    )
    try:
        body = b"".join([chunk async for chunk in reply.body])
    finally:
        await reply.close()
    if reply.status_code == 404:
        raise NotFound(CAMPAIGN_NOT_FOUND)
    if reply.status_code != 200:
        raise UpstreamUnavailable(f"the campaign service answered {reply.status_code}; try again shortly")
    try:
        campaign = json.loads(body)
        return campaign_progress_of_resource(account_id, campaign)
    except (ValueError, KeyError, TypeError) as exc:
        raise UpstreamUnavailable("the campaign service gave an unreadable answer") from exc
