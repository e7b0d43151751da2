"""The campaign service against real PostgreSQL and NATS, with a stub audience service over HTTP:
the send request reaches the CAMPAIGN stream exactly once, the guards answer 409/422, and delivery
outcomes and fan-out totals (in either order) turn a campaign `sent` with exact counts."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from mailstify_contracts import (
    CampaignSendRequested,
    DeliveredEmail,
    DeliveriesSucceeded,
    DeliveryFailed,
    DeliverySucceeded,
    Event,
    FanoutCompleted,
    subjects,
    topology,
)
from mailstify_devstack.inprocess import consumed_up_to, stream_events, until

from .conftest import ACCOUNT, Service

pytestmark = pytest.mark.integration


def succeeded(campaign_id: str, subscriber_id: str) -> tuple[Event, str]:
    event = DeliverySucceeded(
        account_id=ACCOUNT,
        campaign_id=campaign_id,
        subscriber_id=subscriber_id,
        email=f"s{subscriber_id}@example.com",
        message_id=f"<{campaign_id}.{subscriber_id}@example.com>",
        smtp_reply="250 2.0.0 queued",
    )
    return event, subjects.MAIL_RESULT_SUCCEEDED


def succeeded_together(campaign_id: str, *subscriber_ids: str) -> tuple[Event, str]:
    deliveries = tuple(
        DeliveredEmail(
            subscriber_id=subscriber_id,
            email=f"s{subscriber_id}@example.com",
            message_id=f"<{campaign_id}.{subscriber_id}@example.com>",
            smtp_reply="250 2.0.0 queued",
        )
        for subscriber_id in subscriber_ids
    )
    event = DeliveriesSucceeded(account_id=ACCOUNT, campaign_id=campaign_id, deliveries=deliveries)
    return event, subjects.MAIL_RESULT_SUCCEEDED_MANY


def failed(campaign_id: str, subscriber_id: str) -> tuple[Event, str]:
    event = DeliveryFailed(
        account_id=ACCOUNT,
        campaign_id=campaign_id,
        subscriber_id=subscriber_id,
        email=f"s{subscriber_id}@example.com",
        reason="550 5.1.1 no such user",
        permanent=True,
        smtp_code=550,
        hard_bounce=True,
    )
    return event, subjects.MAIL_RESULT_FAILED


def fanout_completed(campaign_id: str, total: int) -> tuple[Event, str]:
    return FanoutCompleted(account_id=ACCOUNT, campaign_id=campaign_id, total=total), subjects.CAMPAIGN_FANOUT_COMPLETED



async def test_send_stages_the_request_once_and_concurrent_sends_get_one_202(service: Service) -> None:
    campaign = await service.create()

    responses = await asyncio.gather(*(service.send(campaign["id"]) for _ in range(3)))

    assert sorted(r.status_code for r in responses) == [202, 409, 409]
    (accepted,) = [r.json() for r in responses if r.status_code == 202]
    assert (accepted["status"], accepted["total"]) == ("sending", None)
    assert all("already sending" in r.json()["detail"] for r in responses if r.status_code == 409)

    async def requests_on_stream() -> list[Event]:
        if await service.outbox_size():
            return []
        # Each staging has its own msg id (its event id), so a second one would be stored, not dropped;
        # read every stored request (the stream is shared), not just up to the first quiet fetch.
        subject = subjects.CAMPAIGN_SEND_REQUESTED
        info = await service.js.stream_info(topology.CAMPAIGN_STREAM.name, subjects_filter=subject)
        stored = (info.state.subjects or {}).get(subject, 0)
        events = await stream_events(service.js, topology.CAMPAIGN_STREAM.name, subject, expected=stored, timeout=30)
        assert len(events) >= stored, f"read {len(events)} of {stored} stored requests"
        return [e for e in events if isinstance(e, CampaignSendRequested) and e.campaign_id == campaign["id"]]

    (request,) = await until(requests_on_stream)
    assert (request.account_id, request.list_id) == (ACCOUNT, "list-full")
    assert request.content.body_html == campaign["body_html"]
    assert request.content.subject == "Hello {{ subscriber.first_name }}"

    again = await service.send(campaign["id"])
    assert again.status_code == 409


async def test_guards_answer_with_clear_client_errors(service: Service) -> None:
    empty = await service.create(body_html="<p> </p>")
    response = await service.send(empty["id"])
    assert (response.status_code, response.json()) == (422, {"detail": "the campaign body is empty"})

    nobody = await service.create(list_id="list-empty")
    response = await service.send(nobody["id"])
    assert response.status_code == 422 and "no subscribed subscribers" in response.json()["detail"]

    unknown = await service.create(expect=422, list_id="list-nope")
    assert unknown == {"detail": "list list-nope not found"}

    broken = await service.create(expect=422, body_html="<p>{{ subscriber.first_name </p>")
    assert broken["detail"].startswith("body_html: line 1: ")

    for campaign in (empty, nobody):
        assert (await service.get(campaign["id"]))["status"] == "draft"

    missing = await service.client.get(f"/api/v1/campaigns/{uuid.uuid4().hex}")
    assert missing.status_code == 404


async def test_duplicate_outcomes_count_once_and_a_late_total_finishes_the_campaign(service: Service) -> None:
    campaign = await service.create()
    assert (await service.send(campaign["id"])).status_code == 202
    cid = campaign["id"]

    last = await service.publish(
        succeeded(cid, "1"),
        succeeded(cid, "2"),
        failed(cid, "3"),
        succeeded(cid, "1"),
        failed(cid, "3"),
        succeeded(cid, "test:someone@example.com"),
    )
    await until(lambda: consumed_up_to(service.js, topology.CAMPAIGN_RESULTS, last), timeout=60)

    current = await service.get(cid)
    assert (current["status"], current["total"], current["sent_count"], current["failed_count"]) == (
        "sending",
        None,
        2,
        1,
    )

    await service.publish(fanout_completed(cid, 3))

    async def finished() -> dict | None:
        current = await service.get(cid)
        return current if current["status"] == "sent" else None

    done = await until(finished)
    assert (done["total"], done["sent_count"], done["failed_count"]) == (3, 2, 1)
    assert done["sent_at"] is not None

    failures = (await service.client.get(f"/api/v1/campaigns/{cid}/deliveries", params={"status": "failed"})).json()
    assert [(d["subscriber_id"], d["status"], d["detail"]) for d in failures["items"]] == [
        ("3", "failed", "550 5.1.1 no such user")
    ]
    everything = (await service.client.get(f"/api/v1/campaigns/{cid}/deliveries", params={"limit": 2})).json()
    rest = (
        await service.client.get(
            f"/api/v1/campaigns/{cid}/deliveries", params={"limit": 2, "cursor": everything["next_cursor"]}
        )
    ).json()
    assert sorted(d["subscriber_id"] for d in everything["items"] + rest["items"]) == ["1", "2", "3"]
    assert rest["next_cursor"] is None


async def test_successes_reported_together_count_each_recipient_once(service: Service) -> None:
    campaign = await service.create()
    assert (await service.send(campaign["id"])).status_code == 202
    cid = campaign["id"]

    await service.publish(
        fanout_completed(cid, 4),
        succeeded_together(cid, "1", "2", "test:someone@example.com"),
        # A copy published again (a new event id: another replica's report) and one recipient's
        # success reported on its own as well: neither counts twice.
        succeeded_together(cid, "2", "3"),
        succeeded(cid, "1"),
        failed(cid, "4"),
    )

    async def finished() -> dict | None:
        current = await service.get(cid)
        return current if current["status"] == "sent" else None

    done = await until(finished)
    assert (done["total"], done["sent_count"], done["failed_count"]) == (4, 3, 1)
    sent = (await service.client.get(f"/api/v1/campaigns/{cid}/deliveries", params={"status": "sent"})).json()
    assert sorted((d["subscriber_id"], d["detail"]) for d in sent["items"]) == [
        ("1", "250 2.0.0 queued"),
        ("2", "250 2.0.0 queued"),
        ("3", "250 2.0.0 queued"),
    ]


async def test_a_total_known_before_the_outcomes_finishes_the_campaign_with_the_last_one(service: Service) -> None:
    campaign = await service.create()
    assert (await service.send(campaign["id"])).status_code == 202
    cid = campaign["id"]

    copies = await service.publish(fanout_completed(cid, 2), fanout_completed(cid, 2))
    # Both copies handled before any outcome arrives, so the duplicate cannot slip in after them.
    await until(lambda: consumed_up_to(service.js, topology.CAMPAIGN_FANOUTS, copies), timeout=60)

    async def total_known() -> dict | None:
        current = await service.get(cid)
        return current if current["total"] is not None else None

    assert (await until(total_known))["status"] == "sending"

    await service.publish(succeeded(cid, "10"), failed(cid, "11"))

    async def finished() -> dict | None:
        current = await service.get(cid)
        return current if current["status"] == "sent" else None

    done = await until(finished)
    assert (done["total"], done["sent_count"], done["failed_count"]) == (2, 1, 1)


async def test_a_fanout_of_zero_finishes_the_campaign_at_once(service: Service) -> None:
    campaign = await service.create()
    assert (await service.send(campaign["id"])).status_code == 202

    await service.publish(fanout_completed(campaign["id"], 0))

    async def finished() -> bool:
        return (await service.get(campaign["id"]))["status"] == "sent"

    await until(finished)
