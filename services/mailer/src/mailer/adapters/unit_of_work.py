"""The mailer's unit of work on PostgreSQL: one transaction (+ outbox) over the delivery ledger."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mailstify_servicekit.repository_uow import RepositoryUnitOfWork

from .ledger import SqlDeliveryLedger


class SqlMailerUnitOfWork(RepositoryUnitOfWork):
    deliveries: SqlDeliveryLedger

    def attach(self, session: AsyncSession) -> None:
        self.deliveries = SqlDeliveryLedger(session)
