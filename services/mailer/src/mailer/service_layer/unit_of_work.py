"""The mailer's unit of work: the servicekit transaction (with its outbox) plus the ledger."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mailstify_servicekit.repository_uow import RepositoryUnitOfWork

from ..adapters.ledger import DeliveryLedger


class MailerUnitOfWork(RepositoryUnitOfWork):
    deliveries: DeliveryLedger

    def attach(self, session: AsyncSession) -> None:
        self.deliveries = DeliveryLedger(session)
