"""The gateway's unit of work: one transaction with the identity repository on it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mailstify_servicekit.repository_uow import RepositoryUnitOfWork

from ..adapters.repository import GatewayRepository


class GatewayUnitOfWork(RepositoryUnitOfWork):
    identities: GatewayRepository

    def attach(self, session: AsyncSession) -> None:
        self.identities = GatewayRepository(session)
