"""The audience's unit of work on PostgreSQL: one transaction (+ outbox) over lists, subscribers,
suppressions, import jobs and an import's staging area."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mailstify_servicekit.repository_uow import RepositoryUnitOfWork

from .importing import SqlImportRepository, SqlStagingArea
from .repository import SqlListRepository, SqlSubscriberRepository
from .suppressions import SqlSuppressionRepository


class SqlAudienceUnitOfWork(RepositoryUnitOfWork):
    lists: SqlListRepository
    subscribers: SqlSubscriberRepository
    suppressions: SqlSuppressionRepository
    imports: SqlImportRepository
    staging: SqlStagingArea

    def attach(self, session: AsyncSession) -> None:
        self.lists = SqlListRepository(session)
        self.subscribers = SqlSubscriberRepository(session)
        self.suppressions = SqlSuppressionRepository(session)
        self.imports = SqlImportRepository(session)
        self.staging = SqlStagingArea(session)
