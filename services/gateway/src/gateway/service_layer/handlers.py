"""The gateway's use cases: signing up, logging in and out, recognising who a request is from,
and managing API keys."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from dataclasses import asdict
from typing import Any

from mailstify_servicekit.emails import normalise_email
from mailstify_servicekit.errors import Conflict, InvalidInput, NotFound, TooManyRequests, Unauthorized

from mailstify_contracts.unsubscribe import verify_unsubscribe_token

from ..domain import credentials
from ..domain.credentials import Principal
from ..domain.identities import Account, User
from ..domain.login_throttle import LoginThrottle
from .ports import GatewayUnitOfWork, Upstreams

WRONG_CREDENTIALS = "wrong email or password"
DEFAULT_LOGIN_THROTTLE = LoginThrottle()
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class SignedIn:
    """A new browser session: the identities to show and the secrets to put in cookies."""

    user: dict[str, Any]
    account: dict[str, Any]
    session_token: str
    csrf_token: str
    expires_at: datetime


def _clean_name(value: str | None, what: str) -> str | None:
    cleaned = (value or "").strip()
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidInput(f"{what} must be at most {MAX_NAME_LENGTH} characters")
    return cleaned or None


def _user_view(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "name": user.name}


def _account_view(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "default_from_name": account.default_from_name,
        "default_from_email": account.default_from_email,
    }


async def _open_session(uow: GatewayUnitOfWork, user: User, lifetime: timedelta) -> tuple[str, str, datetime]:
    token, csrf_token = credentials.new_token(), credentials.new_token()
    expires_at = datetime.now(UTC) + lifetime
    await uow.identities.add_session(credentials.digest(token), user.id, user.account_id, csrf_token, expires_at)
    return token, csrf_token, expires_at


async def sign_up(
    uow: GatewayUnitOfWork, email: str, password: str, name: str | None, session_lifetime: timedelta
) -> SignedIn:
    email = normalise_email(email)
    credentials.check_password_rules(password)
    name = _clean_name(name, "name")
    # argon2 is deliberately slow (tens of ms): off the event loop, and before the transaction opens.
    password_hash = await asyncio.to_thread(credentials.hash_password, password)
    async with uow:
        account = await uow.identities.add_account(credentials.new_id(), name or email)
        user = await uow.identities.add_user(credentials.new_id(), account.id, email, name, password_hash)
        if user is None:
            raise Conflict(f"an account with the email {email} already exists")
        token, csrf_token, expires_at = await _open_session(uow, user, session_lifetime)
        await uow.commit()
    return SignedIn(_user_view(user), _account_view(account), token, csrf_token, expires_at)


async def log_in(
    uow: GatewayUnitOfWork,
    email: str,
    password: str,
    session_lifetime: timedelta,
    client: str = "unknown",
    throttle: LoginThrottle = DEFAULT_LOGIN_THROTTLE,
) -> SignedIn:
    """A new session for the right email and password. Failures are counted per address and per
    `client` (the caller's IP): past the throttle's limits, attempts answer 429 before any password
    is checked, until enough failures have aged out of the window."""
    # No syntax check here: a malformed address is just one that has no account (401, not 422).
    email = email.strip().lower()
    keys = [throttle.address_key(email), throttle.client_key(client)]
    now = datetime.now(UTC)
    async with uow:
        user = await uow.identities.user_by_email(email)
        failures = await uow.login_failures.since(keys, now - throttle.window)
    waits = [wait for key in keys if (wait := throttle.wait_seconds(key, failures[key], now)) is not None]
    if waits:
        raise TooManyRequests(f"too many failed logins; try again in {max(waits)} seconds", max(waits))
    matches = len(password) <= credentials.MAX_PASSWORD_LENGTH and await asyncio.to_thread(
        credentials.verify_password, user.password_hash if user else None, password
    )
    if user is None or not matches:
        async with uow:
            await uow.login_failures.record(keys, now, forget_before=now - throttle.window)
            await uow.commit()
        raise Unauthorized(WRONG_CREDENTIALS)
    rehashed = None
    if credentials.password_needs_rehash(user.password_hash):
        rehashed = await asyncio.to_thread(credentials.hash_password, password)
    async with uow:
        if rehashed:
            await uow.identities.set_password_hash(user.id, rehashed)
        await uow.identities.delete_expired_sessions(user.id)
        account = await uow.identities.account(user.account_id)
        if account is None:  # deleted between the two transactions
            raise Unauthorized(WRONG_CREDENTIALS)
        token, csrf_token, expires_at = await _open_session(uow, user, session_lifetime)
        # The owner got in: earlier guesses at this address no longer count against them.
        await uow.login_failures.forget(throttle.address_key(email))
        await uow.commit()
    return SignedIn(_user_view(user), _account_view(account), token, csrf_token, expires_at)


async def log_out(uow: GatewayUnitOfWork, session_id: str) -> None:
    async with uow:
        await uow.identities.delete_session(session_id)
        await uow.commit()


async def principal_from_session(uow: GatewayUnitOfWork, session_token: str) -> Principal | None:
    async with uow:
        session = await uow.identities.live_session(credentials.digest(session_token))
    if session is None:
        return None
    return Principal(
        account_id=session.account_id,
        via="session",
        user_id=session.user_id,
        session_id=session.id,
        csrf_token=session.csrf_token,
    )


async def principal_from_api_key(uow: GatewayUnitOfWork, key: str) -> Principal | None:
    if not credentials.looks_like_api_key(key):
        return None
    async with uow:
        account_id = await uow.identities.use_api_key(credentials.digest(key))
        await uow.commit()
    return Principal(account_id=account_id, via="api_key") if account_id else None


async def whoami(uow: GatewayUnitOfWork, principal: Principal) -> dict[str, Any]:
    async with uow:
        account = await uow.identities.account(principal.account_id)
        user = await uow.identities.user(principal.user_id) if principal.user_id else None
    if account is None:
        raise Unauthorized("authentication required")
    return {"user": _user_view(user) if user else None, "account": _account_view(account)}


async def update_settings(
    uow: GatewayUnitOfWork, principal: Principal, name: str | None, from_name: str | None, from_email: str | None
) -> None:
    """Account settings: the user's name and the default sender of new campaigns (blank: none)."""
    if principal.user_id is None:
        raise Unauthorized("account settings need a signed-in user")
    name, from_name = _clean_name(name, "name"), _clean_name(from_name, "from_name")
    from_email = normalise_email(from_email) if (from_email or "").strip() else None
    async with uow:
        await uow.identities.update_settings(principal.account_id, principal.user_id, name, from_name, from_email)
        await uow.commit()


# --- API keys ------------------------------------------------------------------------------------


async def create_api_key(uow: GatewayUnitOfWork, principal: Principal, name: str) -> dict[str, Any]:
    cleaned = _clean_name(name, "name")
    if cleaned is None:
        raise InvalidInput("API key name must not be empty")
    issued = credentials.issue_api_key()
    async with uow:
        row = await uow.identities.add_api_key(
            credentials.new_id(), principal.account_id, cleaned, issued.key_hash, issued.prefix
        )
        await uow.commit()
    return {"id": row.id, "name": row.name, "prefix": row.prefix, "created_at": row.created_at, "key": issued.key}


async def list_api_keys(uow: GatewayUnitOfWork, principal: Principal) -> list[dict[str, Any]]:
    async with uow:
        rows = await uow.identities.api_keys_of(principal.account_id)
    return [asdict(row) for row in rows]


async def delete_api_key(uow: GatewayUnitOfWork, principal: Principal, key_id: str) -> None:
    async with uow:
        if not await uow.identities.delete_api_key(principal.account_id, key_id):
            raise NotFound("API key not found")
        await uow.commit()


# --- unsubscribe links (public, no auth: the signed token is the authority) ---------------------


async def unsubscribe(upstreams: Upstreams, secret_key: bytes, token: str) -> bool:
    """Unsubscribe whoever the token was issued to; False when the token is malformed or forged
    (the caller answers the same 404 for every such token). A subscriber deleted since the mail
    went out gets no more mail either: that counts as done."""
    target = verify_unsubscribe_token(secret_key, token)
    if target is None:
        return False
    await upstreams.unsubscribe(target.account_id, target.subscriber_id, target.campaign_id)
    return True


def unsubscribe_token_is_valid(secret_key: bytes, token: str) -> bool:
    return verify_unsubscribe_token(secret_key, token) is not None
