"""Public routes for the account's suppression list (served under /api/v1, behind the gateway)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from mailstify_servicekit import AccountId, Page, PageCursor, PageLimit

from ..service_layer import suppression
from .dependencies import AudienceUow
from .schemas import SuppressionOut

router = APIRouter(prefix="/api/v1/suppressions", tags=["suppressions"])


@router.get("")
async def list_suppressions(
    account_id: AccountId, uow: AudienceUow, limit: PageLimit = 50, cursor: PageCursor = None
) -> Page[SuppressionOut]:
    """Addresses that bounced or complained: no list of the account mails them."""
    items, next_cursor = await suppression.list_suppressions(uow, account_id, limit, cursor)
    return Page(items=[SuppressionOut.model_validate(item) for item in items], next_cursor=next_cursor)


@router.delete("/{email}", status_code=204)
async def lift_suppression(email: str, account_id: AccountId, uow: AudienceUow) -> Response:
    """The address may be mailed again; its `bounced` subscribers are `subscribed` again."""
    await suppression.lift_suppression(uow, account_id, email)
    return Response(status_code=204)
