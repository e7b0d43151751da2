"""Unit of work: one database transaction, plus the events it stages in the outbox.

    async with uow:
        ...repository calls on uow.session...
        uow.emit(event, subject)
        await uow.commit()

Leaving the block without `commit()` rolls everything back, events included.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailstify_contracts import Event
from mailstify_messaging import add_to_outbox


class UnitOfWork:
    def __init__(self, sessions: async_sessionmaker, on_events_committed: Callable[[], None] = lambda: None):
        self._sessions = sessions
        self._on_events_committed = on_events_committed
        self._staged: list[tuple[Event, str, str | None]] = []
        # A repository statement that wrote outbox rows itself (`OutboxArrays`): the relay is woken too.
        self._written_by_statement = False
        self.session: AsyncSession

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._sessions()
        await self.session.begin()
        self._staged = []
        self._written_by_statement = False
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.session.rollback()
        await self.session.close()

    def emit(self, event: Event, subject: str, msg_id: str | None = None) -> None:
        self._staged.append((event, subject, msg_id))

    def outbox_written(self) -> None:
        """A repository staged events with a statement of its own in this transaction."""
        self._written_by_statement = True

    async def commit(self) -> None:
        staged, self._staged = self._staged, []
        await add_to_outbox(self.session, staged)
        await self.session.commit()
        if staged or self._written_by_statement:
            self._on_events_committed()


class SingleStatementUnitOfWork(UnitOfWork):
    """A unit of work whose whole change is one statement, run in autocommit: the statement is its
    own transaction, so BEGIN and COMMIT, two round trips of three, are saved. For the hottest
    writes (a mailer's wave: its outcomes, their result events and the next wave's marks in one
    statement). Events can only be staged by that statement (`OutboxArrays`): `emit` would be a
    second statement, committed apart from the first. Its sessions must be in autocommit
    (`Runtime.autocommit_sessions`)."""

    def emit(self, event: Event, subject: str, msg_id: str | None = None) -> None:
        raise TypeError("a single-statement unit of work cannot stage events apart from its statement")
