"""What the gateway's use cases and entrypoints need from the outside world: the identity store
(PostgreSQL in `adapters/`) and the internal services behind the edge (HTTP in `adapters/`)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from mailstify_servicekit.ports import AbstractUnitOfWork

from ..domain.identities import Account, ApiKey, Session, User


class IdentityRepository(Protocol):
    async def add_account(self, account_id: str, name: str) -> Account: ...

    async def add_user(
        self, user_id: str, account_id: str, email: str, name: str | None, password_hash: str
    ) -> User | None:
        """The new user, or None when the email is taken."""
        ...

    async def user_by_email(self, email: str) -> User | None: ...

    async def user(self, user_id: str) -> User | None: ...

    async def account(self, account_id: str) -> Account | None: ...

    async def set_password_hash(self, user_id: str, password_hash: str) -> None: ...

    async def update_settings(
        self, account_id: str, user_id: str, name: str | None, from_name: str | None, from_email: str | None
    ) -> None:
        """The user's display name and the account's default sender (None clears each)."""
        ...

    async def add_session(
        self, session_id: str, user_id: str, account_id: str, csrf_token: str, expires_at: datetime
    ) -> None: ...

    async def live_session(self, session_id: str) -> Session | None: ...

    async def delete_session(self, session_id: str) -> None: ...

    async def delete_expired_sessions(self, user_id: str) -> None: ...

    async def add_api_key(self, key_id: str, account_id: str, name: str, key_hash: str, prefix: str) -> ApiKey: ...

    async def use_api_key(self, key_hash: str) -> str | None:
        """The account of the key with this digest, recording its use; None for an unknown key."""
        ...

    async def api_keys_of(self, account_id: str) -> list[ApiKey]: ...

    async def delete_api_key(self, account_id: str, key_id: str) -> bool: ...


class LoginFailures(Protocol):
    async def since(self, keys: Sequence[str], since: datetime) -> dict[str, list[datetime]]: ...

    async def record(self, keys: Sequence[str], at: datetime, forget_before: datetime) -> None: ...

    async def forget(self, key: str) -> None: ...


class GatewayUnitOfWork(AbstractUnitOfWork, Protocol):
    identities: IdentityRepository
    login_failures: LoginFailures


@dataclass
class UpstreamReply:
    """An internal service's answer, its body not read yet: relay `body`, then `close()` (also when
    the client went away first)."""

    status_code: int
    headers: list[tuple[str, str]]
    body: AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]]


class Upstreams(Protocol):
    """The internal services behind the public edge."""

    async def open(
        self,
        service: str,
        method: str,
        raw_path: bytes,
        raw_query: bytes,
        headers: list[tuple[str, str]],
        account_id: str,
        body: AsyncIterable[bytes] | None,
        event_stream: bool = False,
    ) -> UpstreamReply: ...

    async def openapi_documents(self) -> dict[str, dict[str, Any]]:
        """Each reachable service's own OpenAPI document; a service that is down is left out."""
        ...

    async def unsubscribe(self, account_id: str, subscriber_id: str, campaign_id: str) -> bool:
        """Ask the audience to unsubscribe the subscriber (idempotent); False when it has no such
        subscriber (deleted since the mail went out)."""
        ...
