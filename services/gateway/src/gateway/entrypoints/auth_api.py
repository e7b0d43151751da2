"""Sign-up, login, logout and "who am I", plus API key management."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mailstify_servicekit import Page
from mailstify_servicekit.text import NOT_BLANK, EmailAddress, RequestModel

from ..config import Settings
from ..domain.credentials import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from ..service_layer import handlers
from ..service_layer.handlers import MAX_NAME_LENGTH
from .dependencies import Dependencies, GatewayUow
from .security import Authenticated, clear_session_cookies, client_of, session_principal, set_session_cookies

router = APIRouter(prefix="/api/v1", tags=["auth"])

# Overrides the document-wide security requirement (see domain/openapi.py) for these operations.
NO_AUTHENTICATION = {"security": []}


class _Request(RequestModel):
    model_config = ConfigDict(extra="forbid")


# What handlers/credentials enforce, stated for the OpenAPI document.
Password = Annotated[
    str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH, description="8..1024 characters")
]
DisplayName = Annotated[str, Field(max_length=MAX_NAME_LENGTH, description="blank is stored as absent")]


class SignupIn(_Request):
    email: EmailAddress
    password: Password
    name: DisplayName | None = None


class LoginIn(_Request):
    email: str = Field(description="the address signed up with; a malformed one simply matches no account (401)")
    password: str


class UserOut(BaseModel):
    id: str
    email: str
    name: str | None


class AccountOut(BaseModel):
    id: str
    name: str


class SessionOut(BaseModel):
    user: UserOut | None = None  # None when the caller is an API key, which belongs to no user
    account: AccountOut


class ApiKeyIn(_Request):
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=NOT_BLANK)


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None


class IssuedApiKeyOut(ApiKeyOut):
    key: str


def _lifetime(settings: Settings) -> timedelta:
    return timedelta(hours=settings.session_lifetime_hours)


@router.post("/auth/signup", status_code=201, openapi_extra=NO_AUTHENTICATION)
async def signup(body: SignupIn, response: Response, dependencies: Dependencies, uow: GatewayUow) -> SessionOut:
    settings = dependencies.settings
    signed_in = await handlers.sign_up(uow, body.email, body.password, body.name, _lifetime(settings))
    set_session_cookies(response, settings, signed_in)
    return SessionOut(user=signed_in.user, account=signed_in.account)


@router.post("/auth/login", openapi_extra=NO_AUTHENTICATION)
async def login(
    body: LoginIn, request: Request, response: Response, dependencies: Dependencies, uow: GatewayUow
) -> SessionOut:
    """429 with Retry-After after too many failed attempts for the address or from the client."""
    settings = dependencies.settings
    signed_in = await handlers.log_in(uow, body.email, body.password, _lifetime(settings), client_of(request))
    set_session_cookies(response, settings, signed_in)
    return SessionOut(user=signed_in.user, account=signed_in.account)


@router.post("/auth/logout", status_code=204, openapi_extra=NO_AUTHENTICATION)
async def logout(request: Request, dependencies: Dependencies, uow: GatewayUow) -> Response:
    """Ends the browser session (CSRF-checked: otherwise any site could log the user out).
    Without a live session it only clears the cookies, still 204."""
    principal = await session_principal(request, dependencies)
    if principal is not None and principal.session_id:
        await handlers.log_out(uow, principal.session_id)
    response = Response(status_code=204)
    clear_session_cookies(response, dependencies.settings)
    return response


@router.get("/auth/me")
async def me(principal: Authenticated, uow: GatewayUow) -> SessionOut:
    return SessionOut(**await handlers.whoami(uow, principal))


@router.post("/api-keys", status_code=201, tags=["api keys"])
async def create_api_key(body: ApiKeyIn, principal: Authenticated, uow: GatewayUow) -> IssuedApiKeyOut:
    """The key is in this answer only: the gateway keeps just its digest."""
    return IssuedApiKeyOut(**await handlers.create_api_key(uow, principal, body.name))


@router.get("/api-keys", tags=["api keys"])
async def list_api_keys(principal: Authenticated, uow: GatewayUow) -> Page[ApiKeyOut]:
    # An account has a handful of keys: one page holds them all.
    return Page(items=[ApiKeyOut(**key) for key in await handlers.list_api_keys(uow, principal)])


@router.delete("/api-keys/{key_id}", status_code=204, tags=["api keys"])
async def delete_api_key(key_id: str, principal: Authenticated, uow: GatewayUow) -> Response:
    await handlers.delete_api_key(uow, principal, key_id)
    return Response(status_code=204)
