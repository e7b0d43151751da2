"""Test doubles shared by services' unit tests."""

from __future__ import annotations

from typing import Self

from mailstify_contracts import Event


class FakeUnitOfWork:
    """The in-memory counterpart of `UnitOfWork` / `RepositoryUnitOfWork`: events staged with `emit`
    reach `events` only on `commit`, and leaving the block without committing drops them.

    Subclasses attach their fake repositories in `begin()` (e.g. over copies of committed state) and
    make that state durable in `on_commit()`.
    """

    def __init__(self) -> None:
        self.events: list[tuple[Event, str, str | None]] = []
        self._staged: list[tuple[Event, str, str | None]] = []

    def begin(self) -> None:
        """Called on entering the block."""

    def on_commit(self) -> None:
        """Called by `commit` before the staged events are released."""

    async def __aenter__(self) -> Self:
        self._staged = []
        self.begin()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._staged = []

    def emit(self, event: Event, subject: str, msg_id: str | None = None) -> None:
        self._staged.append((event, subject, msg_id))

    async def commit(self) -> None:
        self.on_commit()
        self.events.extend(self._staged)
        self._staged = []

    def events_of(self, event_type: type[Event]) -> list[Event]:
        return [event for event, _, _ in self.events if isinstance(event, event_type)]
