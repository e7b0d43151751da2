"""Status transitions, send guards, and the counting/flip rule of a campaign."""

from __future__ import annotations


import pytest

from mailstify_servicekit import Conflict, InvalidInput

from campaign.domain.model import Campaign, Outcome, RecordedOutcome, Tally, tally_by_campaign

from .fakes import NOW, draft


def sending(total: int | None = None, sent: int = 0, failed: int = 0) -> Campaign:
    return draft(status="sending", total=total, sent_count=sent, failed_count=failed)


def test_a_draft_starts_sending_with_no_total_yet() -> None:
    campaign = draft()
    campaign.start_sending(NOW)
    assert (campaign.status, campaign.total, campaign.send_requested_at) == ("sending", None, NOW)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("sending", "campaign is already sending"),
        ("sent", "campaign was already sent"),
        ("scheduled", "already scheduled"),
    ],
)
def test_only_a_draft_can_be_sent(status: str, message: str) -> None:
    with pytest.raises(Conflict, match=message):
        draft(status=status).start_sending(NOW)


def test_an_empty_body_cannot_be_sent() -> None:
    campaign = draft(body_html="<p>  </p>")
    with pytest.raises(InvalidInput, match="the campaign body is empty"):
        campaign.start_sending(NOW)
    assert campaign.status == "draft"


def test_status_decides_before_body() -> None:
    with pytest.raises(Conflict):
        draft(status="sent", body_html="").ensure_sendable()


def test_only_drafts_are_editable() -> None:
    draft().ensure_editable()
    with pytest.raises(Conflict):
        sending().ensure_editable()


@pytest.mark.parametrize("status", ["draft", "sent", "cancelled"])
def test_finished_or_unsent_campaigns_can_be_deleted(status: str) -> None:
    draft(status=status).ensure_deletable()


@pytest.mark.parametrize("status", ["sending", "paused", "scheduled"])
def test_campaigns_in_flight_cannot_be_deleted(status: str) -> None:
    with pytest.raises(Conflict):
        draft(status=status).ensure_deletable()


def test_outcomes_without_a_total_never_finish_the_campaign() -> None:
    campaign = sending()
    assert campaign.add_outcomes(Tally(sent=5, failed=1), NOW)
    assert (campaign.status, campaign.sent_count, campaign.failed_count) == ("sending", 5, 1)


def test_the_last_outcome_finishes_the_campaign() -> None:
    campaign = sending(total=3, sent=1)
    campaign.add_outcomes(Tally(sent=1, failed=0), NOW)
    assert campaign.status == "sending"
    campaign.add_outcomes(Tally(sent=0, failed=1), NOW)
    assert (campaign.status, campaign.sent_at) == ("sent", NOW)


def test_a_total_arriving_after_every_outcome_finishes_the_campaign() -> None:
    campaign = sending(sent=2, failed=1)
    assert campaign.fanout_completed(3, NOW)
    assert (campaign.status, campaign.total) == ("sent", 3)


def test_a_total_of_zero_finishes_the_campaign_at_once() -> None:
    campaign = sending()
    campaign.fanout_completed(0, NOW)
    assert campaign.status == "sent"


def test_the_first_total_wins() -> None:
    campaign = sending(total=10)
    assert not campaign.fanout_completed(3, NOW)
    assert (campaign.total, campaign.status) == (10, "sending")


def test_nothing_new_changes_nothing() -> None:
    campaign = sending(total=3)
    assert not campaign.add_outcomes(Tally(sent=0, failed=0), NOW)
    assert campaign.updated_at == NOW


def test_outcomes_are_tallied_per_campaign() -> None:
    tallies = tally_by_campaign([RecordedOutcome("c1", "sent"), RecordedOutcome("c2", "failed"), RecordedOutcome("c1", "sent"), RecordedOutcome("c1", "failed")])
    assert {cid: (t.sent, t.failed) for cid, t in tallies.items()} == {"c1": (2, 1), "c2": (0, 1)}


def test_test_sends_are_recognised_by_their_subscriber_id() -> None:
    assert Outcome("c1", "a1", "test:ada@example.com", "ada@example.com", "sent", "250").is_test
    assert not Outcome("c1", "a1", "42", "ada@example.com", "sent", "250").is_test
