"""What the campaign service's integration tests share: the service booted in-process against real
PostgreSQL and NATS, behind a stub of the audience service that knows two lists of this account."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import nats
import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from nats.js import JetStreamContext

from mailstify_contracts import Event
from mailstify_devstack.inprocess import running_service, serve_app
from mailstify_messaging import OutgoingMessage, publish_many
from mailstify_servicekit import ACCOUNT_HEADER, TOKEN_HEADER

from campaign.config import Settings
from campaign.entrypoints.app import create_app

TOKEN = "campaign-test-token"
ACCOUNT = f"acct-{uuid.uuid4().hex[:8]}"
LISTS = {"list-full": 3, "list-empty": 0}
# Subscribers of list-full who have left it (unsubscribed, bounced): the recipient lookup answers 404.
GONE: set[str] = set()


def stub_audience() -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/lists/{list_id}")
    async def get_list(list_id: str, request: Request) -> JSONResponse:
        known = request.headers.get(TOKEN_HEADER) == TOKEN and request.headers.get(ACCOUNT_HEADER) == ACCOUNT
        if not known or list_id not in LISTS:
            return JSONResponse({"detail": f"list {list_id} not found"}, status_code=404)
        return JSONResponse(
            {
                "id": list_id,
                "name": list_id,
                "description": None,
                "subscriber_count": LISTS[list_id],
                "created_at": "2025-01-01T00:00:00Z",
            }
        )

    @app.get("/internal/lists/{list_id}/subscribers/{subscriber_id}/recipient")
    async def get_recipient(list_id: str, subscriber_id: str, request: Request) -> JSONResponse:
        known = request.headers.get(TOKEN_HEADER) == TOKEN and request.headers.get(ACCOUNT_HEADER) == ACCOUNT
        if not known or list_id != "list-full" or subscriber_id in GONE:
            return JSONResponse({"detail": f"subscriber {subscriber_id} not found"}, status_code=404)
        return JSONResponse({"subscriber_id": subscriber_id, "email": f"s{subscriber_id}@example.com"})

    return app


@dataclass
class Service:
    client: httpx.AsyncClient
    app: FastAPI
    js: JetStreamContext

    async def create(self, expect: int = 201, **overrides: object) -> dict:
        body = {
            "name": "Welcome",
            "subject": "Hello {{ subscriber.first_name }}",
            "list_id": "list-full",
            "from_name": "Team",
            "from_email": "team@example.com",
            "body_html": "<p>Hi {{ subscriber.first_name }}</p>",
            **overrides,
        }
        response = await self.client.post("/api/v1/campaigns", json=body)
        assert response.status_code == expect, response.text
        return response.json()

    async def get(self, campaign_id: str) -> dict:
        response = await self.client.get(f"/api/v1/campaigns/{campaign_id}")
        assert response.status_code == 200, response.text
        return response.json()

    async def send(self, campaign_id: str) -> httpx.Response:
        return await self.client.post(f"/api/v1/campaigns/{campaign_id}/send", json={})

    async def outbox_size(self) -> int:
        async with self.app.state.runtime.engine.connect() as conn:
            return (await conn.execute(sa.text("SELECT count(*) FROM outbox"))).scalar_one()

    async def sending_campaign(self, **overrides: object) -> str:
        """A new campaign, sent: the id of a campaign that is `sending`."""
        campaign_id = (await self.create(**overrides))["id"]
        sent = await self.send(campaign_id)
        assert sent.status_code == 202, sent.text
        return campaign_id

    async def publish(self, *events: tuple[Event, str]) -> int:
        """Publish and return the last stream sequence. Fresh msg ids: duplicates must be absorbed by
        the service, not by JetStream's de-duplication (every copy is stored, none dropped)."""
        acks = await publish_many(self.js, [OutgoingMessage(s, e.to_json(), uuid.uuid4().hex) for e, s in events])
        assert len(acks) == len(events) and not any(ack.duplicate for ack in acks)
        return max(ack.seq for ack in acks)


@pytest.fixture
async def audience_url() -> AsyncIterator[str]:
    async with serve_app(stub_audience()) as url:
        yield url


@pytest.fixture
def service_settings(nats_server, fresh_database, audience_url) -> Settings:
    return Settings(
        database_url=fresh_database,
        nats_url=nats_server.url,
        audience_url=audience_url,
        internal_token=TOKEN,
        schedule_poll_seconds=0.2,
    )


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Service]:
    """The campaign service booted on `settings` until the block ends (a stop, as a restart's first half)."""
    app = create_app(settings)
    async with running_service(app) as client:
        client.headers.update({TOKEN_HEADER: TOKEN, ACCOUNT_HEADER: ACCOUNT})
        nc = await nats.connect(settings.nats_url)
        try:
            yield Service(client, app, nc.jetstream())
        finally:
            await nc.close()


@pytest.fixture
async def service(service_settings: Settings) -> AsyncIterator[Service]:
    async with serving(service_settings) as running:
        yield running
