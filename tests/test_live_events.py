"""Live progress end to end: a campaign's event stream, opened through the gateway, shows the send
as it happens (`sending`, then `sent` with the exact counts) without anyone polling; the account's
stream sees the same changes; another account cannot open the stream; a reconnect resumes with
the current state."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from .conftest import Api, unique_subscribers

pytestmark = pytest.mark.e2e

WAIT = 90.0  # only bounds a hang: every read returns as soon as its message arrives


class Stream:
    """An open text/event-stream read as an EventSource reads it: `retry:` first, then messages."""

    def __init__(self, response: httpx.Response):
        self._lines = response.aiter_lines()

    async def _message(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        async for line in self._lines:
            if not line:
                if fields:
                    return fields
            elif not line.startswith(":"):  # heartbeats are comments
                name, _, value = line.partition(": ")
                fields[name] = value
        raise EOFError("the stream ended")

    async def opened(self) -> None:
        async with asyncio.timeout(WAIT):
            assert "retry" in await self._message()

    async def next(self) -> tuple[int, str, dict[str, Any]]:
        async with asyncio.timeout(WAIT):
            fields = await self._message()
        return int(fields["id"]), fields["event"], json.loads(fields["data"])

    async def campaign_until(self, campaign_id: str, status: str) -> list[tuple[int, dict[str, Any]]]:
        """Every message for `campaign_id` up to the first in `status`."""
        seen: list[tuple[int, dict[str, Any]]] = []
        while not seen or seen[-1][1]["status"] != status:
            event_id, name, data = await self.next()
            if name == "campaign" and data["id"] == campaign_id:
                seen.append((event_id, data))
        return seen


@asynccontextmanager
async def stream(client: httpx.AsyncClient, path: str, **headers: str) -> AsyncIterator[Stream]:
    async with client.stream("GET", f"/api/v1{path}", headers=headers, timeout=httpx.Timeout(30, read=None)) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        opened = Stream(response)
        await opened.opened()
        yield opened


async def test_the_campaign_stream_shows_the_send_as_it_happens(api: Api) -> None:
    mailing_list, _ = await api.new_list_with(unique_subscribers("Ada", "Grace", "Linus"))
    campaign = await api.new_campaign(mailing_list["id"])
    campaign_id = campaign["id"]

    async with stream(api.client, f"/campaigns/{campaign_id}/events") as progress, stream(api.client, "/events") as account:
        first_id, name, current = await progress.next()
        assert name == "campaign" and current["id"] == campaign_id and current["status"] == "draft"

        await api.call("POST", f"/campaigns/{campaign_id}/send", 202, json={})

        seen = await progress.campaign_until(campaign_id, "sent")
        statuses = [data["status"] for _, data in seen]
        assert statuses[0] == "sending" and set(statuses[:-1]) == {"sending"}
        ids = [first_id] + [event_id for event_id, _ in seen]
        assert ids == sorted(set(ids))  # rising, never repeated
        final = seen[-1][1]
        counts = ("total", "sent_count", "failed_count", "unknown_count", "cancelled_count")
        assert tuple(final[name] for name in counts) == (3, 3, 0, 0, 0)

        account_seen = await account.campaign_until(campaign_id, "sent")
        assert account_seen[0][1]["status"] == "sending"
        assert tuple(account_seen[-1][1][name] for name in counts) == (3, 3, 0, 0, 0)

    # What a reconnecting browser sends: the stream resumes with the current (final) state.
    async with stream(api.client, f"/campaigns/{campaign_id}/events", **{"Last-Event-ID": str(ids[-1])}) as resumed:
        resumed_id, _, state = await resumed.next()
    assert resumed_id == ids[-1] + 1
    assert state["status"] == "sent" and tuple(state[name] for name in counts) == (3, 3, 0, 0, 0)


async def test_another_account_cannot_open_a_campaigns_stream(api: Api, mailstify_stack) -> None:
    mailing_list, _ = await api.new_list_with(unique_subscribers("Ada"))
    campaign = await api.new_campaign(mailing_list["id"])
    async with httpx.AsyncClient(base_url=mailstify_stack.gateway_url, timeout=30) as other:
        signup = await other.post(
            "/api/v1/auth/signup", json={"email": f"other-{uuid.uuid4().hex[:8]}@example.com", "password": "correct horse 2"}
        )
        assert signup.status_code == 201, signup.text
        # A browser's EventSource: the session cookie, no CSRF header (a GET changes nothing).
        refused = await other.get(f"/api/v1/campaigns/{campaign['id']}/events")
        assert refused.status_code == 404
        assert refused.headers["content-type"].startswith("application/json") and refused.json()["detail"]
        async with stream(other, "/events"):
            pass  # its own account stream opens with the cookie alone


async def test_the_account_stream_tells_of_list_changes(api: Api) -> None:
    mailing_list, _ = await api.new_list_with([])
    async with stream(api.client, "/events") as account:
        (person,) = unique_subscribers("Ada")
        await api.call("POST", f"/lists/{mailing_list['id']}/subscribers", 201, json=person)
        while True:
            _, name, data = await account.next()
            if name == "list" and data["id"] == mailing_list["id"]:
                break
    assert data["change"] == "added" and data["email"] == person["email"]
