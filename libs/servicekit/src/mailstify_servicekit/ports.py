"""The port every service's unit of work implements. Each service's `service_layer/ports.py` extends
it with its repositories; its `adapters/unit_of_work.py` implements that on PostgreSQL (through
`RepositoryUnitOfWork`), and its unit tests with `testing.FakeUnitOfWork`.

Pure on purpose: the service layer depends on this, never on SQLAlchemy."""

from __future__ import annotations

from typing import Protocol, Self

from mailstify_contracts import Event


class AbstractUnitOfWork(Protocol):
    """One transaction; events emitted inside it reach the outbox on commit, and vanish without it.

        async with uow:
            ...
            uow.emit(event, subject)
            await uow.commit()
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    def emit(self, event: Event, subject: str, msg_id: str | None = None) -> None: ...

    async def commit(self) -> None: ...
