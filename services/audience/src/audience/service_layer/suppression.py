"""Suppression: an address that hard-bounced (or complained) gets no more mail from the account, on
any of its lists (Mailchimp's "cleaned").

A hard bounce marks the address's subscribed members on every list of the account `bounced` and
adds it to the suppression list, which the recipients cursor consults too, so a later add or import
of the address onto another list does not mail it either. Lifting a suppression (DELETE) puts the
`bounced` members back to `subscribed`: the operator says the address works again (fixed mailbox,
wrong bounce). Someone who unsubscribed or complained stays as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstify_contracts import subjects
from mailstify_servicekit.errors import InvalidInput, NotFound
from mailstify_servicekit.pagination import InvalidCursor, decode_cursor, encode_cursor

from ..domain.model import Suppression
from .handlers import changed
from .ports import AudienceUnitOfWork

NOT_SUPPRESSED = "this address is not suppressed"


@dataclass(frozen=True)
class Bounce:
    account_id: str
    email: str
    detail: str


async def record_bounces(uow: AudienceUnitOfWork, bounces: list[Bounce]) -> None:
    """Idempotent: a redelivered bounce finds the address suppressed and its members bounced."""
    if not bounces:
        return
    async with uow:
        for bounce in bounces:
            email = bounce.email.strip().lower()
            await uow.suppressions.add(bounce.account_id, email, "bounced", bounce.detail[:500])
            bounced = await uow.subscribers.set_status_by_email(
                bounce.account_id, email, "bounced", only_from=("subscribed",)
            )
            for subscriber in bounced:
                uow.emit(changed(subscriber, "updated"), subjects.AUDIENCE_SUBSCRIBER_CHANGED)
        await uow.commit()


def _after(cursor: str | None) -> str:
    if cursor is None:
        return ""
    after = decode_cursor(cursor).get("after")
    if not isinstance(after, str):
        raise InvalidCursor()
    return after


async def list_suppressions(
    uow: AudienceUnitOfWork, account_id: str, limit: int, cursor: str | None
) -> tuple[list[Suppression], str | None]:
    after = _after(cursor)
    async with uow:
        rows = await uow.suppressions.page(account_id, after, limit)
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], encode_cursor({"after": rows[limit - 1].email})


async def lift_suppression(uow: AudienceUnitOfWork, account_id: str, email: str) -> Suppression:
    address = email.strip().lower()
    if not address or len(address) > 320:
        raise InvalidInput("give the suppressed email address")
    async with uow:
        lifted = await uow.suppressions.remove(account_id, address)
        if lifted is None:
            raise NotFound(NOT_SUPPRESSED)
        restored = await uow.subscribers.set_status_by_email(account_id, address, "subscribed", only_from=("bounced",))
        for subscriber in restored:
            uow.emit(changed(subscriber, "updated"), subjects.AUDIENCE_SUBSCRIBER_CHANGED)
        await uow.commit()
    return lifted
