"""Unsubscribes per campaign: each (campaign, subscriber) counts once however often its event
arrives; other accounts' and unknown campaigns count nothing; counting emits no status event."""

from __future__ import annotations

import pytest

from campaign.service_layer.handlers import campaigns, control, outcomes

from .fakes import FakeCampaignUnitOfWork, FakeLists
from .test_services import ACCOUNT, fields


@pytest.fixture
def uow() -> FakeCampaignUnitOfWork:
    return FakeCampaignUnitOfWork()


async def _sent_campaign(uow: FakeCampaignUnitOfWork) -> str:
    lists = FakeLists(**{"list-1": 3})
    campaign = await campaigns.create_campaign(uow, lists, ACCOUNT, fields())
    await control.request_send(uow, lists, ACCOUNT, campaign.id)
    return campaign.id


async def test_each_subscriber_counts_once_per_campaign(uow: FakeCampaignUnitOfWork) -> None:
    cid = await _sent_campaign(uow)
    emitted_before = len(uow.events)
    await outcomes.record_unsubscribes(uow, [(ACCOUNT, cid, "1"), (ACCOUNT, cid, "1"), (ACCOUNT, cid, "2")])
    await outcomes.record_unsubscribes(uow, [(ACCOUNT, cid, "2"), (ACCOUNT, cid, "3")])

    assert uow.committed_campaigns[cid].unsubscribe_count == 3
    assert len(uow.events) == emitted_before


async def test_unknown_and_foreign_campaigns_count_nothing(uow: FakeCampaignUnitOfWork) -> None:
    cid = await _sent_campaign(uow)
    await outcomes.record_unsubscribes(uow, [("other-account", cid, "1"), (ACCOUNT, "no-such-campaign", "1")])
    await outcomes.record_unsubscribes(uow, [])

    assert uow.committed_campaigns[cid].unsubscribe_count == 0
    assert not uow.committed_unsubscribes
