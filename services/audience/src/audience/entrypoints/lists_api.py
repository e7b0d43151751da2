"""Public routes for lists and their subscribers (served under /api/v1, behind the gateway)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from mailstify_servicekit import AccountId, Page, PageCursor, PageLimit

from ..domain.model import SubscriberStatus
from ..service_layer import export, handlers
from .dependencies import AudienceUow, Dependencies
from .schemas import ListCreate, ListOut, ListUpdate, SubscriberCreate, SubscriberOut, SubscriberUpdate

router = APIRouter(prefix="/api/v1/lists", tags=["lists"])


@router.post("", status_code=201)
async def create_list(body: ListCreate, account_id: AccountId, uow: AudienceUow) -> ListOut:
    return ListOut.model_validate(await handlers.create_list(uow, account_id, body.name, body.description))


@router.get("")
async def list_lists(
    account_id: AccountId, uow: AudienceUow, limit: PageLimit = 50, cursor: PageCursor = None
) -> Page[ListOut]:
    items, next_cursor = await handlers.list_lists(uow, account_id, limit, cursor)
    return Page(items=[ListOut.model_validate(item) for item in items], next_cursor=next_cursor)


@router.get("/{list_id}")
async def get_list(list_id: str, account_id: AccountId, uow: AudienceUow) -> ListOut:
    return ListOut.model_validate(await handlers.get_list(uow, account_id, list_id))


@router.patch("/{list_id}")
async def update_list(list_id: str, body: ListUpdate, account_id: AccountId, uow: AudienceUow) -> ListOut:
    changes = body.model_dump(include=body.model_fields_set)
    return ListOut.model_validate(await handlers.update_list(uow, account_id, list_id, changes))


@router.delete("/{list_id}", status_code=204)
async def delete_list(list_id: str, account_id: AccountId, uow: AudienceUow) -> Response:
    await handlers.delete_list(uow, account_id, list_id)
    return Response(status_code=204)


@router.post("/{list_id}/subscribers", status_code=201)
async def add_subscriber(
    list_id: str, body: SubscriberCreate, account_id: AccountId, uow: AudienceUow
) -> SubscriberOut:
    new = handlers.NewSubscriber(**body.model_dump())
    return SubscriberOut.model_validate(await handlers.add_subscriber(uow, account_id, list_id, new))


@router.get("/{list_id}/subscribers")
async def list_subscribers(
    list_id: str,
    account_id: AccountId,
    uow: AudienceUow,
    status: Annotated[SubscriberStatus | None, Query(description="only subscribers with this status")] = None,
    q: Annotated[str | None, Query(max_length=254, description="substring of the email or name")] = None,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> Page[SubscriberOut]:
    items, next_cursor = await handlers.list_subscribers(uow, account_id, list_id, limit, cursor, status, q)
    return Page(items=[SubscriberOut.model_validate(item) for item in items], next_cursor=next_cursor)


@router.get("/{list_id}/subscribers/{subscriber_id}")
async def get_subscriber(list_id: str, subscriber_id: str, account_id: AccountId, uow: AudienceUow) -> SubscriberOut:
    return SubscriberOut.model_validate(await handlers.get_subscriber(uow, account_id, list_id, subscriber_id))


@router.patch("/{list_id}/subscribers/{subscriber_id}")
async def update_subscriber(
    list_id: str, subscriber_id: str, body: SubscriberUpdate, account_id: AccountId, uow: AudienceUow
) -> SubscriberOut:
    changes = body.model_dump(include=body.model_fields_set)
    updated = await handlers.update_subscriber(uow, account_id, list_id, subscriber_id, changes)
    return SubscriberOut.model_validate(updated)


@router.delete("/{list_id}/subscribers/{subscriber_id}", status_code=204)
async def delete_subscriber(list_id: str, subscriber_id: str, account_id: AccountId, uow: AudienceUow) -> Response:
    await handlers.delete_subscriber(uow, account_id, list_id, subscriber_id)
    return Response(status_code=204)


@router.get("/{list_id}/export", response_class=StreamingResponse)
async def export_list(list_id: str, account_id: AccountId, dependencies: Dependencies) -> StreamingResponse:
    """Every subscriber as CSV (UTF-8 with BOM), streamed; cells a spreadsheet would run as a formula
    start with `'`."""
    prepared = await export.open_export(dependencies.uow(), account_id, list_id)
    return StreamingResponse(
        export.export_csv(dependencies.uow, prepared),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{prepared.file_name}"'},
    )
