"""A service's own unit of work: servicekit's transaction + outbox, with the service's repositories
attached to its session, so service-layer handlers say `uow.campaigns.get(...)` and unit tests swap
the whole thing for an in-memory fake (the cosmicpython pattern).

    class SqlCampaignUnitOfWork(RepositoryUnitOfWork):
        def attach(self, session):
            self.campaigns = SqlCampaignRepository(session)

    uow = SqlCampaignUnitOfWork(connections.new_transaction())   # in bootstrap.wire
"""

from __future__ import annotations

from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession

from mailstify_contracts import Event

from .unit_of_work import UnitOfWork


class RepositoryUnitOfWork:
    def __init__(self, uow: UnitOfWork):
        self._uow = uow

    def attach(self, session: AsyncSession) -> None:
        """Build the repositories on the session of the transaction just begun."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self._uow.__aenter__()
        self.attach(self._uow.session)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._uow.__aexit__(*exc_info)

    def emit(self, event: Event, subject: str, msg_id: str | None = None) -> None:
        self._uow.emit(event, subject, msg_id)

    def outbox_written(self) -> None:
        """Called by a repository whose statement wrote outbox rows itself: the relay is woken on commit."""
        self._uow.outbox_written()

    async def commit(self) -> None:
        await self._uow.commit()
