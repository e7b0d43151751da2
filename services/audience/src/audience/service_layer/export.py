"""Exporting a list as CSV in constant memory: keyset pages of the list, each its own short
transaction, each encoded and handed to the response as it is read. A 1M-row export holds one page
at a time and never a long-running transaction (rows changed mid-export show as they are then)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from ..domain import csv_export
from .handlers import owned_list
from .ports import AudienceUnitOfWork

PAGE_ROWS = 5000
# A UTF-8 byte order mark: without it Excel reads the file as the machine's legacy code page.
BOM = "\ufeff".encode()


@dataclass(frozen=True)
class Export:
    list_id: int
    file_name: str
    attribute_keys: list[str]


async def open_export(uow: AudienceUnitOfWork, account_id: str, list_id: str) -> Export:
    """What the export will hold, checked before the response starts (404 while one can still be sent)."""
    async with uow:
        mailing_list = await owned_list(uow, account_id, list_id, with_count=False)
        keys = await uow.subscribers.attribute_keys(mailing_list.id, csv_export.MAX_ATTRIBUTE_COLUMNS)
    safe_name = "".join(c if c.isalnum() or c in "-_" else "-" for c in mailing_list.name)[:60] or "list"
    return Export(mailing_list.id, f"{safe_name}-{mailing_list.id}.csv", keys)


async def export_csv(uow_factory: Callable[[], AudienceUnitOfWork], export: Export) -> AsyncIterator[bytes]:
    yield BOM + csv_export.encode([csv_export.header(export.attribute_keys)])
    after = 0
    while True:
        async with uow_factory() as uow:
            page = await uow.subscribers.page(export.list_id, after, PAGE_ROWS - 1)
        if not page:
            return
        yield csv_export.encode(csv_export.row(subscriber, export.attribute_keys) for subscriber in page)
        after = page[-1].id
