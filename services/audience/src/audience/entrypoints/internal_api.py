"""Internal routes: called by other services with the internal token, never proxied by the gateway."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mailstify_servicekit import AccountId, InternalOnly

from ..service_layer import handlers
from .dependencies import AudienceUow
from .schemas import RecipientOut, RecipientsOut, UnsubscribeIn, UnsubscribeOut

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


@router.get("/lists/{list_id}/subscribers/{subscriber_id}/recipient")
async def recipient(list_id: str, subscriber_id: str, account_id: AccountId, uow: AudienceUow) -> RecipientOut:
    """One subscriber's merge fields (a campaign preview); 404 when not on that list of the account."""
    return RecipientOut(**await handlers.recipient(uow, account_id, list_id, subscriber_id))


@router.post("/subscribers/{subscriber_id}/unsubscribe")
async def unsubscribe(
    subscriber_id: str, account_id: AccountId, uow: AudienceUow, body: UnsubscribeIn | None = None
) -> UnsubscribeOut:
    """The gateway's public unsubscribe link, once its token checked out; idempotent."""
    subscriber, changed = await handlers.unsubscribe(
        uow, account_id, subscriber_id, body.campaign_id if body else None
    )
    return UnsubscribeOut(subscriber_id=str(subscriber.id), status=subscriber.status, changed=changed)
