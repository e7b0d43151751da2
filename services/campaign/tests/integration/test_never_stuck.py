"""B7, the campaign service against real PostgreSQL and NATS: FanoutFailed ends a campaign `failed`
with `last_error` (first end of fan-out wins), unknown outcomes count towards `sent` and are listed
with `?status=unknown`, and a delivery-path deferral shows as `last_error` while sending."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import nats
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from nats.js import JetStreamContext

from mailstify_contracts import (
    CampaignStatusChanged,
    DeliveryDeferred,
    DeliveryOutcomeUnknown,
    DeliverySucceeded,
    Event,
    FanoutCompleted,
    FanoutFailed,
    subjects,
    topology,
)
from mailstify_devstack.inprocess import consumed_up_to, running_service, serve_app, stream_events, until
from mailstify_messaging import OutgoingMessage, publish_many
from mailstify_servicekit import ACCOUNT_HEADER, TOKEN_HEADER

from campaign.config import Settings
from campaign.entrypoints.app import create_app

pytestmark = pytest.mark.integration

TOKEN = "campaign-test-token"
ACCOUNT = f"acct-{uuid.uuid4().hex[:8]}"


def stub_audience() -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/lists/{list_id}")
    async def get_list(list_id: str, request: Request) -> JSONResponse:
        if request.headers.get(ACCOUNT_HEADER) != ACCOUNT or list_id != "list-3":
            return JSONResponse({"detail": f"list {list_id} not found"}, status_code=404)
        return JSONResponse(
            {"id": list_id, "name": list_id, "description": None, "subscriber_count": 3, "created_at": "2025-01-01T00:00:00Z"}
        )

    return app


@dataclass
class Service:
    client: httpx.AsyncClient
    js: JetStreamContext

    async def sending_campaign(self) -> str:
        body = {
            "name": "Welcome",
            "subject": "Hello",
            "list_id": "list-3",
            "from_name": "Team",
            "from_email": "team@example.com",
            "body_html": "<p>Hi</p>",
        }
        created = await self.client.post("/api/v1/campaigns", json=body)
        assert created.status_code == 201, created.text
        sent = await self.client.post(f"/api/v1/campaigns/{created.json()['id']}/send", json={})
        assert sent.status_code == 202, sent.text
        return created.json()["id"]

    async def get(self, campaign_id: str) -> dict:
        response = await self.client.get(f"/api/v1/campaigns/{campaign_id}")
        assert response.status_code == 200, response.text
        return response.json()

    async def publish(self, *events: tuple[Event, str]) -> int:
        """Publish under fresh msg ids (every copy stored, none dropped); returns the last stream sequence."""
        acks = await publish_many(self.js, [OutgoingMessage(s, e.to_json(), uuid.uuid4().hex) for e, s in events])
        assert len(acks) == len(events) and not any(ack.duplicate for ack in acks)
        return max(ack.seq for ack in acks)


@pytest.fixture
async def service(nats_server, fresh_database) -> AsyncIterator[Service]:
    async with serve_app(stub_audience()) as audience_url:
        settings = Settings(
            database_url=fresh_database, nats_url=nats_server.url, audience_url=audience_url, internal_token=TOKEN
        )
        async with running_service(create_app(settings)) as client:
            client.headers.update({TOKEN_HEADER: TOKEN, ACCOUNT_HEADER: ACCOUNT})
            nc = await nats.connect(nats_server.url)
            try:
                yield Service(client, nc.jetstream())
            finally:
                await nc.close()



async def test_fanout_failed_ends_the_campaign_failed_with_last_error(service: Service) -> None:
    campaign_id = await service.sending_campaign()
    reason = "fan-out failed after 10 attempts: the audience service could not list the recipients: down"
    failed = FanoutFailed(account_id=ACCOUNT, campaign_id=campaign_id, published=2, reason=reason)
    # Redelivered, then a late FanoutCompleted: the first end of fan-out wins.
    await service.publish((failed, subjects.CAMPAIGN_FANOUT_FAILED), (failed, subjects.CAMPAIGN_FANOUT_FAILED))
    late = await service.publish(
        (FanoutCompleted(account_id=ACCOUNT, campaign_id=campaign_id, total=3), subjects.CAMPAIGN_FANOUT_COMPLETED)
    )
    await until(lambda: consumed_up_to(service.js, topology.CAMPAIGN_FANOUTS, late), timeout=60)

    campaign = await service.get(campaign_id)
    assert (campaign["status"], campaign["total"], campaign["last_error"]) == ("failed", 2, reason)

    # The recipients already queued still count.
    results = await service.publish(
        *[
            (
                DeliverySucceeded(
                    account_id=ACCOUNT,
                    campaign_id=campaign_id,
                    subscriber_id=s,
                    email=f"{s}@example.com",
                    message_id=f"<{s}@x>",
                    smtp_reply="250 ok",
                ),
                subjects.MAIL_RESULT_SUCCEEDED,
            )
            for s in ("s1", "s2")
        ]
    )
    await until(lambda: consumed_up_to(service.js, topology.CAMPAIGN_RESULTS, results), timeout=60)
    campaign = await service.get(campaign_id)
    assert (campaign["status"], campaign["sent_count"], campaign["last_error"]) == ("failed", 2, reason)

    async def failed_changes() -> list[CampaignStatusChanged]:
        # The relay may still be publishing: read every stored change, then look for ours.
        subject = subjects.CAMPAIGN_STATUS_CHANGED
        info = await service.js.stream_info(topology.CAMPAIGN_STREAM.name, subjects_filter=subject)
        stored = (info.state.subjects or {}).get(subject, 0)
        changes = await stream_events(service.js, topology.CAMPAIGN_STREAM.name, subject, expected=stored, timeout=30)
        mine = [e for e in changes if isinstance(e, CampaignStatusChanged) and e.campaign_id == campaign_id]
        return [e for e in mine if e.status == "failed"]

    assert (await until(failed_changes, timeout=30))[0].last_error == reason

    # A failed campaign can be deleted.
    deleted = await service.client.delete(f"/api/v1/campaigns/{campaign_id}")
    assert deleted.status_code == 204


async def test_unknown_outcomes_count_and_deferrals_show(service: Service) -> None:
    campaign_id = await service.sending_campaign()

    deferred = DeliveryDeferred(
        account_id=ACCOUNT, campaign_id=campaign_id, reason="530 5.7.0 authentication required", smtp_code=530
    )
    seq = await service.publish((deferred, subjects.MAIL_RESULT_DEFERRED))
    await until(lambda: consumed_up_to(service.js, topology.CAMPAIGN_RESULTS, seq), timeout=60)
    campaign = await service.get(campaign_id)
    assert campaign["status"] == "sending"
    assert campaign["last_error"] == "delivery deferred: 530 5.7.0 authentication required (retrying)"

    def unknown(subscriber_id: str) -> tuple[Event, str]:
        event = DeliveryOutcomeUnknown(
            account_id=ACCOUNT,
            campaign_id=campaign_id,
            subscriber_id=subscriber_id,
            email=f"{subscriber_id}@example.com",
            reason="no reply after the message data",
        )
        return event, subjects.MAIL_RESULT_UNKNOWN

    unknowns = await service.publish(unknown("s1"), unknown("s1"), unknown("s2"))
    total = await service.publish(
        (FanoutCompleted(account_id=ACCOUNT, campaign_id=campaign_id, total=3), subjects.CAMPAIGN_FANOUT_COMPLETED)
    )
    await until(lambda: consumed_up_to(service.js, topology.CAMPAIGN_RESULTS, unknowns), timeout=60)
    await until(lambda: consumed_up_to(service.js, topology.CAMPAIGN_FANOUTS, total), timeout=60)
    campaign = await service.get(campaign_id)
    assert (campaign["status"], campaign["unknown_count"], campaign["total"]) == ("sending", 2, 3)

    listed = await service.client.get(f"/api/v1/campaigns/{campaign_id}/deliveries", params={"status": "unknown"})
    assert listed.status_code == 200, listed.text
    assert sorted(d["subscriber_id"] for d in listed.json()["items"]) == ["s1", "s2"]
    assert {d["status"] for d in listed.json()["items"]} == {"unknown"}

    seq = await service.publish(unknown("s3"))
    await until(lambda: consumed_up_to(service.js, topology.CAMPAIGN_RESULTS, seq), timeout=60)
    campaign = await service.get(campaign_id)
    assert (campaign["status"], campaign["unknown_count"], campaign["last_error"]) == ("sent", 3, None)
