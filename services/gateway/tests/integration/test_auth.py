"""Sign-up, login, sessions, CSRF and API keys at the edge, against real PostgreSQL."""

from __future__ import annotations

import uuid

import httpx
import pytest

from .conftest import PASSWORD, RunningGateway, csrf, new_email, sign_up

pytestmark = pytest.mark.integration


async def test_signup_creates_a_user_an_account_and_a_session(anonymous: httpx.AsyncClient) -> None:
    email = new_email()
    answer = await anonymous.post(
        "/api/v1/auth/signup", json={"email": f"  {email.upper()} ", "password": PASSWORD, "name": "Ada"}
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["user"]["email"] == email and body["user"]["name"] == "Ada"
    assert body["account"]["id"] and body["user"]["id"] and body["account"]["id"] != body["user"]["id"]

    cookies = {c.split("=", 1)[0]: c for c in answer.headers.get_list("set-cookie")}
    assert "HttpOnly" in cookies["mailstify_session"] and "SameSite=lax" in cookies["mailstify_session"]
    assert "HttpOnly" not in cookies["mailstify_csrf"]  # the web UI reads it to echo it back
    assert "Secure" not in cookies["mailstify_session"]  # the public URL is plain http here

    me = await anonymous.get("/api/v1/auth/me")
    assert me.status_code == 200 and me.json() == body


async def test_an_email_signs_up_once_whatever_its_case(anonymous: httpx.AsyncClient) -> None:
    email = new_email()
    await sign_up(anonymous, email)
    again = await anonymous.post("/api/v1/auth/signup", json={"email": email.upper(), "password": PASSWORD})
    assert again.status_code == 409 and email in again.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": PASSWORD},
        {"email": "ok@example.com", "password": "short"},
        {"email": "ok@example.com"},
        {"password": PASSWORD},
    ],
)
async def test_bad_signups_are_422_with_a_reason(anonymous: httpx.AsyncClient, body: dict) -> None:
    answer = await anonymous.post("/api/v1/auth/signup", json=body)
    assert answer.status_code == 422 and answer.json()["detail"]


async def test_login_checks_the_password(anonymous: httpx.AsyncClient) -> None:
    email = new_email()
    signed_up = await sign_up(anonymous, email)
    anonymous.cookies.clear()

    for wrong in ({"email": email, "password": "wrong horse battery"}, {"email": new_email(), "password": PASSWORD}):
        refused = await anonymous.post("/api/v1/auth/login", json=wrong)
        assert refused.status_code == 401
        assert refused.json() == {"detail": "wrong email or password"}
        assert "set-cookie" not in refused.headers

    logged_in = await anonymous.post("/api/v1/auth/login", json={"email": email.title(), "password": PASSWORD})
    assert logged_in.status_code == 200 and logged_in.json() == signed_up
    assert (await anonymous.get("/api/v1/auth/me")).json() == signed_up


async def test_repeated_failed_logins_are_throttled_with_a_retry_time(anonymous: httpx.AsyncClient) -> None:
    email, password = f"throttled-{uuid.uuid4().hex[:8]}@example.com", "a long enough password"
    assert (await anonymous.post("/api/v1/auth/signup", json={"email": email, "password": password})).status_code == 201
    for _ in range(10):
        wrong = await anonymous.post("/api/v1/auth/login", json={"email": email, "password": "guess"})
        assert wrong.status_code == 401, wrong.text
    # Even the right password waits now: the guesses, not the guesser, decide.
    throttled = await anonymous.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert throttled.status_code == 429, throttled.text
    seconds = int(throttled.headers["retry-after"])
    assert 0 < seconds <= 15 * 60 and throttled.json()["retry_after_seconds"] == seconds
    assert throttled.json()["detail"] == f"too many failed logins; try again in {seconds} seconds"


async def test_logout_ends_the_session(browser: httpx.AsyncClient) -> None:
    session_cookie = browser.cookies["mailstify_session"]
    refused = await browser.post("/api/v1/auth/logout")
    assert refused.status_code == 403  # a cross-site form must not log anyone out

    answer = await browser.post("/api/v1/auth/logout", headers=csrf(browser))
    assert answer.status_code == 204
    assert "mailstify_session" not in browser.cookies
    # The old cookie is worthless even if someone kept it.
    replay = await browser.get("/api/v1/auth/me", headers={"Cookie": f"mailstify_session={session_cookie}"})
    assert replay.status_code == 401


async def test_unauthenticated_requests_are_401(anonymous: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/v1/auth/me"),
        ("GET", "/api/v1/api-keys"),
        ("GET", "/api/v1/lists"),
        ("POST", "/api/v1/campaigns"),
    ]:
        answer = await anonymous.request(method, path)
        assert answer.status_code == 401, f"{method} {path}"
        assert answer.json() == {"detail": "authentication required"}
    forged = await anonymous.get("/api/v1/auth/me", headers={"Cookie": "mailstify_session=made-up"})
    assert forged.status_code == 401


async def test_cookie_state_changes_need_the_csrf_header(browser: httpx.AsyncClient) -> None:
    missing = await browser.post("/api/v1/api-keys", json={"name": "ci"})
    assert missing.status_code == 403 and missing.json() == {"detail": "missing or invalid CSRF token"}
    wrong = await browser.post("/api/v1/api-keys", json={"name": "ci"}, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    right = await browser.post("/api/v1/api-keys", json={"name": "ci"}, headers=csrf(browser))
    assert right.status_code == 201, right.text
    # Reads need no proof.
    assert (await browser.get("/api/v1/api-keys")).status_code == 200


async def test_api_keys_authenticate_without_csrf_and_can_be_revoked(
    browser: httpx.AsyncClient, gateway: RunningGateway
) -> None:
    account = (await browser.get("/api/v1/auth/me")).json()["account"]
    issued = (await browser.post("/api/v1/api-keys", json={"name": "deploy"}, headers=csrf(browser))).json()
    assert issued["key"].startswith("msk_") and issued["name"] == "deploy"
    bearer = {"Authorization": f"Bearer {issued['key']}"}

    async with gateway.new_client(headers=bearer) as api:
        me = await api.get("/api/v1/auth/me")
        assert me.status_code == 200 and me.json() == {"user": None, "account": account}
        second = await api.post("/api/v1/api-keys", json={"name": "second"})  # no CSRF header needed
        assert second.status_code == 201

        listed = (await api.get("/api/v1/api-keys")).json()
        assert [k["name"] for k in listed["items"]] == ["deploy", "second"]
        assert all("key" not in k and k["prefix"].startswith("msk_") for k in listed["items"])
        assert listed["items"][0]["last_used_at"] is not None

        assert (await api.delete(f"/api/v1/api-keys/{second.json()['id']}")).status_code == 204
        assert (await api.delete(f"/api/v1/api-keys/{second.json()['id']}")).status_code == 404
        assert (await api.delete(f"/api/v1/api-keys/{issued['id']}")).status_code == 204
        revoked = await api.get("/api/v1/auth/me")
        assert revoked.status_code == 401 and revoked.json() == {"detail": "invalid API key"}


async def test_api_keys_of_another_account_cannot_be_deleted(
    browser: httpx.AsyncClient, gateway: RunningGateway
) -> None:
    issued = (await browser.post("/api/v1/api-keys", json={"name": "mine"}, headers=csrf(browser))).json()
    async with gateway.new_client() as other:
        await sign_up(other)
        answer = await other.delete(f"/api/v1/api-keys/{issued['id']}", headers=csrf(other))
        assert answer.status_code == 404
    assert [k["id"] for k in (await browser.get("/api/v1/api-keys")).json()["items"]] == [issued["id"]]


async def test_landing_page_and_api_docs(anonymous: httpx.AsyncClient) -> None:
    landing = await anonymous.get("/")
    assert landing.status_code == 200 and "/signup" in landing.text and "/api/docs" in landing.text
    assert (await anonymous.get("/api/docs")).status_code == 200
    schema = (await anonymous.get("/api/openapi.json")).json()
    assert "/api/v1/auth/signup" in schema["paths"] and "/api/v1/api-keys" in schema["paths"]
    assert schema["paths"]["/api/v1/auth/login"]["post"]["security"] == []
    # The public routes of the services behind the gateway (here: the stub's) are described too.
    assert "/api/v1/lists/feed/events" in schema["paths"]
    # campaign is down: its routes are left out, no error (the gateway's own event stream stays)
    assert [path for path in schema["paths"] if path.startswith("/api/v1/campaigns")] == [
        "/api/v1/campaigns/{campaign_id}/events"
    ]
