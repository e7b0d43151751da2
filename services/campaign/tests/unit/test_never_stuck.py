"""B7: unknown outcomes count towards the finish line, a failed fan-out ends the campaign `failed`
(first end of fan-out wins), and delivery-path problems show as `last_error`."""

from __future__ import annotations


import pytest

from mailstify_contracts import CampaignStatusChanged
from mailstify_servicekit import Conflict

from campaign.domain.model import Campaign, Outcome, RecordedOutcome, Tally, tally_by_campaign
from campaign.service_layer.handlers import outcomes

from .fakes import NOW, FakeCampaignUnitOfWork, draft


def sending(total: int | None = None, **counts: int) -> Campaign:
    return draft(status="sending", total=total, **counts)


def test_unknown_outcomes_complete_the_count() -> None:
    campaign = sending(total=3)
    assert campaign.add_outcomes(Tally(1, 1), NOW)
    assert campaign.status == "sending"
    assert campaign.add_outcomes(Tally(0, 0, unknown=1), NOW)
    assert (campaign.status, campaign.unknown_count, campaign.sent_at) == ("sent", 1, NOW)


def test_only_unknown_outcomes_still_finish() -> None:
    campaign = sending()
    campaign.add_outcomes(Tally(0, 0, unknown=2), NOW)
    assert campaign.fanout_completed(2, NOW)
    assert (campaign.status, campaign.settled) == ("sent", 2)


def test_the_tally_counts_unknown_apart() -> None:
    tallies = tally_by_campaign([RecordedOutcome("c1", "sent"), RecordedOutcome("c1", "unknown"), RecordedOutcome("c1", "failed"), RecordedOutcome("c1", "unknown")])
    assert (tallies["c1"].sent, tallies["c1"].failed, tallies["c1"].unknown) == (1, 1, 2)


def test_status_changed_carries_unknown_and_last_error() -> None:
    campaign = sending(unknown_count=2)
    campaign.fanout_failed(4, "audience down", NOW)
    event = campaign.status_changed()
    assert (event.status, event.unknown_count, event.last_error) == ("failed", 2, "audience down")


def test_a_failed_fanout_fails_the_campaign_with_what_was_published() -> None:
    campaign = sending()
    assert campaign.fanout_failed(1000, "fan-out failed after 10 attempts: audience down", NOW)
    assert (campaign.status, campaign.total, campaign.last_error) == (
        "failed",
        1000,
        "fan-out failed after 10 attempts: audience down",
    )
    # Outcomes of the recipients already queued still count, and the campaign stays failed.
    assert campaign.add_outcomes(Tally(999, 1), NOW)
    assert (campaign.status, campaign.sent_count, campaign.failed_count, campaign.sent_at) == ("failed", 999, 1, None)


def test_the_first_end_of_fanout_wins() -> None:
    completed = sending()
    assert completed.fanout_completed(5, NOW)
    assert not completed.fanout_failed(3, "too late", NOW)
    assert (completed.status, completed.total, completed.last_error) == ("sending", 5, None)

    failed = sending()
    assert failed.fanout_failed(3, "audience down", NOW)
    assert not failed.fanout_completed(5, NOW)
    assert not failed.fanout_failed(4, "again", NOW)
    assert (failed.status, failed.total, failed.last_error) == ("failed", 3, "audience down")


def test_a_failed_campaign_can_be_deleted_but_not_sent_again() -> None:
    campaign = sending()
    campaign.fanout_failed(0, "audience down", NOW)
    campaign.ensure_deletable()
    with pytest.raises(Conflict, match="failed"):
        campaign.ensure_sendable()


def test_a_deferral_is_shown_while_sending_and_cleared_when_sent() -> None:
    campaign = sending(total=1)
    assert campaign.delivery_deferred("delivery deferred: 530 auth required (retrying)", NOW)
    assert not campaign.delivery_deferred("delivery deferred: 530 auth required (retrying)", NOW)
    assert campaign.last_error == "delivery deferred: 530 auth required (retrying)"
    campaign.add_outcomes(Tally(1, 0), NOW)
    assert (campaign.status, campaign.last_error) == ("sent", None)
    assert not campaign.delivery_deferred("late", NOW)


def test_a_new_send_starts_with_clean_counts() -> None:
    campaign = sending(total=2, unknown_count=1)
    campaign.last_error = "x"
    campaign.status = "draft"
    campaign.start_sending(NOW)
    assert (campaign.unknown_count, campaign.last_error) == (0, None)


def outcome(subscriber_id: str, kind: str) -> Outcome:
    return Outcome("c1", "a1", subscriber_id, f"{subscriber_id}@example.com", kind, "detail")  # type: ignore[arg-type]


async def test_unknown_outcomes_are_recorded_once_and_listed() -> None:
    uow = FakeCampaignUnitOfWork()
    uow.committed_campaigns["c1"] = sending(total=2)
    await outcomes.record_outcomes(uow, [outcome("s1", "unknown"), outcome("s1", "unknown")])
    await outcomes.record_outcomes(uow, [outcome("s1", "unknown"), outcome("s2", "sent")])
    campaign = uow.committed_campaigns["c1"]
    assert (campaign.status, campaign.sent_count, campaign.unknown_count) == ("sent", 1, 1)
    page = await uow.results.page("c1", "unknown", 10, None)
    assert [r.subscriber_id for r in page] == ["s1"]


async def test_fanout_failed_is_recorded_once_with_one_status_change() -> None:
    uow = FakeCampaignUnitOfWork()
    uow.committed_campaigns["c1"] = sending()
    for _ in range(2):
        await outcomes.record_fanout_failed(uow, "a1", "c1", 7, "audience down")
    campaign = uow.committed_campaigns["c1"]
    assert (campaign.status, campaign.total, campaign.last_error) == ("failed", 7, "audience down")
    changes = uow.events_of(CampaignStatusChanged)
    assert [(e.status, e.total, e.last_error) for e in changes] == [("failed", 7, "audience down")]


async def test_deferrals_set_last_error_of_a_sending_campaign() -> None:
    uow = FakeCampaignUnitOfWork()
    uow.committed_campaigns["c1"] = sending()
    note = outcomes.deferral_note("530 5.7.0 authentication required", 530)
    await outcomes.record_deferrals(uow, [("a1", "c1", note), ("other-account", "c1", "spoofed")])
    assert note == "delivery deferred: 530 5.7.0 authentication required (retrying)"
    assert uow.committed_campaigns["c1"].last_error == note
    assert outcomes.deferral_note("relay unreachable", None) == "delivery deferred: relay unreachable (retrying)"
