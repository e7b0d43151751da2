"""The dispatcher's unit of work: one transaction (+ outbox) over fan-out progress."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mailstify_servicekit.repository_uow import RepositoryUnitOfWork

from .repository import SqlFanoutRepository


class SqlFanoutUnitOfWork(RepositoryUnitOfWork):
    fanouts: SqlFanoutRepository

    def attach(self, session: AsyncSession) -> None:
        self.fanouts = SqlFanoutRepository(session)
