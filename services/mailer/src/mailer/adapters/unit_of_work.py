"""The mailer's unit of work on PostgreSQL: one transaction (+ outbox) over the delivery ledger
and the held deliveries."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mailstify_servicekit.repository_uow import RepositoryUnitOfWork

from .holds import SqlHeldDeliveries
from .ledger import SqlDeliveryLedger


class SqlMailerUnitOfWork(RepositoryUnitOfWork):
    deliveries: SqlDeliveryLedger
    held: SqlHeldDeliveries

    def attach(self, session: AsyncSession) -> None:
        self.deliveries = SqlDeliveryLedger(session, on_outbox_written=self.outbox_written)
        self.held = SqlHeldDeliveries(session)
