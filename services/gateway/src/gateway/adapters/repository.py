"""Reading and writing accounts, users, sessions and API keys."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..domain.identities import Account, ApiKey, Session, User
from .tables import accounts, api_keys, sessions, users

# A Bearer key's last use is informational; writing it on every request would turn each API call
# into a write, so it is refreshed at most once per interval.
LAST_USED_RESOLUTION = sa.text("interval '1 minute'")


def _account(row: sa.Row) -> Account:
    return Account(
        id=row.id, name=row.name, default_from_name=row.default_from_name, default_from_email=row.default_from_email
    )


def _user(row: sa.Row) -> User:
    return User(
        id=row.id, account_id=row.account_id, email=row.email, name=row.name, password_hash=row.password_hash
    )


def _api_key(row: sa.Row) -> ApiKey:
    return ApiKey(
        id=row.id, name=row.name, prefix=row.prefix, created_at=row.created_at, last_used_at=row.last_used_at
    )


class SqlIdentityRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    # --- accounts and users ---------------------------------------------------------------------

    async def add_account(self, account_id: str, name: str) -> Account:
        statement = insert(accounts).values(id=account_id, name=name).returning(*accounts.c)
        return _account((await self.session.execute(statement)).one())

    async def add_user(
        self, user_id: str, account_id: str, email: str, name: str | None, password_hash: str
    ) -> User | None:
        """The new user row, or None when the email is taken (decided by the constraint, not a pre-check)."""
        statement = (
            insert(users)
            .values(id=user_id, account_id=account_id, email=email, name=name, password_hash=password_hash)
            .on_conflict_do_nothing(constraint="users_email_key")
            .returning(*users.c)
        )
        row = (await self.session.execute(statement)).first()
        return _user(row) if row else None

    async def user_by_email(self, email: str) -> User | None:
        row = (await self.session.execute(sa.select(users).where(users.c.email == email))).first()
        return _user(row) if row else None

    async def user(self, user_id: str) -> User | None:
        row = (await self.session.execute(sa.select(users).where(users.c.id == user_id))).first()
        return _user(row) if row else None

    async def account(self, account_id: str) -> Account | None:
        row = (await self.session.execute(sa.select(accounts).where(accounts.c.id == account_id))).first()
        return _account(row) if row else None

    async def update_settings(
        self, account_id: str, user_id: str, name: str | None, from_name: str | None, from_email: str | None
    ) -> None:
        await self.session.execute(sa.update(users).where(users.c.id == user_id).values(name=name))
        await self.session.execute(
            sa.update(accounts)
            .where(accounts.c.id == account_id)
            .values(default_from_name=from_name, default_from_email=from_email)
        )

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self.session.execute(sa.update(users).where(users.c.id == user_id).values(password_hash=password_hash))

    # --- sessions -------------------------------------------------------------------------------

    async def add_session(
        self, session_id: str, user_id: str, account_id: str, csrf_token: str, expires_at: datetime
    ) -> None:
        await self.session.execute(
            sa.insert(sessions).values(
                id=session_id, user_id=user_id, account_id=account_id, csrf_token=csrf_token, expires_at=expires_at
            )
        )

    async def live_session(self, session_id: str) -> Session | None:
        statement = sa.select(sessions).where(sessions.c.id == session_id, sessions.c.expires_at > sa.func.now())
        row = (await self.session.execute(statement)).first()
        if row is None:
            return None
        return Session(id=row.id, user_id=row.user_id, account_id=row.account_id, csrf_token=row.csrf_token)

    async def delete_session(self, session_id: str) -> None:
        await self.session.execute(sa.delete(sessions).where(sessions.c.id == session_id))

    async def delete_expired_sessions(self, user_id: str) -> None:
        await self.session.execute(
            sa.delete(sessions).where(sessions.c.user_id == user_id, sessions.c.expires_at <= sa.func.now())
        )

    # --- API keys -------------------------------------------------------------------------------

    async def add_api_key(self, key_id: str, account_id: str, name: str, key_hash: str, prefix: str) -> ApiKey:
        statement = (
            sa.insert(api_keys)
            .values(id=key_id, account_id=account_id, name=name, key_hash=key_hash, prefix=prefix)
            .returning(*api_keys.c)
        )
        return _api_key((await self.session.execute(statement)).one())

    async def use_api_key(self, key_hash: str) -> str | None:
        """The account of the key with this digest, recording its use; None for an unknown key."""
        # One round trip: the CTE finds the key, the UPDATE touches last_used_at only when it is
        # stale (see LAST_USED_RESOLUTION), and the outer SELECT answers either way.
        found = sa.select(api_keys.c.id, api_keys.c.account_id, api_keys.c.last_used_at).where(
            api_keys.c.key_hash == key_hash
        ).cte("found")
        touch = (
            sa.update(api_keys)
            .where(
                api_keys.c.id == found.c.id,
                sa.or_(found.c.last_used_at.is_(None), found.c.last_used_at < sa.func.now() - LAST_USED_RESOLUTION),
            )
            .values(last_used_at=sa.func.now())
            .returning(api_keys.c.id)
            .cte("touch")
        )
        statement = sa.select(found.c.account_id).add_cte(touch)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def api_keys_of(self, account_id: str) -> list[ApiKey]:
        statement = (
            sa.select(api_keys.c.id, api_keys.c.name, api_keys.c.prefix, api_keys.c.created_at, api_keys.c.last_used_at)
            .where(api_keys.c.account_id == account_id)
            .order_by(api_keys.c.created_at, api_keys.c.id)
        )
        return [_api_key(row) for row in await self.session.execute(statement)]

    async def delete_api_key(self, account_id: str, key_id: str) -> bool:
        statement = sa.delete(api_keys).where(api_keys.c.id == key_id, api_keys.c.account_id == account_id)
        return (await self.session.execute(statement)).rowcount > 0
