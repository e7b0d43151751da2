"""The gateway's own event streams, served by uvicorn over a real socket, fed by real NATS, in front
of a stub campaign service: the campaign check (404 for another account's campaign), the current
state first, the changes published on NATS, the account stream, and the end of every stream when
the gateway stops."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import nats
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gateway.config import Settings
from gateway.entrypoints.app import create_app
from mailstify_contracts import CampaignStatusChanged, SubscriberChanged, subjects
from mailstify_devstack.inprocess import serve_app

from .conftest import INTERNAL_TOKEN, csrf, sign_up

pytestmark = pytest.mark.integration

WAIT = 20.0  # only bounds a hang


@dataclass
class StubCampaigns:
    """campaign id → (owning account, the campaign's JSON)."""

    campaigns: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    reads: int = 0


def _stub_campaign_service(stub: StubCampaigns) -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/campaigns/{campaign_id}")
    async def campaign(campaign_id: str, request: Request) -> JSONResponse:
        stub.reads += 1
        owner, body = stub.campaigns.get(campaign_id, (None, {}))
        if owner is None or request.headers.get("x-mailstify-account") != owner:
            return JSONResponse({"detail": "campaign not found"}, status_code=404)
        return JSONResponse(body)

    return app


@dataclass
class LiveGateway:
    url: str
    stub: StubCampaigns
    nc: nats.NATS
    stop: Any  # runs the gateway's shutdown while its HTTP server still serves

    async def account(self) -> tuple[httpx.AsyncClient, str]:
        """A client with a fresh account's API key, and that account's id."""
        client = httpx.AsyncClient(base_url=self.url, timeout=WAIT)
        signed_up = await sign_up(client)
        key = (await client.post("/api/v1/api-keys", json={"name": "live"}, headers=csrf(client))).json()["key"]
        client.cookies.clear()
        client.headers["Authorization"] = f"Bearer {key}"
        return client, signed_up["account"]["id"]

    def add_campaign(self, account_id: str, campaign_id: str, **fields: Any) -> None:
        body = {"id": campaign_id, "name": "Welcome", "status": "draft", "total": None, "sent_count": 0}
        self.stub.campaigns[campaign_id] = (account_id, {**body, **fields})

    async def publish(self, event: Any, subject: str = subjects.CAMPAIGN_STATUS_CHANGED) -> None:
        await self.nc.publish(subject, event.to_json())
        await self.nc.flush()


@pytest.fixture
async def live(fresh_database: str, nats_server) -> AsyncIterator[LiveGateway]:
    stub = StubCampaigns()
    async with contextlib.AsyncExitStack() as stack:
        campaign_url = await stack.enter_async_context(serve_app(_stub_campaign_service(stub)))
        settings = Settings(
            database_url=fresh_database,
            nats_url=nats_server.url,
            internal_token=INTERNAL_TOKEN,
            audience_url=campaign_url,
            campaign_url=campaign_url,
            event_stream_min_interval_seconds=0.05,
        )
        app = create_app(settings)
        url = await stack.enter_async_context(serve_app(app))  # exits last: after the lifespan below
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        stopped = False

        async def stop() -> None:
            nonlocal stopped
            if not stopped:
                stopped = True
                await lifespan.__aexit__(None, None, None)

        stack.push_async_callback(stop)
        await asyncio.wait_for(app.state.runtime.booted.wait(), 60)
        nc = await nats.connect(nats_server.url)
        stack.push_async_callback(nc.close)
        yield LiveGateway(url, stub, nc, stop)


class EventReader:
    """The messages of an open stream, as an EventSource would see them."""

    def __init__(self, response: httpx.Response):
        self._lines = response.aiter_lines()

    async def opened(self) -> int:
        """The reconnect hint, the stream's first line: sent once the stream is listening."""
        async with asyncio.timeout(WAIT):
            async for line in self._lines:
                if line.startswith("retry: "):
                    return int(line.removeprefix("retry: "))
        raise EOFError("the stream ended")

    async def next(self) -> dict[str, Any]:
        message: dict[str, Any] = {}
        async with asyncio.timeout(WAIT):
            async for line in self._lines:
                if line == "":
                    if {"event", "data"} <= message.keys():
                        return {**message, "id": int(message["id"]), "data": json.loads(message["data"])}
                    message = {}
                elif not line.startswith(":"):  # a comment (heartbeat) is no field
                    name, _, value = line.partition(": ")
                    message[name] = value
        raise EOFError("the stream ended")

    async def rest(self) -> list[str]:
        """The lines left until the stream ends."""
        async with asyncio.timeout(WAIT):
            return [line async for line in self._lines]


async def test_a_campaign_stream_sends_the_current_state_then_its_changes(live: LiveGateway) -> None:
    client, account_id = await live.account()
    live.add_campaign(account_id, "cmp-1", status="sending", total=None, sent_count=2)
    async with client.stream("GET", "/api/v1/campaigns/cmp-1/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        reader = EventReader(response)
        first = await reader.next()
        assert first["event"] == "campaign" and first["id"] == 1
        assert first["data"]["id"] == "cmp-1" and first["data"]["status"] == "sending"
        assert first["data"]["sent_count"] == 2

        await live.publish(CampaignStatusChanged(account_id="another", campaign_id="cmp-1", status="sent"))
        await live.publish(
            CampaignStatusChanged(account_id=account_id, campaign_id="cmp-1", status="sent", total=3, sent_count=3)
        )
        final = await reader.next()
        assert final["id"] == 2 and final["data"]["status"] == "sent"
        assert (final["data"]["total"], final["data"]["sent_count"]) == (3, 3)
    await client.aclose()


async def test_another_accounts_campaign_answers_404_and_no_credentials_401(live: LiveGateway) -> None:
    owner, owner_account = await live.account()
    stranger, _ = await live.account()
    live.add_campaign(owner_account, "cmp-2")
    answer = await stranger.get("/api/v1/campaigns/cmp-2/events")
    assert answer.status_code == 404 and answer.json() == {"detail": "campaign not found"}
    assert (await stranger.get("/api/v1/campaigns/no-such/events")).status_code == 404
    anonymous = await httpx.AsyncClient(base_url=live.url).get("/api/v1/campaigns/cmp-2/events")
    assert anonymous.status_code == 401
    for client in (owner, stranger):
        await client.aclose()


async def test_a_reconnect_resumes_with_the_current_state_and_rising_ids(live: LiveGateway) -> None:
    client, account_id = await live.account()
    live.add_campaign(account_id, "cmp-3", status="sending", total=5, sent_count=4)
    async with client.stream("GET", "/api/v1/campaigns/cmp-3/events", headers={"Last-Event-ID": "41"}) as response:
        resumed = await EventReader(response).next()
    assert resumed["id"] == 42 and resumed["data"]["sent_count"] == 4 and resumed["data"]["total"] == 5
    await client.aclose()


async def test_the_account_stream_carries_campaign_and_list_changes_of_the_account(live: LiveGateway) -> None:
    client, account_id = await live.account()
    async with client.stream("GET", "/api/v1/events") as response:
        assert response.status_code == 200
        reader = EventReader(response)
        assert await reader.opened() == 3000  # the default reconnect hint
        await live.publish(SubscriberChanged(account_id="another", list_id="9", change="added"), subjects.AUDIENCE_SUBSCRIBER_CHANGED)
        await live.publish(
            SubscriberChanged(account_id=account_id, list_id="7", change="imported", import_id="i1", imported=2),
            subjects.AUDIENCE_SUBSCRIBER_CHANGED,
        )
        await live.publish(CampaignStatusChanged(account_id=account_id, campaign_id="cmp-4", status="sending"))
        listed = await reader.next()
        assert listed["event"] == "list" and listed["data"]["id"] == "7" and listed["data"]["imported"] == 2
        campaign = await reader.next()
        assert campaign["event"] == "campaign" and campaign["data"]["id"] == "cmp-4"
    await client.aclose()


async def test_stopping_the_gateway_ends_its_open_streams(live: LiveGateway) -> None:
    client, account_id = await live.account()
    live.add_campaign(account_id, "cmp-5", status="sending")
    async with client.stream("GET", "/api/v1/campaigns/cmp-5/events") as campaign_response:
        async with client.stream("GET", "/api/v1/events") as account_response:
            readers = [EventReader(campaign_response), EventReader(account_response)]
            await readers[0].next()
            await live.stop()
            for reader in readers:
                assert not any(line.startswith("data:") for line in await reader.rest())
    await client.aclose()


async def test_the_streams_are_in_the_public_api_description(live: LiveGateway) -> None:
    document = (await httpx.AsyncClient(base_url=live.url).get("/api/openapi.json")).json()
    for path in ("/api/v1/campaigns/{campaign_id}/events", "/api/v1/events"):
        assert "text/event-stream" in document["paths"][path]["get"]["responses"]["200"]["content"]
