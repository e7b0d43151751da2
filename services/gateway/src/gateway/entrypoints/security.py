"""Who is calling: an API key (`Authorization: Bearer msk_...`) or a browser session cookie, and
for cookie-authenticated state changes, the CSRF header (see docs/decisions/0004)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from mailstify_servicekit import Forbidden, Unauthorized

from ..config import Settings
from ..domain.credentials import Principal, csrf_satisfied
from ..service_layer import handlers
from ..service_layer.handlers import SignedIn
from .dependencies import Dependencies

SESSION_COOKIE = "mailstify_session"
CSRF_COOKIE = "mailstify_csrf"
CSRF_HEADER = "X-CSRF-Token"

AUTHENTICATION_REQUIRED = "authentication required"


def bearer_token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


async def session_principal(request: Request, dependencies: Dependencies) -> Principal | None:
    """The live session behind the request's cookie, if any, once its CSRF proof checks out."""
    session_token = request.cookies.get(SESSION_COOKIE)
    principal = None
    if session_token:
        principal = await handlers.principal_from_session(dependencies.uow(), session_token)
    if principal is not None and not csrf_satisfied(principal, request.method, request.headers.get(CSRF_HEADER)):
        raise Forbidden("missing or invalid CSRF token")
    return principal


async def authenticate(request: Request, dependencies: Dependencies) -> Principal:
    key = bearer_token(request)
    if key is not None:
        principal = await handlers.principal_from_api_key(dependencies.uow(), key)
        if principal is None:
            raise Unauthorized("invalid API key")
        return principal
    principal = await session_principal(request, dependencies)
    if principal is None:
        raise Unauthorized(AUTHENTICATION_REQUIRED)
    return principal


Authenticated = Annotated[Principal, Depends(authenticate)]


def set_session_cookies(response: Response, settings: Settings, signed_in: SignedIn) -> None:
    max_age = settings.session_lifetime_hours * 3600
    secure = settings.cookies_secure
    response.set_cookie(
        SESSION_COOKIE, signed_in.session_token, max_age=max_age, httponly=True, samesite="lax", secure=secure
    )
    # Readable by the web UI's scripts on purpose: they echo it in the X-CSRF-Token header.
    response.set_cookie(
        CSRF_COOKIE, signed_in.csrf_token, max_age=max_age, httponly=False, samesite="lax", secure=secure
    )


def clear_session_cookies(response: Response, settings: Settings) -> None:
    secure = settings.cookies_secure
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=secure)
    response.delete_cookie(CSRF_COOKIE, httponly=False, samesite="lax", secure=secure)


def client_of(request: Request) -> str:
    """Who is calling, for per-client limits: the peer address. Behind a reverse proxy, run uvicorn
    with --forwarded-allow-ips so that this is the original client, not the proxy."""
    return request.client.host if request.client else "unknown"
