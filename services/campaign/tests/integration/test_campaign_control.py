"""The status machine against real PostgreSQL and NATS: transitions over HTTP (202, or 409 naming the
status), a schedule that survives a restart of the service, the control state reaching the
CAMPAIGN_CONTROL bucket through the outbox, and retry-failed rounds counted exactly."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailstify_contracts import (
    CampaignRecipientsRequeued,
    CampaignSendRequested,
    DeliveryCancelled,
    DeliverySucceeded,
    Event,
    subjects,
    topology,
    utcnow,
)
from mailstify_devstack.inprocess import consumed_up_to, stream_events, until
from mailstify_messaging.control import read_control_state

from .conftest import ACCOUNT, GONE, Service, serving
from .test_campaign_service import failed, fanout_completed, succeeded

pytestmark = pytest.mark.integration


async def post(service: Service, campaign_id: str, action: str, expect: int, body: dict | None = None) -> dict:
    response = await service.client.post(f"/api/v1/campaigns/{campaign_id}/{action}", json=body or {})
    assert response.status_code == expect, response.text
    return response.json()


async def test_transitions_over_http_and_the_control_bucket(service: Service) -> None:
    cid = await service.sending_campaign()
    refused = await post(service, cid, "resume", 409)
    assert refused["detail"] == "cannot resume a campaign that is sending"
    assert (await post(service, cid, "pause", 202))["status"] == "paused"
    await until(lambda: _state_is(service, cid, "paused"))
    assert (await post(service, cid, "pause", 409))["detail"] == "cannot pause a campaign that is paused"
    edit = await service.client.patch(f"/api/v1/campaigns/{cid}", json={"name": "x"})
    assert edit.status_code == 409 and "paused" in edit.json()["detail"]
    assert (await post(service, cid, "resume", 202))["status"] == "sending"
    await until(lambda: _state_is(service, cid, "active"))
    cancelled = await post(service, cid, "cancel", 202)
    assert cancelled["status"] == "cancelled"
    await until(lambda: _state_is(service, cid, "cancelled"))
    assert (await post(service, cid, "cancel", 409))["detail"] == "cannot cancel a campaign that is cancelled"
    assert (await post(service, cid, "send", 409))["detail"] == "campaign was cancelled"

    # The send and each resume/cancel are send rounds of their own on the CAMPAIGN stream.
    requests = await stream_events(service.js, "CAMPAIGN", subjects.CAMPAIGN_SEND_REQUESTED, timeout=10)
    assert sum(isinstance(e, CampaignSendRequested) and e.campaign_id == cid for e in requests) == 3

    # Cancelled recipients make up the rest of the total: the campaign finishes with exact counts.
    await service.publish(fanout_completed(cid, 3))
    last = await service.publish(succeeded(cid, "1"), _cancelled(cid, "2"), _cancelled(cid, "3"), _cancelled(cid, "3"))
    await until(lambda: consumed_up_to(service.js, topology.CAMPAIGN_RESULTS, last), timeout=60)
    done = await until(lambda: _finished(service, cid))
    assert (done["status"], done["total"], done["sent_count"], done["cancelled_count"]) == ("cancelled", 3, 1, 2)

    copy = await post(service, cid, "duplicate", 201)
    assert (copy["status"], copy["name"], copy["total"]) == ("draft", "Copy of Welcome", None)


async def _state_is(service: Service, campaign_id: str, state: str) -> bool:
    return await read_control_state(service.js, campaign_id) == state


async def _finished(service: Service, campaign_id: str) -> dict | None:
    current = await service.get(campaign_id)
    return current if current["finished_at"] else None


def _cancelled(campaign_id: str, subscriber_id: str) -> tuple[Event, str]:
    event = DeliveryCancelled(
        account_id=ACCOUNT, campaign_id=campaign_id, subscriber_id=subscriber_id, email=f"s{subscriber_id}@example.com"
    )
    return event, subjects.MAIL_RESULT_CANCELLED


@pytest.mark.parametrize(
    ("send_at", "message"),
    [
        ("2001-01-01T00:00:00Z", "send_at: must be in the future"),
        ((utcnow() + timedelta(days=400)).isoformat(), "send_at: must be within a year from now"),
        ("2030-01-01T00:00:00", "send_at: must include a time zone (e.g. 2027-01-01T09:00:00Z)"),
    ],
)
async def test_a_bad_schedule_is_422(service: Service, send_at: str, message: str) -> None:
    campaign = await service.create()
    refused = await post(service, campaign["id"], "send", 422, {"send_at": send_at})
    assert refused["detail"] == message
    assert (await service.get(campaign["id"]))["status"] == "draft"


async def test_a_schedule_survives_a_restart_and_starts_on_time(service_settings) -> None:
    send_at = utcnow() + timedelta(seconds=3)
    async with serving(service_settings) as first:
        campaign = await first.create()
        scheduled = await post(first, campaign["id"], "send", 202, {"send_at": send_at.isoformat()})
        assert (scheduled["status"], scheduled["send_at"] is not None) == ("scheduled", True)
        other = await first.create()
        await post(first, other["id"], "send", 202, {"send_at": (utcnow() + timedelta(days=1)).isoformat()})
        assert (await post(first, other["id"], "unschedule", 202))["status"] == "draft"
    # The service was down at send_at's approach; the next one starts the campaign from the database.
    async with serving(service_settings) as second:

        async def started() -> dict | None:
            current = await second.get(campaign["id"])
            return current if current["status"] == "sending" else None

        current = await until(started, timeout=20)
        assert current["started_at"] >= send_at.isoformat().replace("+00:00", "Z")[:19]
        requests = await stream_events(second.js, "CAMPAIGN", subjects.CAMPAIGN_SEND_REQUESTED, timeout=10)
        assert sum(isinstance(e, CampaignSendRequested) and e.campaign_id == campaign["id"] for e in requests) == 1
        assert (await second.get(other["id"]))["status"] == "draft"


async def test_retry_failed_requeues_the_still_subscribed_and_counts_move(service: Service) -> None:
    cid = await service.sending_campaign()
    GONE.add("3")
    try:
        await service.publish(fanout_completed(cid, 3))
        last = await service.publish(succeeded(cid, "1"), failed(cid, "2"), failed(cid, "3"))
        await until(lambda: consumed_up_to(service.js, topology.CAMPAIGN_RESULTS, last), timeout=60)
        assert (await until(lambda: _finished(service, cid)))["failed_count"] == 2

        retried = await post(service, cid, "retry-failed", 202)
        assert (retried["status"], retried["failed_count"], retried["sent_count"]) == ("sending", 1, 1)
        assert (await post(service, cid, "retry-failed", 409))["detail"].startswith("cannot retry")
        events = await stream_events(service.js, "CAMPAIGN", subjects.CAMPAIGN_RECIPIENTS_REQUEUED, timeout=10)
        [requeued] = [e for e in events if isinstance(e, CampaignRecipientsRequeued) and e.campaign_id == cid]
        assert (requeued.round, [r.subscriber_id for r in requeued.recipients]) == (1, ["2"])

        again = DeliverySucceeded(
            account_id=ACCOUNT, campaign_id=cid, subscriber_id="2", email="s2@example.com", message_id="<m>", round=1
        )
        # The round's outcome three times, and a stale copy of the first round's failure.
        last = await service.publish(
            *[(again, subjects.MAIL_RESULT_SUCCEEDED)] * 3, failed(cid, "2")
        )
        await until(lambda: consumed_up_to(service.js, topology.CAMPAIGN_RESULTS, last), timeout=60)
        done = await service.get(cid)
        assert (done["status"], done["sent_count"], done["failed_count"], done["total"]) == ("sent", 2, 1, 3)
        retried_rows = (
            await service.client.get(f"/api/v1/campaigns/{cid}/deliveries", params={"q": "S2@"})
        ).json()["items"]
        assert [(d["status"], d["round"]) for d in retried_rows] == [("sent", 1)]
    finally:
        GONE.discard("3")
