"""How services trust the gateway and call each other.

The gateway authenticates the user and forwards the request with the account id in
`X-Mailstify-Account`; internal services accept that header only alongside the shared
`X-Mailstify-Internal-Token`, so nothing else on the network can impersonate an account.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import httpx
from fastapi import Depends, Header, Request

from .errors import Forbidden, NotFound, ServiceError, Unauthorized, UpstreamUnavailable

ACCOUNT_HEADER = "X-Mailstify-Account"
TOKEN_HEADER = "X-Mailstify-Internal-Token"
# Set by the gateway on every request it relays from the public edge (whatever the path became on
# the way); a route meant only for service-to-service calls refuses a request that carries it.
PUBLIC_HEADER = "X-Mailstify-Public"


def _expected_token(request: Request) -> str:
    return request.app.state.settings.internal_token.get_secret_value()


async def require_internal_caller(
    request: Request, token: Annotated[str | None, Header(alias=TOKEN_HEADER)] = None
) -> None:
    if token is None or not hmac.compare_digest(token, _expected_token(request)):
        raise Unauthorized("internal endpoint: missing or wrong internal token")


async def require_account(
    _: Annotated[None, Depends(require_internal_caller)],
    account: Annotated[str | None, Header(alias=ACCOUNT_HEADER)] = None,
) -> str:
    if not account:
        raise Unauthorized("no account on the request")
    return account


async def require_not_public(
    _: Annotated[None, Depends(require_internal_caller)],
    public: Annotated[str | None, Header(alias=PUBLIC_HEADER, include_in_schema=False)] = None,
) -> None:
    """For internal-only routers: the internal token, and no sign the request came through the public edge."""
    if public is not None:
        raise Forbidden("internal endpoint: not reachable from the public API")


AccountId = Annotated[str, Depends(require_account)]
InternalCaller = Depends(require_internal_caller)
# `APIRouter(..., dependencies=[InternalOnly])` for routes other services call and users never do.
InternalOnly = Depends(require_not_public)


class InternalClient:
    """HTTP client for one internal service, presenting the internal token."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0):
        self._http = httpx.AsyncClient(base_url=base_url, headers={TOKEN_HEADER: token}, timeout=timeout)

    async def get_json(self, path: str, account_id: str, params: dict[str, Any] | None = None) -> Any:
        try:
            response = await self._http.get(path, params=params, headers={ACCOUNT_HEADER: account_id})
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"{self._http.base_url} unreachable: {exc}") from exc
        if response.status_code == 404:
            raise NotFound(response.json().get("detail", "not found"))
        if response.status_code >= 400:
            detail = response.json().get("detail", response.text) if response.content else response.reason_phrase
            error = ServiceError(str(detail))
            error.status_code = response.status_code if response.status_code < 500 else 502
            raise error
        return response.json()

    async def aclose(self) -> None:
        await self._http.aclose()
