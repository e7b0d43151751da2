"""The web app's pages on the real gateway (PostgreSQL, NATS): sign-up, login, logout, CSRF on
cookie-authenticated form posts, API keys, and a campaign service that is down, then back."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlparse

import httpx
import pytest
from fastapi import FastAPI

from gateway.config import Settings
from gateway.entrypoints.app import create_app
from gateway.entrypoints.web.templating import FLASH_COOKIE
from mailstify_devstack.inprocess import running_service, serve_app

from .conftest import PASSWORD, RunningGateway, new_email

pytestmark = pytest.mark.integration

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


async def sign_up_in_browser(client: httpx.AsyncClient, email: str | None = None) -> httpx.Response:
    return await client.post("/signup", data={"email": email or new_email(), "password": PASSWORD, "name": "Ada"})


def csrf_field(page: httpx.Response) -> str:
    found = CSRF_FIELD.search(page.text)
    assert found, page.text
    return found.group(1)


async def test_anonymous_visitors_are_sent_to_the_login_page(anonymous: httpx.AsyncClient) -> None:
    home = await anonymous.get("/")
    assert home.status_code == 200 and 'href="/signup"' in home.text and "/api/docs" in home.text
    assert "script-src 'self'" in home.headers["content-security-policy"]

    page = await anonymous.get("/campaigns")
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/campaigns"


async def test_sign_up_logs_in_and_flashes_a_welcome(anonymous: httpx.AsyncClient) -> None:
    answer = await sign_up_in_browser(anonymous)
    assert answer.status_code == 303 and answer.headers["location"] == "/lists"
    assert anonymous.cookies.get("mailstify_session") and anonymous.cookies.get(FLASH_COOKIE)

    account = await anonymous.get("/account")
    assert account.status_code == 200
    assert "Welcome to Mailstify" in account.text  # the flash waited across the redirect
    assert "Welcome to Mailstify" not in (await anonymous.get("/account")).text  # and shows once


async def test_sign_up_errors_are_shown_at_the_field(anonymous: httpx.AsyncClient) -> None:
    short = await anonymous.post("/signup", data={"email": new_email(), "password": "short"})
    assert short.status_code == 422
    assert 'id="password-error"' in short.text and "at least 8 characters" in short.text

    email = new_email()
    await sign_up_in_browser(anonymous, email)
    anonymous.cookies.clear()
    taken = await sign_up_in_browser(anonymous, email)
    assert taken.status_code == 422 and 'id="email-error"' in taken.text and "already exists" in taken.text


async def test_login_logout_and_the_next_page(anonymous: httpx.AsyncClient) -> None:
    email = new_email()
    await sign_up_in_browser(anonymous, email)
    anonymous.cookies.clear()

    wrong = await anonymous.post("/login", data={"email": email, "password": "wrong password!"})
    assert wrong.status_code == 401 and "wrong email or password" in wrong.text

    logged_in = await anonymous.post("/login?next=/account", data={"email": email, "password": PASSWORD})
    assert logged_in.status_code == 303 and logged_in.headers["location"] == "/account"
    elsewhere = await anonymous.post("/login?next=//evil.example/", data={"email": email, "password": PASSWORD})
    assert elsewhere.headers["location"] == "/lists"  # no open redirect

    page = await anonymous.get("/account")
    refused = await anonymous.post("/logout")
    assert refused.status_code == 403 and "CSRF" in refused.text  # a cross-site form cannot log anyone out
    logged_out = await anonymous.post("/logout", data={"csrf_token": csrf_field(page)})
    assert logged_out.status_code == 303 and logged_out.headers["location"] == "/login"
    assert (await anonymous.get("/account")).status_code == 303


async def test_api_keys_are_shown_once_listed_and_revoked(anonymous: httpx.AsyncClient) -> None:
    await sign_up_in_browser(anonymous)
    page = await anonymous.get("/account")
    token = csrf_field(page)

    forged = await anonymous.post("/account/api-keys", data={"key_name": "cli", "csrf_token": "not-the-token"})
    assert forged.status_code == 403

    created = await anonymous.post("/account/api-keys", data={"key_name": "cli", "csrf_token": token})
    assert created.status_code == 200
    key = re.search(r'<code id="issued-key">(msk_[^<]+)</code>', created.text)
    assert key, created.text
    listed = await anonymous.get("/account")
    assert "cli" in listed.text and key.group(1) not in listed.text  # the whole key never again

    me = await anonymous.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {key.group(1)}"})
    assert me.status_code == 200
    key_id = re.search(r'action="/account/api-keys/([0-9a-f]+)/delete"', listed.text)
    assert key_id
    revoked = await anonymous.post(f"/account/api-keys/{key_id.group(1)}/delete", data={"csrf_token": token})
    assert revoked.status_code == 303
    refused = await anonymous.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {key.group(1)}"})
    assert refused.status_code == 401


async def test_htmx_posts_carry_the_token_in_the_header(anonymous: httpx.AsyncClient) -> None:
    await sign_up_in_browser(anonymous)
    page = await anonymous.get("/account")
    assert f'"X-CSRF-Token": "{csrf_field(page)}"' in page.text  # hx-headers on <body>
    answer = await anonymous.post(
        "/account/api-keys", data={"key_name": "via htmx"}, headers={"X-CSRF-Token": csrf_field(page)}
    )
    assert answer.status_code == 200 and "via htmx" in answer.text


def _campaign_stub() -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/campaigns")
    async def campaigns() -> dict:
        return {"items": [], "next_cursor": None}

    return app


async def test_a_campaign_service_that_is_down_is_named_and_recovers_without_a_restart(
    gateway: RunningGateway, anonymous: httpx.AsyncClient, dead_upstream_url: str
) -> None:
    await sign_up_in_browser(anonymous)

    down = await anonymous.get("/campaigns")
    assert down.status_code == 503
    assert "campaign service is unavailable" in down.text and "Temporarily unavailable" in down.text

    # The campaign service comes back on its address: the same gateway serves the page again.
    async with serve_app(_campaign_stub(), port=urlparse(dead_upstream_url).port or 0):
        back = await anonymous.get("/campaigns")
    assert back.status_code == 200 and "No campaign yet" in back.text


async def test_account_settings_keep_the_name_and_the_default_sender(anonymous: httpx.AsyncClient) -> None:
    await sign_up_in_browser(anonymous)
    token = csrf_field(await anonymous.get("/account"))

    bad = await anonymous.post(
        "/account", data={"name": "Ada", "default_from_email": "not an address", "csrf_token": token}
    )
    assert bad.status_code == 422 and 'id="default_from_email-error"' in bad.text

    fields = {"name": "Ada L.", "default_from_name": "Ada's Newsletter", "default_from_email": "News@Example.com"}
    saved = await anonymous.post("/account", data={**fields, "csrf_token": token})
    assert saved.status_code == 303
    page = await anonymous.get("/account")
    assert "Settings saved." in page.text
    assert 'value="Ada L."' in page.text and 'value="Ada&#39;s Newsletter"' in page.text
    assert 'value="news@example.com"' in page.text
    assert (await anonymous.get("/api/v1/auth/me")).json()["user"]["name"] == "Ada L."


def _hung_campaign_service() -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/campaigns")
    async def campaigns() -> dict:
        await asyncio.sleep(3)  # far beyond the page timeout below (and short: stopping the server waits for it)
        return {"items": []}

    return app


async def test_a_campaign_service_that_hangs_is_named_instead_of_waiting(
    fresh_database: str, nats_server, stub_upstream
) -> None:
    async with serve_app(_hung_campaign_service()) as hung_url:
        settings = Settings(
            database_url=fresh_database,
            nats_url=nats_server.url,
            internal_token="t",
            audience_url=stub_upstream.url,
            campaign_url=hung_url,
            page_timeout_seconds=0.5,
        )
        async with running_service(create_app(settings)) as client:
            await sign_up_in_browser(client)
            page = await client.get("/campaigns")
    assert page.status_code == 503 and "campaign service did not answer in time" in page.text
