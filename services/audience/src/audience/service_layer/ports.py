"""What the audience use cases need from the outside world. `adapters/` implements these on
PostgreSQL; the unit tests use in-memory fakes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from mailstify_servicekit.ports import AbstractUnitOfWork

from ..domain.model import MailingList, Subscriber


@dataclass(frozen=True)
class RecipientRecord:
    """The merge fields of one subscribed subscriber, as the dispatcher's fan-out reads them."""

    id: int
    email: str
    first_name: str | None
    last_name: str | None
    attributes: dict[str, Any]


class ListRepository(Protocol):
    async def add(self, account_id: str, name: str, description: str) -> MailingList | None:
        """The new list, or None when the account already has a list of that name."""
        ...

    async def get(self, account_id: str, list_id: int, *, with_count: bool = True) -> MailingList | None: ...

    async def page(self, account_id: str, after: int, limit: int) -> list[MailingList]:
        """Up to `limit + 1` lists after id `after`, in id order (the extra one says a page follows)."""
        ...

    async def update(self, mailing_list: MailingList, **changes: Any) -> bool:
        """False when the new name is taken by another list of the account."""
        ...

    async def delete(self, mailing_list: MailingList) -> None: ...


class SubscriberRepository(Protocol):
    async def add(self, mailing_list: MailingList, **values: Any) -> Subscriber | None:
        """The new subscriber, or None when the email is already on the list."""
        ...

    async def get(self, account_id: str, list_id: int, subscriber_id: int) -> Subscriber | None: ...

    async def page(
        self, list_id: int, after: int, limit: int, status: str | None = None, text: str | None = None
    ) -> list[Subscriber]: ...

    async def update(self, subscriber: Subscriber, **changes: Any) -> bool:
        """False when the new email is already on the list."""
        ...

    async def delete(self, subscriber: Subscriber) -> None: ...

    async def max_id(self, list_id: int) -> int: ...

    async def lock_in_account(self, account_id: str, subscriber_id: int) -> Subscriber | None:
        """The account's subscriber with this id, whatever its list, locked until the transaction ends."""
        ...

    async def recipients(self, list_id: int, after: int, up_to: int, limit: int) -> list[RecipientRecord]: ...


class AudienceUnitOfWork(AbstractUnitOfWork, Protocol):
    lists: ListRepository
    subscribers: SubscriberRepository
