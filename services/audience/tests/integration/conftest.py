"""The audience service booted for real (its own fresh PostgreSQL database, NATS) and driven over
HTTP in-process, with the headers the gateway would add."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from audience.config import Settings
from audience.entrypoints.app import create_app
from mailstify_devstack.inprocess import running_service
from mailstify_servicekit import ACCOUNT_HEADER, TOKEN_HEADER

INTERNAL_TOKEN = "audience-test-internal-token"


class AccountClient:
    """Calls the audience as the gateway does for one account."""

    def __init__(self, http: httpx.AsyncClient, account_id: str):
        self.http = http
        self.account_id = account_id
        self.headers = {TOKEN_HEADER: INTERNAL_TOKEN, ACCOUNT_HEADER: account_id}

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, path, headers=self.headers, **kwargs)

    async def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = await self.request(method, path, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    async def new_list(self, name: str | None = None) -> dict:
        return await self.call("POST", "/api/v1/lists", 201, json={"name": name or f"list {uuid.uuid4().hex[:6]}"})

    async def subscribe(self, list_id: str, email: str, **fields: Any) -> dict:
        return await self.call("POST", f"/api/v1/lists/{list_id}/subscribers", 201, json={"email": email, **fields})


@pytest.fixture
async def audience_http(fresh_database: str, nats_server) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=fresh_database, nats_url=nats_server.url, internal_token=INTERNAL_TOKEN)
    async with running_service(create_app(settings)) as http:
        yield http


@pytest.fixture
def account(audience_http: httpx.AsyncClient) -> AccountClient:
    return AccountClient(audience_http, f"acct-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def other_account(audience_http: httpx.AsyncClient) -> AccountClient:
    return AccountClient(audience_http, f"acct-{uuid.uuid4().hex[:8]}")
