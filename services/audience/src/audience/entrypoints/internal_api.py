"""Internal routes: called by other services with the internal token, never proxied by the gateway."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mailstify_servicekit import AccountId, InternalOnly

from ..service_layer import handlers
from .dependencies import AudienceUow
from .schemas import RecipientOut, RecipientsOut

# InternalOnly: a request the gateway relayed from the public API never reaches these, whatever its path.
router = APIRouter(prefix="/internal", tags=["internal"], dependencies=[InternalOnly])


@router.get("/lists/{list_id}/recipients")
async def recipients(
    list_id: str,
    account_id: AccountId,
    uow: AudienceUow,
    after: Annotated[str | None, Query(description="`next_after` of the previous page")] = None,
    up_to: Annotated[str | None, Query(description="snapshot bound from the first page")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> RecipientsOut:
    page = await handlers.recipients_page(uow, account_id, list_id, after, up_to, limit)
    return RecipientsOut(
        items=[RecipientOut(**item) for item in page.items],
        up_to=str(page.up_to),
        next_after=None if page.next_after is None else str(page.next_after),
    )
