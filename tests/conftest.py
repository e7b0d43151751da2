"""End-to-end fixtures: the whole platform (five services + NATS + PostgreSQL + SMTP inbox) started
once per session by `mailstify_stack`, driven only through the gateway's public API."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mailstify_devstack.inprocess import until
from mailstify_devstack.pytest_plugin import MailstifyStack

__all__ = ["Api", "mails_for", "report", "unique_subscribers", "until"]

log = logging.getLogger("mailstify.tests")


def mails_for(stack: MailstifyStack, tag: str) -> list[dict]:
    """What the dev inbox received for the recipients whose address contains `tag`."""
    return [m for m in stack.inbox.messages() if any(tag in rcpt for rcpt in m["rcpt_tos"])]


def report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    """Closing figures: in the test output with or without -s, and in the log of a failed test."""
    log.warning(line)
    with capsys.disabled():
        print(f"\n{line}")


class Api:
    """A signed-up account talking to the gateway with an API key."""

    def __init__(self, client: httpx.AsyncClient):
        self.client = client

    async def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = await self.client.request(method, f"/api/v1{path}", **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    async def new_list_with(self, subscribers: list[dict[str, str]]) -> tuple[dict, list[dict]]:
        mailing_list = await self.call("POST", "/lists", 201, json={"name": f"list {uuid.uuid4().hex[:6]}"})
        added = [
            await self.call("POST", f"/lists/{mailing_list['id']}/subscribers", 201, json=s) for s in subscribers
        ]
        return mailing_list, added

    async def new_campaign(self, list_id: str, **overrides: Any) -> dict:
        body = {
            "name": "Welcome",
            "subject": "Hello {{ subscriber.first_name }}",
            "list_id": list_id,
            "from_name": "Mailstify Team",
            "from_email": "team@mailstify.test",
            "body_html": "<p>Hi {{ subscriber.first_name }}, welcome aboard!</p>",
            **overrides,
        }
        return await self.call("POST", "/campaigns", 201, json=body)


@pytest.fixture
async def api(mailstify_stack) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=mailstify_stack.gateway_url, timeout=30) as anonymous:
        email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
        signup = await anonymous.post("/api/v1/auth/signup", json={"email": email, "password": "correct horse 1"})
        assert signup.status_code == 201, signup.text
        key = await anonymous.post(
            "/api/v1/api-keys", json={"name": "e2e"}, headers={"X-CSRF-Token": anonymous.cookies["mailstify_csrf"]}
        )
        assert key.status_code == 201, key.text
    async with httpx.AsyncClient(
        base_url=mailstify_stack.gateway_url, timeout=30, headers={"Authorization": f"Bearer {key.json()['key']}"}
    ) as client:
        yield Api(client)


def unique_subscribers(*first_names: str) -> list[dict[str, str]]:
    tag = uuid.uuid4().hex[:8]
    return [{"email": f"{name.lower()}.{tag}@example.com", "first_name": name} for name in first_names]
