"""The gateway's unit of work on PostgreSQL: one transaction over the identity store."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mailstify_servicekit.repository_uow import RepositoryUnitOfWork

from .repository import SqlIdentityRepository


class SqlGatewayUnitOfWork(RepositoryUnitOfWork):
    identities: SqlIdentityRepository

    def attach(self, session: AsyncSession) -> None:
        self.identities = SqlIdentityRepository(session)
