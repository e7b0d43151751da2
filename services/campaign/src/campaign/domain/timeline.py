"""A campaign's timeline: what support needs to answer "what happened to my campaign?" without a
tracing backend. Milestones are the campaign's own state changes and pipeline reports (a handful per
campaign, never one per email); deferrals are counted per reason; first and last delivery are a
min/max the result batches keep up to date (`Campaign.deliveries_reported`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailstify_contracts import CampaignStatus

from .model import Campaign

# Milestones starting a send: the trace to search for is the latest of these (a resume's or a
# retry round's trace is in its own milestone).
SEND_STARTS = ("send_requested", "schedule_reached")
# Statuses a campaign ends in, noted as milestones of their own whatever caused them.
_ENDINGS: frozenset[CampaignStatus] = frozenset({"sent", "failed"})


@dataclass(frozen=True)
class Milestone:
    campaign_id: str
    at: datetime
    # What happened: send_requested, scheduled, unscheduled, schedule_reached, paused, resumed,
    # cancelled, fanned_out, fanout_failed, retry_round, sent, failed.
    kind: str
    # The campaign's status right after it.
    status: CampaignStatus
    detail: str | None = None
    # The trace that was current when it happened (set by the store, from the active span).
    trace_id: str | None = None


@dataclass(frozen=True)
class DeferralTally:
    """A delivery-path problem the mailers reported, how often, first and last seen."""

    reason: str
    count: int
    first_at: datetime
    last_at: datetime


def milestones(
    campaign: Campaign, before: CampaignStatus, now: datetime, kind: str | None = None, detail: str | None = None
) -> list[Milestone]:
    """The milestone `kind` (if any), plus the campaign's ending when this change ended it."""
    noted = [Milestone(campaign.id, now, kind, campaign.status, detail)] if kind else []
    if campaign.status != before and campaign.status in _ENDINGS and kind != campaign.status:
        noted.append(Milestone(campaign.id, now, campaign.status, campaign.status, campaign.last_error))
    return noted


@dataclass(frozen=True)
class Timeline:
    campaign: Campaign
    milestones: list[Milestone]
    deferrals: list[DeferralTally]

    @property
    def trace_id(self) -> str | None:
        """The trace of the send request (of the scheduled start; for a scheduled campaign not yet
        started, of the request that scheduled it)."""
        for kinds in (SEND_STARTS, ("scheduled",)):
            for milestone in reversed(self.milestones):
                if milestone.kind in kinds and milestone.trace_id:
                    return milestone.trace_id
        return None

    @property
    def retries(self) -> list[Milestone]:
        return [m for m in self.milestones if m.kind in ("retry_round", "paused", "resumed")]
