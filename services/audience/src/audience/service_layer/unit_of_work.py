"""The audience's unit of work: one transaction with the list and subscriber repositories on it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mailstify_servicekit.repository_uow import RepositoryUnitOfWork

from ..adapters.repository import ListRepository, SubscriberRepository


class AudienceUnitOfWork(RepositoryUnitOfWork):
    lists: ListRepository
    subscribers: SubscriberRepository

    def attach(self, session: AsyncSession) -> None:
        self.lists = ListRepository(session)
        self.subscribers = SubscriberRepository(session)
