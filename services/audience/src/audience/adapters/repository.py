"""Reading and writing lists and subscribers. Every query is scoped by account: a row of another
account is indistinguishable from a missing one."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.model import MailingList, Subscriber
from ..service_layer.ports import RecipientRecord
from .tables import list_status_counts, lists, subscribers, suppressions

# The trigger-kept counts of migration 0002: a primary-key lookup of at most four rows per list,
# whatever the list's size, instead of counting its subscribers.
_status_counts = (
    sa.select(
        sa.func.coalesce(
            sa.func.jsonb_object_agg(list_status_counts.c.status, list_status_counts.c.n),
            sa.text("'{}'::jsonb"),
        )
    )
    .where(list_status_counts.c.list_id == lists.c.id)
    .correlate(lists)
    .scalar_subquery()
    .label("counts")
)


def _mailing_list(row: sa.Row) -> MailingList:
    values = dict(row._mapping)
    counts = values.pop("counts", None) or {}
    return MailingList(**values, counts=counts, subscriber_count=counts.get("subscribed", 0))


def _subscriber(row: sa.Row) -> Subscriber:
    return Subscriber(**row._mapping)


def is_unique_violation(error: IntegrityError, constraint: str) -> bool:
    return getattr(getattr(error.orig, "diag", None), "constraint_name", None) == constraint


async def _update(
    session: AsyncSession, table: sa.Table, entity: MailingList | Subscriber, unique: str, changes: dict[str, Any]
) -> bool:
    """Apply `changes` to the row and to `entity`; False when they would break the `unique` constraint."""
    statement = (
        sa.update(table)
        .where(table.c.id == entity.id)
        .values(**changes, updated_at=sa.func.now())
        .returning(table.c.updated_at)
    )
    try:
        # A savepoint, so a refused change leaves the transaction usable for the caller.
        async with session.begin_nested():
            entity.updated_at = (await session.execute(statement)).scalar_one()
    except IntegrityError as error:
        if is_unique_violation(error, unique):
            return False
        raise
    for key, value in changes.items():
        setattr(entity, key, value)
    return True


class SqlListRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def add(self, account_id: str, name: str, description: str) -> MailingList | None:
        """The new list, or None when the account already has a list of that name."""
        # ON CONFLICT instead of check-then-insert: two concurrent creates cannot both win.
        statement = (
            insert(lists)
            .values(account_id=account_id, name=name, description=description)
            .on_conflict_do_nothing(constraint="uq_lists_account_name")
            .returning(*lists.c)
        )
        row = (await self.session.execute(statement)).first()
        return _mailing_list(row) if row else None

    async def get(self, account_id: str, list_id: int, *, with_count: bool = True) -> MailingList | None:
        """`with_count=False` when only ownership matters: counting a big list is not free."""
        columns = [*lists.c, _status_counts] if with_count else list(lists.c)
        statement = sa.select(*columns).where(lists.c.id == list_id, lists.c.account_id == account_id)
        row = (await self.session.execute(statement)).first()
        return _mailing_list(row) if row else None

    async def page(self, account_id: str, after: int, limit: int) -> list[MailingList]:
        # The counts are read only for the lists on this page; fetching limit + 1 tells whether
        # another page exists.
        statement = (
            sa.select(*lists.c, _status_counts)
            .where(lists.c.account_id == account_id, lists.c.id > after)
            .order_by(lists.c.id)
            .limit(limit + 1)
        )
        return [_mailing_list(row) for row in await self.session.execute(statement)]

    async def update(self, mailing_list: MailingList, **changes: Any) -> bool:
        """False when the new name is taken by another list of the account."""
        return await _update(self.session, lists, mailing_list, "uq_lists_account_name", changes)

    async def delete(self, mailing_list: MailingList) -> None:
        # Its subscribers go with it (ON DELETE CASCADE).
        await self.session.execute(sa.delete(lists).where(lists.c.id == mailing_list.id))


class SqlSubscriberRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def add(self, mailing_list: MailingList, **values: Any) -> Subscriber | None:
        """The new subscriber, or None when the email is already on the list."""
        statement = (
            insert(subscribers)
            .values(account_id=mailing_list.account_id, list_id=mailing_list.id, **values)
            .on_conflict_do_nothing(constraint="uq_subscribers_list_email")
            .returning(*subscribers.c)
        )
        row = (await self.session.execute(statement)).first()
        return _subscriber(row) if row else None

    async def get(self, account_id: str, list_id: int, subscriber_id: int) -> Subscriber | None:
        statement = sa.select(subscribers).where(
            subscribers.c.id == subscriber_id,
            subscribers.c.list_id == list_id,
            subscribers.c.account_id == account_id,
        )
        row = (await self.session.execute(statement)).first()
        return _subscriber(row) if row else None

    async def page(
        self, list_id: int, after: int, limit: int, status: str | None = None, text: str | None = None
    ) -> list[Subscriber]:
        conditions = [subscribers.c.list_id == list_id, subscribers.c.id > after]
        if status:
            conditions.append(subscribers.c.status == status)
        if text:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            conditions.append(
                sa.or_(
                    subscribers.c.email.ilike(pattern, escape="\\"),
                    subscribers.c.first_name.ilike(pattern, escape="\\"),
                    subscribers.c.last_name.ilike(pattern, escape="\\"),
                )
            )
        # Keyset, constant cost per page however deep the client pages, unlike OFFSET. Without a
        # status: Index Scan using ix_subscribers_list_id_id (list_id = ?, id > ?). With one: Index
        # Scan using ix_subscribers_list_status_id (list_id = ?, status = ?, id > ?), so a rare
        # status in a 1M list is a short range, not a walk over the list. `q` is a Filter on that
        # range: a page costs the rows walked until it is full, so a common term is as fast as no
        # filter and a term matching nothing walks the whole list (~1M rows, under a second). A
        # pg_trgm GIN index would make every such search an index lookup, but it costs ~40 index
        # entries per subscriber on every insert (a million-row COPY 2.8x slower) and, measured at
        # 1M, barely helps: addresses share their trigrams (docs/decisions/0022).
        statement = sa.select(subscribers).where(*conditions).order_by(subscribers.c.id).limit(limit + 1)
        return [_subscriber(row) for row in await self.session.execute(statement)]

    async def update(self, subscriber: Subscriber, **changes: Any) -> bool:
        """False when the new email is already on the list."""
        return await _update(self.session, subscribers, subscriber, "uq_subscribers_list_email", changes)

    async def delete(self, subscriber: Subscriber) -> None:
        await self.session.execute(sa.delete(subscribers).where(subscribers.c.id == subscriber.id))

    async def lock_in_account(self, account_id: str, subscriber_id: int) -> Subscriber | None:
        """Locked: of two concurrent unsubscribes, the second sees the first's status change."""
        statement = (
            sa.select(subscribers)
            .where(subscribers.c.id == subscriber_id, subscribers.c.account_id == account_id)
            .with_for_update()
        )
        row = (await self.session.execute(statement)).first()
        return _subscriber(row) if row else None

    async def max_id(self, list_id: int) -> int:
        """The newest subscriber id of the list (any status): the upper bound of a recipients snapshot."""
        statement = sa.select(sa.func.coalesce(sa.func.max(subscribers.c.id), 0)).where(
            subscribers.c.list_id == list_id
        )
        return (await self.session.execute(statement)).scalar_one()

    async def recipients(self, list_id: int, after: int, up_to: int, limit: int) -> list[RecipientRecord]:
        # Range scan of ix_subscribers_list_status_id (list_id, 'subscribed', id > after); `id <= up_to`
        # pins the snapshot taken on the first page, so subscribers added during a send are not
        # picked up half-way. An address the account suppressed (a bounce on any list) is skipped:
        # one primary-key probe of `suppressions` per row, an anti-join.
        suppressed = sa.exists().where(
            suppressions.c.account_id == subscribers.c.account_id, suppressions.c.email == subscribers.c.email
        )
        statement = (
            sa.select(
                subscribers.c.id,
                subscribers.c.email,
                subscribers.c.first_name,
                subscribers.c.last_name,
                subscribers.c.attributes,
            )
            .where(
                subscribers.c.list_id == list_id,
                subscribers.c.status == "subscribed",
                subscribers.c.id > after,
                subscribers.c.id <= up_to,
                ~suppressed,
            )
            .order_by(subscribers.c.id)
            .limit(limit + 1)
        )
        return [RecipientRecord(**row._mapping) for row in await self.session.execute(statement)]

    async def attribute_keys(self, list_id: int, limit: int) -> list[str]:
        """The attribute names used on the list, sorted; one pass over the list (an export's header)."""
        keys = sa.func.jsonb_object_keys(subscribers.c.attributes).label("key")
        inner = sa.select(keys).where(subscribers.c.list_id == list_id).subquery()
        statement = sa.select(inner.c.key).distinct().order_by(inner.c.key).limit(limit)
        return list((await self.session.execute(statement)).scalars())

    async def set_status_by_email(
        self, account_id: str, email: str, status: str, *, only_from: tuple[str, ...]
    ) -> list[Subscriber]:
        """Every subscriber of the address on the account's lists whose status is one of `only_from`
        now has `status`; returns them. Each list's (list_id, email) unique index finds its row."""
        account_lists = sa.select(lists.c.id).where(lists.c.account_id == account_id).scalar_subquery()
        statement = (
            sa.update(subscribers)
            .where(
                subscribers.c.list_id.in_(account_lists),
                subscribers.c.email == email,
                subscribers.c.status.in_(only_from),
            )
            .values(status=status, updated_at=sa.func.now())
            .returning(*subscribers.c)
        )
        return [_subscriber(row) for row in await self.session.execute(statement)]
