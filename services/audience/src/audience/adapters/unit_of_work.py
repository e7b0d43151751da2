"""The audience's unit of work on PostgreSQL: one transaction (+ outbox) over lists and subscribers."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mailstify_servicekit.repository_uow import RepositoryUnitOfWork

from .repository import SqlListRepository, SqlSubscriberRepository


class SqlAudienceUnitOfWork(RepositoryUnitOfWork):
    lists: SqlListRepository
    subscribers: SqlSubscriberRepository

    def attach(self, session: AsyncSession) -> None:
        self.lists = SqlListRepository(session)
        self.subscribers = SqlSubscriberRepository(session)
