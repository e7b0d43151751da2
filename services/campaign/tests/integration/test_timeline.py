"""GET /campaigns/{id}/timeline against real PostgreSQL and NATS: when the send was requested (and
its trace id), fanned out, first and last delivered; pauses, resumes, retry rounds, deferrals by
reason; 404 for an unknown campaign or another account's."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider

from mailstify_contracts import DeliveryDeferred, subjects, topology, utcnow
from mailstify_devstack.inprocess import consumed_up_to, until
from mailstify_servicekit import ACCOUNT_HEADER

from .conftest import ACCOUNT, Service
from .test_campaign_service import failed, fanout_completed, succeeded

pytestmark = pytest.mark.integration


def delivered_at(campaign_id: str, subscriber_id: str, minutes_ago: int):
    event, subject = succeeded(campaign_id, subscriber_id)
    return event.model_copy(update={"occurred_at": utcnow() - timedelta(minutes=minutes_ago)}), subject


def deferred(campaign_id: str, reason: str):
    event = DeliveryDeferred(account_id=ACCOUNT, campaign_id=campaign_id, reason=reason, smtp_code=530)
    return event, subjects.MAIL_RESULT_DEFERRED


async def timeline(service: Service, campaign_id: str) -> dict:
    response = await service.client.get(f"/api/v1/campaigns/{campaign_id}/timeline")
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_timeline_tells_a_campaigns_story_with_the_send_requests_trace(service: Service) -> None:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    campaign_id = (await service.create())["id"]
    draft = await timeline(service, campaign_id)
    assert (draft["status"], draft["requested_at"], draft["trace_id"], draft["milestones"]) == ("draft", None, None, [])

    # The send arrives inside a caller's trace (the gateway's): the timeline names that trace.
    with trace.get_tracer("test").start_as_current_span("gateway POST /send") as caller:
        headers: dict[str, str] = {}
        propagate.inject(headers)
        sent = await service.client.post(f"/api/v1/campaigns/{campaign_id}/send", json={}, headers=headers)
    assert sent.status_code == 202, sent.text
    caller_trace = format(caller.get_span_context().trace_id, "032x")

    await service.client.post(f"/api/v1/campaigns/{campaign_id}/pause")
    await service.client.post(f"/api/v1/campaigns/{campaign_id}/resume")
    last = await service.publish(
        deferred(campaign_id, "530 5.7.0 authentication required"),
        deferred(campaign_id, "530 5.7.0 authentication required"),
        deferred(campaign_id, "421 try later"),
        delivered_at(campaign_id, "1", minutes_ago=5),
        delivered_at(campaign_id, "2", minutes_ago=1),
        failed(campaign_id, "3"),
    )
    await until(lambda: consumed_up_to(service.js, topology.CAMPAIGN_RESULTS, last), timeout=60)
    await service.publish(fanout_completed(campaign_id, 3))

    async def finished() -> dict | None:
        found = await timeline(service, campaign_id)
        return found if found["status"] == "sent" else None

    story = await until(finished)
    assert story["trace_id"] == caller_trace
    kinds = [m["kind"] for m in story["milestones"]]
    assert kinds[:3] == ["send_requested", "paused", "resumed"]
    assert set(kinds[3:]) == {"fanned_out", "sent"}
    send_requested = story["milestones"][0]
    assert (send_requested["status"], send_requested["trace_id"]) == ("sending", caller_trace)
    assert next(m for m in story["milestones"] if m["kind"] == "fanned_out")["detail"] == "3 recipients"
    assert [m["kind"] for m in story["retries"]] == ["paused", "resumed"]
    assert story["requested_at"] is not None and story["fanned_out_at"] is not None
    assert story["first_delivery_at"] < story["last_delivery_at"]
    assert story["requested_at"] <= story["fanned_out_at"]
    assert (story["total"], story["sent_count"], story["failed_count"], story["send_rounds"]) == (3, 2, 1, 1)
    deferrals = {d["reason"]: d["count"] for d in story["deferrals"]}
    assert deferrals == {
        "delivery deferred: 530 5.7.0 authentication required (retrying)": 2,
        "delivery deferred: 530 421 try later (retrying)": 1,
    }

    # A retry-failed round is part of the story, with the recipients it re-sends.
    retried = await service.client.post(f"/api/v1/campaigns/{campaign_id}/retry-failed", json={})
    assert retried.status_code == 202, retried.text
    again = await timeline(service, campaign_id)
    assert again["milestones"][-1]["kind"] == "retry_round"
    assert again["milestones"][-1]["detail"] == "round 1: 1 recipients"
    assert again["retry_rounds"] == 1
    assert again["status"] == "sending"


async def test_the_timeline_of_an_unknown_or_anothers_campaign_is_404(service: Service) -> None:
    missing = await service.client.get(f"/api/v1/campaigns/{uuid.uuid4().hex}/timeline")
    assert missing.status_code == 404
    assert "not found" in missing.json()["detail"]
    mine = (await service.create())["id"]
    theirs = await service.client.get(
        f"/api/v1/campaigns/{mine}/timeline", headers={ACCOUNT_HEADER: f"acct-{uuid.uuid4().hex[:8]}"}
    )
    assert theirs.status_code == 404


async def test_the_timeline_is_in_the_openapi_document(service: Service) -> None:
    document = (await service.client.get("/openapi.json")).json()
    operation = document["paths"]["/api/v1/campaigns/{campaign_id}/timeline"]["get"]
    assert "404" in operation["responses"]
    schema = document["components"]["schemas"]["TimelineOut"]
    for field in ("requested_at", "fanned_out_at", "first_delivery_at", "last_delivery_at", "trace_id", "milestones"):
        assert field in schema["properties"]
