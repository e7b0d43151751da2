"""The status machine and its use cases over in-memory fakes: every transition allowed and refused,
scheduling, what each transition tells the dispatcher and mailers, exact finishing with cancelled
recipients, retry-failed rounds, test sends and duplicates."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailstify_contracts import (
    CampaignControlChanged,
    CampaignRecipientsRequeued,
    CampaignSendRequested,
    CampaignStatusChanged,
    CampaignTestSendRequested,
    Recipient,
    subjects,
    utcnow,
)
from mailstify_servicekit import Conflict, InvalidInput, NotFound

from campaign.domain.model import Campaign, Outcome, Tally
from campaign.service_layer.handlers import campaigns, control, outcomes, trial_sends

from .fakes import NOW, FakeCampaignUnitOfWork, FakeLists, FakeRecipients, draft

ACCOUNT = "acct-1"
STATUSES = ("draft", "scheduled", "sending", "paused", "sent", "cancelled", "failed")
ALLOWED = {
    "pause": {"sending"},
    "resume": {"paused"},
    "cancel": {"scheduled", "sending", "paused"},
    "unschedule": {"scheduled"},
    "retry": {"sent"},
}


def act(campaign: Campaign, action: str) -> None:
    if action == "retry":
        campaign.start_retry(NOW)
    elif action == "cancel":
        campaign.cancel(NOW)
    else:
        getattr(campaign, action)(NOW)


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("action", sorted(ALLOWED))
def test_each_transition_is_allowed_only_from_its_statuses(action: str, status: str) -> None:
    campaign = draft(status=status, total=3 if status != "draft" else None)
    if status in ALLOWED[action]:
        act(campaign, action)
        assert campaign.status != status
    else:
        with pytest.raises(Conflict, match=f"cannot .* a campaign that is {status}"):
            act(campaign, action)
        assert campaign.status == status


@pytest.mark.parametrize("status", [s for s in STATUSES if s != "draft"])
def test_only_drafts_are_sent_scheduled_or_edited(status: str) -> None:
    campaign = draft(status=status)
    schedule = lambda: campaign.schedule(NOW + timedelta(days=1), NOW)  # noqa: E731
    for attempt in (campaign.ensure_sendable, campaign.ensure_editable, schedule):
        with pytest.raises(Conflict):
            attempt()


@pytest.mark.parametrize(
    ("send_at", "message"),
    [
        (NOW - timedelta(seconds=1), "must be in the future"),
        (NOW, "must be in the future"),
        (NOW + timedelta(days=366), "within a year"),
        (NOW.replace(tzinfo=None) + timedelta(days=1), "time zone"),
    ],
)
def test_a_schedule_in_the_past_or_too_far_ahead_is_refused(send_at, message: str) -> None:
    campaign = draft()
    with pytest.raises(InvalidInput, match=message):
        campaign.schedule(send_at, NOW)
    assert campaign.status == "draft"


def test_schedule_then_start_when_due_or_unschedule() -> None:
    campaign = draft()
    campaign.schedule(NOW + timedelta(hours=1), NOW)
    assert (campaign.status, campaign.is_due(NOW)) == ("scheduled", False)
    assert campaign.is_due(NOW + timedelta(hours=1))
    campaign.start_sending(NOW + timedelta(hours=1))
    assert campaign.status == "sending"

    other = draft()
    other.schedule(NOW + timedelta(hours=1), NOW)
    other.unschedule(NOW)
    assert (other.status, other.send_at) == ("draft", None)


def test_a_scheduled_campaign_cannot_start_before_its_time() -> None:
    campaign = draft()
    campaign.schedule(NOW + timedelta(hours=1), NOW)
    with pytest.raises(Conflict, match="already scheduled"):
        campaign.start_sending(NOW)


def test_cancelled_recipients_complete_the_count_exactly() -> None:
    campaign = draft(status="sending")
    campaign.fanout_completed(10, NOW)
    campaign.add_outcomes(Tally(sent=4, failed=1, unknown=1), NOW)
    campaign.cancel(NOW)
    assert (campaign.status, campaign.finished_at) == ("cancelled", None)
    campaign.add_outcomes(Tally(cancelled=3), NOW)
    assert campaign.finished_at is None  # 9 of 10
    campaign.add_outcomes(Tally(cancelled=1), NOW)
    assert campaign.sent_count + campaign.failed_count + campaign.unknown_count + campaign.cancelled_count == 10
    assert (campaign.status, campaign.finished_at) == ("cancelled", NOW)


def test_sent_needs_exactly_the_total() -> None:
    campaign = draft(status="sending")
    campaign.fanout_completed(3, NOW)
    campaign.add_outcomes(Tally(sent=2), NOW)
    assert campaign.status == "sending"
    campaign.add_outcomes(Tally(sent=1), NOW)
    assert (campaign.status, campaign.sent_at, campaign.finished_at) == ("sent", NOW, NOW)


def test_a_campaign_that_settled_while_paused_is_sent_on_resume() -> None:
    campaign = draft(status="sending")
    campaign.fanout_completed(2, NOW)
    campaign.pause(NOW)
    campaign.add_outcomes(Tally(sent=2), NOW)
    assert campaign.status == "paused"
    campaign.resume(NOW)
    assert campaign.status == "sent"


# --- use cases ---------------------------------------------------------------------------------


@pytest.fixture
def uow() -> FakeCampaignUnitOfWork:
    return FakeCampaignUnitOfWork()


@pytest.fixture
def lists() -> FakeLists:
    return FakeLists(**{"list-1": 3})


async def new_campaign(uow: FakeCampaignUnitOfWork, lists: FakeLists) -> Campaign:
    return await campaigns.create_campaign(
        uow,
        lists,
        ACCOUNT,
        {
            "name": "Welcome",
            "subject": "Hello {{ subscriber.first_name }}",
            "list_id": "list-1",
            "from_name": "Team",
            "from_email": "team@example.com",
            "body_html": "<p>Hi {{ subscriber.first_name }}</p>",
        },
    )


def staged(uow: FakeCampaignUnitOfWork, event_type: type) -> list[tuple[object, str, str | None]]:
    return [entry for entry in uow.events if isinstance(entry[0], event_type)]


async def test_scheduling_stages_no_send_until_due(uow, lists) -> None:
    campaign = await new_campaign(uow, lists)
    send_at = utcnow() + timedelta(minutes=5)
    scheduled = await control.request_send(uow, lists, ACCOUNT, campaign.id, send_at)
    assert (scheduled.status, scheduled.send_at) == ("scheduled", send_at)
    assert not staged(uow, CampaignSendRequested)

    assert await control.start_due(uow, now=send_at - timedelta(seconds=1)) == 0
    assert await control.start_due(uow, now=send_at) == 1
    assert uow.committed_campaigns[campaign.id].status == "sending"
    [(request, subject, msg_id)] = staged(uow, CampaignSendRequested)
    assert (subject, msg_id) == (subjects.CAMPAIGN_SEND_REQUESTED, subjects.send_requested_msg_id(campaign.id, 0))
    assert await control.start_due(uow, now=send_at) == 0


async def test_pause_resume_cancel_tell_the_pipeline(uow, lists) -> None:
    campaign = await new_campaign(uow, lists)
    await control.request_send(uow, lists, ACCOUNT, campaign.id)

    await control.pause(uow, ACCOUNT, campaign.id)
    await control.resume(uow, ACCOUNT, campaign.id)
    await control.pause(uow, ACCOUNT, campaign.id)
    cancelled = await control.cancel(uow, ACCOUNT, campaign.id)
    assert cancelled.status == "cancelled"

    controls = staged(uow, CampaignControlChanged)
    assert [event.state for event, _, _ in controls] == ["paused", "active", "paused", "cancelled"]
    assert {subject for _, subject, _ in controls} == {subjects.campaign_control(campaign.id)}
    # The send, the resume and the cancel: each a round of its own, so none is taken for a duplicate.
    rounds = [msg_id for _, _, msg_id in staged(uow, CampaignSendRequested)]
    assert rounds == [subjects.send_requested_msg_id(campaign.id, n) for n in (0, 1, 2)]
    statuses = [event.status for event, _, _ in staged(uow, CampaignStatusChanged)]
    assert statuses == ["sending", "paused", "sending", "paused", "cancelled"]


async def test_a_refused_transition_stages_nothing_and_names_the_status(uow, lists) -> None:
    campaign = await new_campaign(uow, lists)
    with pytest.raises(Conflict, match="cannot pause a campaign that is draft"):
        await control.pause(uow, ACCOUNT, campaign.id)
    assert uow.events == []


async def test_cancelling_a_scheduled_campaign_wakes_no_fanout(uow, lists) -> None:
    campaign = await new_campaign(uow, lists)
    await control.request_send(uow, lists, ACCOUNT, campaign.id, utcnow() + timedelta(hours=1))
    await control.cancel(uow, ACCOUNT, campaign.id)
    assert not staged(uow, CampaignSendRequested) and not staged(uow, CampaignControlChanged)
    assert uow.committed_campaigns[campaign.id].status == "cancelled"


def result(campaign_id: str, subscriber_id: str, kind: str, round_number: int = 0) -> Outcome:
    return Outcome(campaign_id, ACCOUNT, subscriber_id, f"{subscriber_id}@example.com", kind, "x", round_number)


def person(subscriber_id: str) -> Recipient:
    return Recipient(subscriber_id=subscriber_id, email=f"{subscriber_id}@example.com")


async def test_retry_failed_moves_counts_and_requeues_only_the_still_subscribed(uow, lists) -> None:
    campaign = await new_campaign(uow, lists)
    await control.request_send(uow, lists, ACCOUNT, campaign.id)
    await outcomes.record_fanout_completed(uow, ACCOUNT, campaign.id, 4)
    await outcomes.record_outcomes(
        uow,
        [result(campaign.id, "s1", "sent"), result(campaign.id, "s2", "failed"),
         result(campaign.id, "s3", "failed"), result(campaign.id, "s4", "unknown")],
    )
    assert uow.committed_campaigns[campaign.id].status == "sent"
    # s3 has unsubscribed since: the audience service no longer names it.
    recipients = FakeRecipients(ACCOUNT, **{"list-1": [person("s1"), person("s2"), person("s4")]})

    retried = await control.retry_failed(uow, recipients, ACCOUNT, campaign.id, include_unknown=True)
    assert (retried.status, retried.failed_count, retried.unknown_count, retried.retry_round) == ("sending", 1, 0, 1)
    [(requeued, subject, _)] = staged(uow, CampaignRecipientsRequeued)
    assert subject == subjects.CAMPAIGN_RECIPIENTS_REQUEUED
    assert (requeued.round, sorted(r.subscriber_id for r in requeued.recipients)) == (1, ["s2", "s4"])

    # A late copy of the first round's outcome settles nothing; the new round's does, once.
    await outcomes.record_outcomes(uow, [result(campaign.id, "s2", "failed", 0)])
    assert uow.committed_campaigns[campaign.id].failed_count == 1
    await outcomes.record_outcomes(uow, [result(campaign.id, "s2", "sent", 1), result(campaign.id, "s4", "sent", 1)])
    await outcomes.record_outcomes(uow, [result(campaign.id, "s2", "sent", 1)])
    final = uow.committed_campaigns[campaign.id]
    assert (final.status, final.sent_count, final.failed_count, final.unknown_count) == ("sent", 3, 1, 0)

    with pytest.raises(Conflict, match="no failed recipients still subscribed"):
        await control.retry_failed(uow, FakeRecipients(ACCOUNT), ACCOUNT, campaign.id)


async def test_a_test_send_is_marked_and_never_counted(uow, lists) -> None:
    campaign = await new_campaign(uow, lists)
    ada = Recipient(subscriber_id="42", email="ada@example.com", first_name="Ada")
    recipients = FakeRecipients(ACCOUNT, **{"list-1": [ada]})
    addresses = ["Me@Example.com", "me@example.com"]
    sent_to = await trial_sends.send_test(uow, recipients, ACCOUNT, campaign.id, addresses, "42")
    assert sent_to == ["me@example.com"]
    [(request, subject, _)] = staged(uow, CampaignTestSendRequested)
    assert subject == subjects.CAMPAIGN_TEST_SEND_REQUESTED
    assert request.content.subject == "[Test] Hello {{ subscriber.first_name }}"
    [recipient] = request.recipients
    assert (recipient.email, recipient.first_name) == ("me@example.com", "Ada")
    assert subjects.is_test_recipient(recipient.subscriber_id)
    assert request.content_key != campaign.id

    await outcomes.record_outcomes(uow, [result(campaign.id, recipient.subscriber_id, "sent")])
    assert uow.committed_campaigns[campaign.id].sent_count == 0
    assert uow.committed_results == {}


@pytest.mark.parametrize("emails", [[], ["a@example.com"] * 6, ["not an address"]])
async def test_a_test_send_needs_one_to_five_valid_addresses(uow, lists, emails) -> None:
    campaign = await new_campaign(uow, lists)
    with pytest.raises(InvalidInput):
        await trial_sends.send_test(uow, FakeRecipients(ACCOUNT), ACCOUNT, campaign.id, emails)


async def test_a_test_send_for_an_unknown_subscriber_is_not_found(uow, lists) -> None:
    campaign = await new_campaign(uow, lists)
    with pytest.raises(NotFound):
        await trial_sends.send_test(uow, FakeRecipients(ACCOUNT), ACCOUNT, campaign.id, ["a@example.com"], "nobody")


async def test_duplicate_makes_a_new_draft_from_any_campaign(uow, lists) -> None:
    campaign = await new_campaign(uow, lists)
    await control.request_send(uow, lists, ACCOUNT, campaign.id)
    copy = await campaigns.duplicate_campaign(uow, ACCOUNT, campaign.id)
    stored = uow.committed_campaigns[copy.id]
    assert (stored.status, stored.name, stored.body_html, stored.total) == (
        "draft", "Copy of Welcome", "<p>Hi {{ subscriber.first_name }}</p>", None
    )
    with pytest.raises(NotFound):
        await campaigns.duplicate_campaign(uow, "someone-else", campaign.id)


@pytest.mark.parametrize("field", ["subject", "from_name", "reply_to"])
async def test_a_line_break_in_a_header_field_is_refused(uow, lists, field) -> None:
    value = "ops@example.com\r\nBcc: victim@example.com" if field == "reply_to" else "Hi\r\nBcc: victim@example.com"
    campaign = await new_campaign(uow, lists)
    with pytest.raises(InvalidInput, match=f"^{field}: "):
        await campaigns.update_campaign(uow, lists, ACCOUNT, campaign.id, {field: value})
    assert uow.committed_campaigns[campaign.id].subject == "Hello {{ subscriber.first_name }}"
