"""What the audience use cases need from the outside world. `adapters/` implements these on
PostgreSQL; the unit tests use in-memory fakes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mailstify_servicekit.ports import AbstractUnitOfWork

from ..domain.csv_import import ImportRow
from ..domain.model import ImportJob, ImportMode, MailingList, Subscriber, Suppression


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

    async def recipients(self, list_id: int, after: int, up_to: int, limit: int) -> list[RecipientRecord]:
        """Subscribed members in id order, without the addresses the account suppressed."""
        ...

    async def attribute_keys(self, list_id: int, limit: int) -> list[str]: ...

    async def set_status_by_email(
        self, account_id: str, email: str, status: str, *, only_from: tuple[str, ...]
    ) -> list[Subscriber]:
        """The address's subscribers on all the account's lists whose status was in `only_from`, changed."""
        ...


class SuppressionRepository(Protocol):
    async def add(self, account_id: str, email: str, reason: str, detail: str) -> bool:
        """False when the address was suppressed already."""
        ...

    async def page(self, account_id: str, after: str, limit: int) -> list[Suppression]:
        """Up to `limit + 1` suppressions with an address after `after`, in address order."""
        ...

    async def remove(self, account_id: str, email: str) -> Suppression | None: ...


@dataclass(frozen=True)
class MergeCounts:
    imported: int
    updated: int
    skipped: int

    def __add__(self, other: MergeCounts) -> MergeCounts:
        return MergeCounts(self.imported + other.imported, self.updated + other.updated, self.skipped + other.skipped)


@dataclass(frozen=True)
class DuplicateLines:
    total: int
    lines: list[tuple[int, int]]  # (line, the earlier line with the same address), at most the report limit


class ImportRepository(Protocol):
    async def add(self, account_id: str, list_id: int, mode: ImportMode, file_name: str) -> ImportJob | None:
        """The new queued job, or None when the list has an import queued or running."""
        ...

    async def get(self, account_id: str, job_id: int) -> ImportJob | None: ...

    async def running_on(self, list_id: int) -> bool: ...

    async def update(self, job_id: int, **values: Any) -> None: ...

    async def finish(self, job_id: int, **values: Any) -> None: ...

    async def fail_orphaned(self, detail: str) -> list[int]:
        """Mark failed the unfinished jobs no live import transaction holds; their ids."""
        ...


class PreparedRows(Protocol):
    """A chunk's rows as a staging area prepared them (its own encoding inside)."""

    rows: Sequence[ImportRow]


class StagingArea(Protocol):
    """One import's rows on their way into the list, inside the import's transaction: nothing is
    visible to anyone else before it commits."""

    async def open(self, job_id: int, list_id: int) -> None:
        """Claim the job for this transaction (a crash releases the claim), hold off other inserts
        into the list until it ends, and create the area."""
        ...

    def prepare(self, account_id: str, list_id: int, rows: Sequence[ImportRow]) -> PreparedRows:
        """The rows in the form `merge` loads them. Pure CPU, no I/O, safe in a worker thread: the
        import calls it in the parser's thread, so encoding a chunk overlaps the previous merge
        instead of lengthening it."""
        ...

    async def merge(self, mode: ImportMode, prepared: PreparedRows) -> MergeCounts:
        """Merge rows whose addresses appear in no earlier row of the file into the list."""
        ...

    async def hold(self, repeats: Sequence[ImportRow]) -> None:
        """Keep rows whose addresses may appear in an earlier row, for `merge_repeats`."""
        ...

    async def merge_repeats(
        self, account_id: str, list_id: int, mode: ImportMode, report_limit: int
    ) -> tuple[MergeCounts, DuplicateLines]:
        """Once the file is read: merge the held rows that are their address's first line, and
        report the others as duplicates of it."""
        ...


class AudienceUnitOfWork(AbstractUnitOfWork, Protocol):
    lists: ListRepository
    subscribers: SubscriberRepository
    suppressions: SuppressionRepository
    imports: ImportRepository
    staging: StagingArea
