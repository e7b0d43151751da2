"""The audience use cases: each opens the unit of work, applies the domain rules, and commits.

Ids arrive as the opaque strings of the API; an id that cannot be ours is simply not found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailstify_contracts import SubscriberChanged, SubscriberUnsubscribed, subjects
from mailstify_servicekit.errors import Conflict, InvalidInput, NotFound
from mailstify_servicekit.pagination import split_page

from ..domain import model
from ..domain.model import MailingList, Subscriber
from .ports import AudienceUnitOfWork

LIST_NOT_FOUND = "list not found"
SUBSCRIBER_NOT_FOUND = "subscriber not found"


async def owned_list(uow: AudienceUnitOfWork, account_id: str, list_id: str, *, with_count: bool) -> MailingList:
    internal_id = model.parse_id(list_id)
    found = internal_id and await uow.lists.get(account_id, internal_id, with_count=with_count)
    if not found:
        raise NotFound(LIST_NOT_FOUND)
    return found


async def _owned_subscriber(uow: AudienceUnitOfWork, account_id: str, list_id: str, subscriber_id: str) -> Subscriber:
    internal_list_id, internal_id = model.parse_id(list_id), model.parse_id(subscriber_id)
    found = (
        internal_list_id
        and internal_id
        and await uow.subscribers.get(account_id, internal_list_id, internal_id)
    )
    if not found:
        raise NotFound(SUBSCRIBER_NOT_FOUND)
    return found


def changed(subscriber: Subscriber, change: str) -> SubscriberChanged:
    """The live-update event for one subscriber's change (staged with `uow.emit` in its transaction)."""
    return SubscriberChanged(
        account_id=subscriber.account_id,
        list_id=str(subscriber.list_id),
        change=change,  # type: ignore[arg-type]
        subscriber_id=str(subscriber.id),
        email=subscriber.email,
        status=subscriber.status,
    )


# --- lists -------------------------------------------------------------------------------------


async def create_list(uow: AudienceUnitOfWork, account_id: str, name: str, description: str | None) -> MailingList:
    name, description = model.clean_list_name(name), model.clean_description(description)
    async with uow:
        created = await uow.lists.add(account_id, name, description)
        if created is None:
            raise Conflict(f"a list named '{name}' already exists")
        await uow.commit()
    return created


async def get_list(uow: AudienceUnitOfWork, account_id: str, list_id: str) -> MailingList:
    async with uow:
        return await owned_list(uow, account_id, list_id, with_count=True)


async def list_lists(
    uow: AudienceUnitOfWork, account_id: str, limit: int, cursor: str | None
) -> tuple[list[MailingList], str | None]:
    after = model.after_cursor(cursor)
    async with uow:
        rows = await uow.lists.page(account_id, after, limit)
    return split_page(rows, limit, model.cursor_position)


async def update_list(uow: AudienceUnitOfWork, account_id: str, list_id: str, changes: dict[str, Any]) -> MailingList:
    cleaned: dict[str, Any] = {}
    if "name" in changes:
        if changes["name"] is None:
            raise InvalidInput("list name must not be empty")
        cleaned["name"] = model.clean_list_name(changes["name"])
    if "description" in changes:
        cleaned["description"] = model.clean_description(changes["description"])
    async with uow:
        mailing_list = await owned_list(uow, account_id, list_id, with_count=True)
        if cleaned and not await uow.lists.update(mailing_list, **cleaned):
            raise Conflict(f"a list named '{cleaned['name']}' already exists")
        await uow.commit()
    return mailing_list


async def delete_list(uow: AudienceUnitOfWork, account_id: str, list_id: str) -> None:
    async with uow:
        mailing_list = await owned_list(uow, account_id, list_id, with_count=False)
        await uow.lists.delete(mailing_list)
        await uow.commit()


# --- subscribers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSubscriber:
    email: str
    first_name: str | None = None
    last_name: str | None = None
    attributes: dict[str, Any] | None = None


async def add_subscriber(uow: AudienceUnitOfWork, account_id: str, list_id: str, new: NewSubscriber) -> Subscriber:
    values = {
        "email": model.clean_email(new.email),
        "first_name": model.clean_person_name(new.first_name, "first_name"),
        "last_name": model.clean_person_name(new.last_name, "last_name"),
        "attributes": model.clean_attributes(new.attributes),
    }
    async with uow:
        mailing_list = await owned_list(uow, account_id, list_id, with_count=False)
        added = await uow.subscribers.add(mailing_list, **values)
        if added is None:
            raise Conflict(f"{values['email']} is already on this list")
        uow.emit(changed(added, "added"), subjects.AUDIENCE_SUBSCRIBER_CHANGED)
        await uow.commit()
    return added


async def list_subscribers(
    uow: AudienceUnitOfWork,
    account_id: str,
    list_id: str,
    limit: int,
    cursor: str | None,
    status: str | None = None,
    text: str | None = None,
) -> tuple[list[Subscriber], str | None]:
    after = model.after_cursor(cursor)
    text = (text or "").strip() or None
    async with uow:
        mailing_list = await owned_list(uow, account_id, list_id, with_count=False)
        rows = await uow.subscribers.page(mailing_list.id, after, limit, status, text)
    return split_page(rows, limit, model.cursor_position)


async def get_subscriber(uow: AudienceUnitOfWork, account_id: str, list_id: str, subscriber_id: str) -> Subscriber:
    async with uow:
        return await _owned_subscriber(uow, account_id, list_id, subscriber_id)


async def update_subscriber(
    uow: AudienceUnitOfWork, account_id: str, list_id: str, subscriber_id: str, changes: dict[str, Any]
) -> Subscriber:
    async with uow:
        subscriber = await _owned_subscriber(uow, account_id, list_id, subscriber_id)
        cleaned: dict[str, Any] = {}
        if "email" in changes:
            cleaned["email"] = model.clean_email(changes["email"] or "")
        for name_field in ("first_name", "last_name"):
            if name_field in changes:
                cleaned[name_field] = model.clean_person_name(changes[name_field], name_field)
        if "attributes" in changes:
            cleaned["attributes"] = model.clean_attributes(changes["attributes"])
        if "status" in changes and changes["status"] != subscriber.status:
            cleaned["status"] = model.next_status(subscriber.status, changes["status"] or "")
        if cleaned and not await uow.subscribers.update(subscriber, **cleaned):
            raise Conflict(f"{cleaned['email']} is already on this list")
        if cleaned:
            uow.emit(changed(subscriber, "updated"), subjects.AUDIENCE_SUBSCRIBER_CHANGED)
        await uow.commit()
    return subscriber


async def delete_subscriber(uow: AudienceUnitOfWork, account_id: str, list_id: str, subscriber_id: str) -> None:
    async with uow:
        subscriber = await _owned_subscriber(uow, account_id, list_id, subscriber_id)
        await uow.subscribers.delete(subscriber)
        uow.emit(changed(subscriber, "removed"), subjects.AUDIENCE_SUBSCRIBER_CHANGED)
        await uow.commit()


# --- recipients (internal: the dispatcher's fan-out) --------------------------------------------


@dataclass(frozen=True)
class RecipientsPage:
    items: list[dict[str, Any]]
    up_to: int
    next_after: int | None


async def recipients_page(
    uow: AudienceUnitOfWork, account_id: str, list_id: str, after: str | None, up_to: str | None, limit: int
) -> RecipientsPage:
    after_id = model.parse_position(after, "after") or 0
    up_to_id = model.parse_position(up_to, "up_to")
    async with uow:
        mailing_list = await owned_list(uow, account_id, list_id, with_count=False)
        if up_to_id is None:
            up_to_id = await uow.subscribers.max_id(mailing_list.id)
        rows = await uow.subscribers.recipients(mailing_list.id, after_id, up_to_id, limit)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        {
            "subscriber_id": str(row.id),
            "email": row.email,
            "first_name": row.first_name,
            "last_name": row.last_name,
            "attributes": row.attributes,
        }
        for row in rows
    ]
    return RecipientsPage(items=items, up_to=up_to_id, next_after=rows[-1].id if more else None)


async def recipient(uow: AudienceUnitOfWork, account_id: str, list_id: str, subscriber_id: str) -> dict[str, Any]:
    """One subscriber's merge fields, in the shape of a `recipients_page` item (a campaign preview);
    NotFound when the list or the subscriber on it is not the account's."""
    async with uow:
        await owned_list(uow, account_id, list_id, with_count=False)
        subscriber = await _owned_subscriber(uow, account_id, list_id, subscriber_id)
    return {
        "subscriber_id": str(subscriber.id),
        "email": subscriber.email,
        "first_name": subscriber.first_name,
        "last_name": subscriber.last_name,
        "attributes": subscriber.attributes,
    }


# --- unsubscribe (internal: the gateway's public unsubscribe link) ------------------------------


async def unsubscribe(
    uow: AudienceUnitOfWork, account_id: str, subscriber_id: str, campaign_id: str | None
) -> tuple[Subscriber, bool]:
    """The subscriber leaves their list, and SubscriberUnsubscribed is staged in the same transaction;
    (subscriber, True) when this call changed it, (subscriber, False) when there was nothing to do."""
    internal_id = model.parse_id(subscriber_id)
    async with uow:
        subscriber = internal_id and await uow.subscribers.lock_in_account(account_id, internal_id)
        if not subscriber:
            raise NotFound(SUBSCRIBER_NOT_FOUND)
        if not model.leaves_by_link(subscriber.status):
            return subscriber, False
        await uow.subscribers.update(subscriber, status="unsubscribed")
        uow.emit(
            SubscriberUnsubscribed(
                account_id=account_id,
                subscriber_id=str(subscriber.id),
                list_id=str(subscriber.list_id),
                email=subscriber.email,
                campaign_id=campaign_id,
            ),
            subjects.AUDIENCE_SUBSCRIBER_UNSUBSCRIBED,
        )
        uow.emit(changed(subscriber, "updated"), subjects.AUDIENCE_SUBSCRIBER_CHANGED)
        await uow.commit()
    return subscriber, True
