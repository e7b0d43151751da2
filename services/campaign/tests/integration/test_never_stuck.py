"""B7, the campaign service against real PostgreSQL and NATS: FanoutFailed ends a campaign `failed`
with `last_error` (first end of fan-out wins), unknown outcomes count towards `sent` and are listed
with `?status=unknown`, and a delivery-path deferral shows as `last_error` while sending."""

from __future__ import annotations

import pytest

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
from mailstify_devstack.inprocess import consumed_up_to, stream_events, until

from .conftest import ACCOUNT, Service

pytestmark = pytest.mark.integration


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
