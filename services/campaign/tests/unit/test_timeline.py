"""The timeline's rules: which milestones a change notes, which trace is the one to search for, and
first/last delivery as a min/max."""

from __future__ import annotations

from datetime import timedelta

from campaign.domain.timeline import Milestone, Timeline, milestones
from campaign.service_layer.handlers import control, outcomes, timeline

from .fakes import NOW, FakeCampaignUnitOfWork, FakeLists, draft


def test_a_change_that_ends_the_campaign_notes_the_ending_too() -> None:
    campaign = draft(status="sent", total=1)
    noted = milestones(campaign, "sending", NOW, "fanned_out", "1 recipients")
    assert [(m.kind, m.status) for m in noted] == [("fanned_out", "sent"), ("sent", "sent")]
    assert [m.kind for m in milestones(campaign, "sent", NOW, "resumed")] == ["resumed"]
    assert milestones(draft(status="sending"), "sending", NOW) == []


def test_the_trace_to_search_for_is_the_send_requests_not_a_later_rounds() -> None:
    def at(minutes: int, kind: str, trace_id: str | None) -> Milestone:
        return Milestone("c1", NOW + timedelta(minutes=minutes), kind, "sending", None, trace_id)

    story = Timeline(draft(), [at(0, "scheduled", "t0"), at(1, "schedule_reached", None), at(2, "resumed", "t2")], [])
    assert story.trace_id == "t0"  # the scheduled start ran in no trace: the scheduling request's
    story = Timeline(draft(), [at(0, "send_requested", "t1"), at(1, "paused", "tp"), at(2, "resumed", "t2")], [])
    assert story.trace_id == "t1"
    assert [m.kind for m in story.retries] == ["paused", "resumed"]
    assert Timeline(draft(), [], []).trace_id is None


def test_first_and_last_delivery_only_widen() -> None:
    campaign = draft(status="sending")
    assert campaign.deliveries_reported(NOW, NOW + timedelta(seconds=5))
    assert not campaign.deliveries_reported(NOW + timedelta(seconds=1), NOW + timedelta(seconds=4))
    assert campaign.deliveries_reported(NOW - timedelta(seconds=1), NOW)
    assert (campaign.first_delivery_at, campaign.last_delivery_at) == (NOW - timedelta(seconds=1), NOW + timedelta(seconds=5))


async def test_the_use_cases_note_their_milestones_and_count_deferrals_per_reason() -> None:
    uow = FakeCampaignUnitOfWork()
    uow.committed_campaigns["c1"] = draft(account_id="acct-1")
    await control.request_send(uow, FakeLists(l1=2), "acct-1", "c1")
    await outcomes.record_deferrals(
        uow, [("acct-1", "c1", "relay down"), ("acct-1", "c1", "relay down"), ("other", "c1", "not theirs")]
    )
    await outcomes.record_fanout_completed(uow, "acct-1", "c1", 0)
    story = await timeline.campaign_timeline(uow, "acct-1", "c1")
    assert [(m.kind, m.status) for m in story.milestones] == [
        ("send_requested", "sending"),
        ("fanned_out", "sent"),
        ("sent", "sent"),
    ]
    assert [(d.reason, d.count) for d in story.deferrals] == [("relay down", 2)]
    assert story.campaign.fanned_out_at is not None
