"""The campaign service's unit of work: one transaction (+ outbox) over campaigns and the result ledger."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mailstify_servicekit.repository_uow import RepositoryUnitOfWork

from .repository import SqlCampaignRepository, SqlResultLedger, SqlUnsubscribeLedger
from .timeline import SqlTimelineLog


class SqlCampaignUnitOfWork(RepositoryUnitOfWork):
    campaigns: SqlCampaignRepository
    results: SqlResultLedger
    unsubscribes: SqlUnsubscribeLedger
    timeline: SqlTimelineLog

    def attach(self, session: AsyncSession) -> None:
        self.campaigns = SqlCampaignRepository(session)
        self.results = SqlResultLedger(session)
        self.unsubscribes = SqlUnsubscribeLedger(session)
        self.timeline = SqlTimelineLog(session)
