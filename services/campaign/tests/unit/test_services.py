"""Service-layer use cases over in-memory fakes: creation rules, the send request and its event,
result counting and the flip to `sent`."""

from __future__ import annotations

import pytest

from mailstify_contracts import CampaignSendRequested, CampaignStatusChanged, subjects
from mailstify_servicekit import Conflict, InvalidInput, NotFound

from campaign.domain.model import Outcome
from campaign.service_layer.handlers import campaigns, control, outcomes

from .fakes import FakeLists, FakeCampaignUnitOfWork

ACCOUNT = "acct-1"


def fields(**overrides: object) -> dict:
    return {
        "name": "Welcome",
        "subject": "Hello {{ subscriber.first_name }}",
        "list_id": "list-1",
        "from_name": "Team",
        "from_email": "Team@Example.com",
        "reply_to": None,
        "body_html": "<p>Hi {{ subscriber.first_name }}</p><script>x()</script>",
        "body_text": None,
        **overrides,
    }


@pytest.fixture
def uow() -> FakeCampaignUnitOfWork:
    return FakeCampaignUnitOfWork()


@pytest.fixture
def lists() -> FakeLists:
    return FakeLists(**{"list-1": 3, "empty-list": 0})


async def new_campaign(uow: FakeCampaignUnitOfWork, lists: FakeLists, **overrides: object):
    return await campaigns.create_campaign(uow, lists, ACCOUNT, fields(**overrides))


def outcome(campaign_id: str, subscriber_id: str, result: str = "sent", account: str = ACCOUNT) -> Outcome:
    return Outcome(campaign_id, account, subscriber_id, f"{subscriber_id}@example.com", result, "250 OK")


async def test_a_created_campaign_is_a_sanitised_draft(uow: FakeCampaignUnitOfWork, lists: FakeLists) -> None:
    campaign = await new_campaign(uow, lists)
    stored = uow.committed_campaigns[campaign.id]
    assert (stored.status, stored.total, stored.from_email) == ("draft", None, "team@example.com")
    assert stored.body_html == "<p>Hi {{ subscriber.first_name }}</p>"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"list_id": "nope"}, "list nope not found"),
        ({"from_email": "not-an-address"}, "from_email:"),
        ({"reply_to": "x@"}, "reply_to:"),
        ({"subject": "Hi {{ subscriber.first_name"}, "subject: line 1: unexpected end of template"),
        ({"name": "  "}, "name: must not be empty"),
    ],
)
async def test_bad_campaigns_are_refused(uow: FakeCampaignUnitOfWork, lists: FakeLists, overrides: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        await new_campaign(uow, lists, **overrides)
    assert not uow.committed_campaigns


async def test_another_accounts_campaign_is_not_found(uow: FakeCampaignUnitOfWork, lists: FakeLists) -> None:
    campaign = await new_campaign(uow, lists)
    with pytest.raises(NotFound):
        await campaigns.get_campaign(uow, "someone-else", campaign.id)


async def test_campaigns_are_listed_newest_first_page_by_page(uow: FakeCampaignUnitOfWork, lists: FakeLists) -> None:
    created = [await new_campaign(uow, lists, name=f"c{i}") for i in range(5)]
    seen, cursor = [], None
    while True:
        page = await campaigns.list_campaigns(uow, ACCOUNT, 2, cursor)
        seen += [c.id for c in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [c.id for c in reversed(created)]


async def test_sending_moves_to_sending_and_stages_the_request_once(uow: FakeCampaignUnitOfWork, lists: FakeLists) -> None:
    campaign = await new_campaign(uow, lists)

    sent = await control.request_send(uow, lists, ACCOUNT, campaign.id)

    assert (sent.status, sent.total) == ("sending", None)
    assert uow.committed_campaigns[campaign.id].status == "sending"
    (request,) = uow.events_of(CampaignSendRequested)
    assert (request.campaign_id, request.list_id, request.account_id) == (campaign.id, "list-1", ACCOUNT)
    assert request.content.body_html == sent.body_html
    assert [s for e, s, _ in uow.events if e is request] == [subjects.CAMPAIGN_SEND_REQUESTED]


async def test_a_second_send_is_a_conflict_and_stages_nothing(uow: FakeCampaignUnitOfWork, lists: FakeLists) -> None:
    campaign = await new_campaign(uow, lists)
    await control.request_send(uow, lists, ACCOUNT, campaign.id)

    with pytest.raises(Conflict, match="already sending"):
        await control.request_send(uow, lists, ACCOUNT, campaign.id)
    assert len(uow.events_of(CampaignSendRequested)) == 1


async def test_an_empty_body_is_refused(uow: FakeCampaignUnitOfWork, lists: FakeLists) -> None:
    campaign = await new_campaign(uow, lists, body_html="<p>&nbsp;</p>")
    with pytest.raises(InvalidInput, match="the campaign body is empty"):
        await control.request_send(uow, lists, ACCOUNT, campaign.id)
    assert uow.committed_campaigns[campaign.id].status == "draft"
    assert not uow.events


async def test_a_list_without_subscribers_is_refused(uow: FakeCampaignUnitOfWork, lists: FakeLists) -> None:
    campaign = await new_campaign(uow, lists, list_id="empty-list")
    with pytest.raises(InvalidInput, match="no subscribed subscribers"):
        await control.request_send(uow, lists, ACCOUNT, campaign.id)
    assert uow.committed_campaigns[campaign.id].status == "draft"


async def test_only_drafts_can_be_edited_and_sending_ones_not_deleted(uow: FakeCampaignUnitOfWork, lists: FakeLists) -> None:
    campaign = await new_campaign(uow, lists)
    edited = await campaigns.update_campaign(uow, lists, ACCOUNT, campaign.id, {"name": "Renamed"})
    assert edited.name == "Renamed"
    await control.request_send(uow, lists, ACCOUNT, campaign.id)

    with pytest.raises(Conflict):
        await campaigns.update_campaign(uow, lists, ACCOUNT, campaign.id, {"name": "Again"})
    with pytest.raises(Conflict):
        await campaigns.delete_campaign(uow, ACCOUNT, campaign.id)


async def sending_campaign(uow: FakeCampaignUnitOfWork, lists: FakeLists) -> str:
    campaign = await new_campaign(uow, lists)
    await control.request_send(uow, lists, ACCOUNT, campaign.id)
    return campaign.id


async def test_duplicate_outcomes_count_once(uow: FakeCampaignUnitOfWork, lists: FakeLists) -> None:
    cid = await sending_campaign(uow, lists)
    await outcomes.record_outcomes(uow, [outcome(cid, "1"), outcome(cid, "1"), outcome(cid, "2", "failed")])
    await outcomes.record_outcomes(uow, [outcome(cid, "1"), outcome(cid, "2", "failed"), outcome(cid, "3")])

    stored = uow.committed_campaigns[cid]
    assert (stored.sent_count, stored.failed_count) == (2, 1)


async def test_test_sends_and_unknown_campaigns_are_not_counted(uow: FakeCampaignUnitOfWork, lists: FakeLists) -> None:
    cid = await sending_campaign(uow, lists)
    await outcomes.record_outcomes(
        uow,
        [outcome(cid, "test:ada@example.com"), outcome("no-such-campaign", "1"), outcome(cid, "9", account="other")],
    )
    stored = uow.committed_campaigns[cid]
    assert (stored.sent_count, stored.failed_count) == (0, 0)
    assert not uow.committed_results


async def test_one_status_event_per_campaign_per_batch(uow: FakeCampaignUnitOfWork, lists: FakeLists) -> None:
    first, second = await sending_campaign(uow, lists), await sending_campaign(uow, lists)
    before = len(uow.events_of(CampaignStatusChanged))
    await outcomes.record_outcomes(uow, [outcome(first, str(i)) for i in range(50)] + [outcome(second, "1", "failed")])
    changes = uow.events_of(CampaignStatusChanged)[before:]
    assert sorted((c.campaign_id, c.sent_count, c.failed_count) for c in changes) == sorted(
        [(first, 50, 0), (second, 0, 1)]
    )


async def test_a_redelivered_batch_emits_nothing(uow: FakeCampaignUnitOfWork, lists: FakeLists) -> None:
    cid = await sending_campaign(uow, lists)
    batch = [outcome(cid, "1"), outcome(cid, "2")]
    await outcomes.record_outcomes(uow, batch)
    before = len(uow.events)
    await outcomes.record_outcomes(uow, batch)
    assert len(uow.events) == before


async def test_fanout_completed_before_the_outcomes(uow: FakeCampaignUnitOfWork, lists: FakeLists) -> None:
    cid = await sending_campaign(uow, lists)
    await outcomes.record_fanout_completed(uow, ACCOUNT, cid, 2)
    assert uow.committed_campaigns[cid].status == "sending"
    await outcomes.record_outcomes(uow, [outcome(cid, "1"), outcome(cid, "2", "failed")])
    stored = uow.committed_campaigns[cid]
    assert (stored.status, stored.total, stored.sent_count, stored.failed_count) == ("sent", 2, 1, 1)
    assert uow.events_of(CampaignStatusChanged)[-1].status == "sent"


async def test_fanout_completed_after_the_outcomes(uow: FakeCampaignUnitOfWork, lists: FakeLists) -> None:
    cid = await sending_campaign(uow, lists)
    await outcomes.record_outcomes(uow, [outcome(cid, "1"), outcome(cid, "2")])
    assert uow.committed_campaigns[cid].status == "sending"
    await outcomes.record_fanout_completed(uow, ACCOUNT, cid, 2)
    assert uow.committed_campaigns[cid].status == "sent"


async def test_a_redelivered_fanout_completed_changes_nothing(uow: FakeCampaignUnitOfWork, lists: FakeLists) -> None:
    cid = await sending_campaign(uow, lists)
    await outcomes.record_fanout_completed(uow, ACCOUNT, cid, 5)
    before = len(uow.events)
    await outcomes.record_fanout_completed(uow, ACCOUNT, cid, 5)
    await outcomes.record_fanout_completed(uow, ACCOUNT, "unknown", 5)
    assert len(uow.events) == before
    assert uow.committed_campaigns[cid].total == 5


async def test_deliveries_are_paged_and_filtered(uow: FakeCampaignUnitOfWork, lists: FakeLists) -> None:
    cid = await sending_campaign(uow, lists)
    await outcomes.record_outcomes(uow, [outcome(cid, str(i), "failed" if i % 2 else "sent") for i in range(5)])
    first = await campaigns.list_deliveries(uow, ACCOUNT, cid, "sent", 2, None)
    rest = await campaigns.list_deliveries(uow, ACCOUNT, cid, "sent", 2, first.next_cursor)
    assert [d.subscriber_id for d in first.items + rest.items] == ["0", "2", "4"]
    assert rest.next_cursor is None
    with pytest.raises(InvalidInput):
        await campaigns.list_deliveries(uow, ACCOUNT, cid, None, 2, "garbage")
