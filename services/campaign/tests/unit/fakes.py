"""In-memory stand-ins for the campaign service's ports, with the same semantics as the SQL ones
(first insert wins in the ledger; a unit of work commits all or nothing)."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime

from mailstify_contracts import Recipient
from mailstify_servicekit.testing import FakeUnitOfWork

from campaign.domain.model import Campaign, Outcome, OutcomeKind, RecordedOutcome
from campaign.domain.timeline import DeferralTally, Milestone
from campaign.service_layer.ports import DeliveryRecord, ListInfo


class FakeCampaignRepository:
    def __init__(self, rows: dict[str, Campaign]):
        self.rows = rows

    async def add(self, campaign: Campaign) -> None:
        self.rows[campaign.id] = copy.copy(campaign)

    async def get(self, account_id: str, campaign_id: str, *, for_update: bool = False) -> Campaign | None:
        found = self.rows.get(campaign_id)
        return copy.copy(found) if found and found.account_id == account_id else None

    async def lock_many(self, campaign_ids: Sequence[str]) -> dict[str, Campaign]:
        return {cid: copy.copy(self.rows[cid]) for cid in campaign_ids if cid in self.rows}

    async def lock_due(self, now: datetime, limit: int) -> list[Campaign]:
        due = sorted((c for c in self.rows.values() if c.is_due(now)), key=lambda c: c.send_at or now)
        return [copy.copy(c) for c in due[:limit]]

    async def save(self, campaign: Campaign) -> None:
        self.rows[campaign.id] = copy.copy(campaign)

    async def delete(self, campaign_id: str) -> None:
        self.rows.pop(campaign_id, None)

    async def list_newest_first(
        self, account_id: str, limit: int, before: tuple[datetime, str] | None
    ) -> list[Campaign]:
        mine = sorted(
            (c for c in self.rows.values() if c.account_id == account_id),
            key=lambda c: (c.created_at, c.id),
            reverse=True,
        )
        if before is not None:
            mine = [c for c in mine if (c.created_at, c.id) < before]
        return [copy.copy(c) for c in mine[:limit]]


class FakeResultLedger:
    def __init__(self, rows: dict[tuple[str, str], DeliveryRecord]):
        self.rows = rows

    async def record(self, outcomes: Sequence[Outcome], now: datetime) -> list[RecordedOutcome]:
        recorded = []
        for o in outcomes:
            key = (o.campaign_id, o.subscriber_id)
            existing = self.rows.get(key)
            if existing is None or (existing.status == "retrying" and existing.round < o.round):
                self.rows[key] = DeliveryRecord(o.subscriber_id, o.email, o.outcome, o.detail, now, o.round)
                recorded.append(RecordedOutcome(o.campaign_id, o.outcome, o.hard_bounce))
        return recorded

    async def subscribers_with(
        self, campaign_id: str, outcomes: Sequence[OutcomeKind], limit: int, after: str | None
    ) -> list[str]:
        ids = sorted(s for (c, s), r in self.rows.items() if c == campaign_id and r.status in outcomes)
        return [s for s in ids if after is None or s > after][:limit]

    async def take_back(
        self, campaign_id: str, subscriber_ids: Sequence[str], outcomes: Sequence[OutcomeKind]
    ) -> list[tuple[str, OutcomeKind]]:
        taken = []
        for subscriber_id in subscriber_ids:
            row = self.rows.get((campaign_id, subscriber_id))
            if row is not None and row.status in outcomes:
                self.rows[(campaign_id, subscriber_id)] = dataclasses.replace(row, status="retrying")
                taken.append((subscriber_id, row.status))
        return taken

    async def page(
        self,
        campaign_id: str,
        outcome: str | None,
        limit: int,
        after: tuple[datetime, str] | None,
        search: str | None = None,
    ) -> list[DeliveryRecord]:
        rows = sorted(
            (
                r
                for (cid, _), r in self.rows.items()
                if cid == campaign_id and outcome in (None, r.status) and (search or "").lower() in r.email.lower()
            ),
            key=lambda r: (r.recorded_at, r.subscriber_id),
        )
        if after is not None:
            rows = [r for r in rows if (r.recorded_at, r.subscriber_id) > after]
        return rows[:limit]


class FakeUnsubscribeLedger:
    def __init__(self, rows: dict[tuple[str, str], datetime]):
        self.rows = rows

    async def record(self, unsubscribes: Sequence[tuple[str, str]], now: datetime) -> list[str]:
        inserted = []
        for pair in unsubscribes:
            if pair not in self.rows:
                self.rows[pair] = now
                inserted.append(pair[0])
        return inserted


class FakeTimelineLog:
    def __init__(self, milestones: list[Milestone], deferrals: dict[tuple[str, str], DeferralTally]):
        self.rows = milestones
        self.deferral_rows = deferrals

    async def add(self, milestones: Sequence[Milestone]) -> None:
        self.rows.extend(milestones)

    async def count_deferrals(self, deferrals: Sequence[tuple[str, str, int]], now: datetime) -> None:
        for campaign_id, reason, count in deferrals:
            found = self.deferral_rows.get((campaign_id, reason))
            self.deferral_rows[(campaign_id, reason)] = (
                DeferralTally(reason, found.count + count, found.first_at, now) if found else DeferralTally(reason, count, now, now)
            )

    async def milestones(self, campaign_id: str) -> list[Milestone]:
        return [m for m in self.rows if m.campaign_id == campaign_id]

    async def deferrals(self, campaign_id: str) -> list[DeferralTally]:
        return [d for (c, _), d in self.deferral_rows.items() if c == campaign_id]


class FakeCampaignUnitOfWork(FakeUnitOfWork):
    """Works on copies; commit publishes them along with the staged events, leaving without commit drops both."""

    def __init__(self) -> None:
        super().__init__()
        self.committed_campaigns: dict[str, Campaign] = {}
        self.committed_results: dict[tuple[str, str], DeliveryRecord] = {}
        self.committed_unsubscribes: dict[tuple[str, str], datetime] = {}
        self.committed_milestones: list[Milestone] = []
        self.committed_deferrals: dict[tuple[str, str], DeferralTally] = {}

    def begin(self) -> None:
        self._campaigns = {k: copy.copy(v) for k, v in self.committed_campaigns.items()}
        self._results = dict(self.committed_results)
        self.campaigns = FakeCampaignRepository(self._campaigns)
        self.results = FakeResultLedger(self._results)
        self._unsubscribes = dict(self.committed_unsubscribes)
        self.unsubscribes = FakeUnsubscribeLedger(self._unsubscribes)
        self.timeline = FakeTimelineLog(list(self.committed_milestones), dict(self.committed_deferrals))

    def on_commit(self) -> None:
        self.committed_campaigns = self._campaigns
        self.committed_results = self._results
        self.committed_unsubscribes = self._unsubscribes
        self.committed_milestones = self.timeline.rows
        self.committed_deferrals = self.timeline.deferral_rows


class FakeRecipients:
    """Subscribers of each list of account `account_id`, as the audience service would answer."""

    def __init__(self, account_id: str = "acct-1", **by_list: list[Recipient]):
        self.account_id = account_id
        self.by_list = by_list

    async def find_recipient(self, account_id: str, list_id: str, subscriber_id: str) -> Recipient | None:
        if account_id != self.account_id:
            return None
        return next((r for r in self.by_list.get(list_id, []) if r.subscriber_id == subscriber_id), None)


class FakeLists:
    def __init__(self, **subscriber_counts: int):
        self.counts = subscriber_counts

    async def find_list(self, account_id: str, list_id: str) -> ListInfo | None:
        if list_id not in self.counts:
            return None
        return ListInfo(id=list_id, subscriber_count=self.counts[list_id])


NOW = datetime(2025, 1, 1, tzinfo=UTC)


def draft(**overrides: object) -> Campaign:
    """A campaign for domain tests: a draft, or any state the overrides give it."""
    fields: dict = dict(
        id="c1",
        account_id="a1",
        name="Welcome",
        subject="Hi",
        list_id="l1",
        from_name="Team",
        from_email="team@example.com",
        body_html="<p>Hello</p>",
        created_at=NOW,
        updated_at=NOW,
    )
    return Campaign(**{**fields, **overrides})
