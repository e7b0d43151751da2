"""Requests for other services' routes reach them with the caller's account and the internal token,
and nothing the client forged."""

from __future__ import annotations

import httpx
import pytest

from .conftest import INTERNAL_TOKEN, StubUpstream, csrf, echoed

pytestmark = pytest.mark.integration

FORGED = {
    "X-Mailstify-Account": "someone-elses-account",
    "X-Mailstify-Internal-Token": "a-guess",
    "X-Unrelated": "dropped too",
}


async def test_a_proxied_request_keeps_method_path_query_and_body(
    browser: httpx.AsyncClient, stub_upstream: StubUpstream
) -> None:
    account_id = (await browser.get("/api/v1/auth/me")).json()["account"]["id"]
    answer = await browser.post(
        "/api/v1/lists/42/subscribers?answer_status=201&tag=a%20b&tag=c",
        content=b'{"email": "ann@example.com"}',
        headers={"Content-Type": "application/json", **csrf(browser), **FORGED},
    )
    assert answer.status_code == 201
    assert answer.headers["x-stub"] == "yes" and answer.headers["content-type"] == "application/json"
    assert "upstream_cookie" not in answer.headers.get("set-cookie", "")

    seen = echoed(answer)
    assert stub_upstream.seen == [seen]  # reached the service once: a retried POST would show twice
    assert seen["method"] == "POST" and seen["path"] == "/api/v1/lists/42/subscribers"
    assert seen["query"] == "answer_status=201&tag=a%20b&tag=c"
    assert seen["body"] == '{"email": "ann@example.com"}'
    headers = seen["headers"]
    assert headers["content-type"] == "application/json"
    assert headers["x-mailstify-internal-token"] == INTERNAL_TOKEN
    assert headers["x-mailstify-account"] == account_id
    for private in ("cookie", "authorization", "x-csrf-token", "x-unrelated"):
        assert private not in headers


async def test_bearer_requests_are_proxied_with_the_keys_account(
    browser: httpx.AsyncClient, stub_upstream: StubUpstream
) -> None:
    account_id = (await browser.get("/api/v1/auth/me")).json()["account"]["id"]
    key = (await browser.post("/api/v1/api-keys", json={"name": "k"}, headers=csrf(browser))).json()["key"]
    browser.cookies.clear()
    answer = await browser.patch(
        "/api/v1/imports/7", json={"x": 1}, headers={"Authorization": f"Bearer {key}", **FORGED}
    )
    assert answer.status_code == 200
    seen = echoed(answer)
    assert stub_upstream.seen == [seen]
    assert seen["method"] == "PATCH" and seen["path"] == "/api/v1/imports/7"
    assert seen["headers"]["x-mailstify-account"] == account_id
    assert "authorization" not in seen["headers"]


async def test_upstream_errors_and_empty_answers_pass_through(browser: httpx.AsyncClient) -> None:
    not_found = await browser.get("/api/v1/lists/1?answer_status=404")
    assert not_found.status_code == 404 and echoed(not_found)["path"] == "/api/v1/lists/1"
    gone = await browser.delete("/api/v1/lists/gone", headers=csrf(browser))
    assert gone.status_code == 204 and gone.content == b""


async def test_cookie_requests_through_the_proxy_need_csrf(
    browser: httpx.AsyncClient, stub_upstream: StubUpstream
) -> None:
    refused = await browser.post("/api/v1/lists", json={"name": "x"})
    assert refused.status_code == 403
    assert stub_upstream.seen == []


async def test_event_streams_are_relayed(browser: httpx.AsyncClient) -> None:
    async with browser.stream("GET", "/api/v1/lists/feed/events", headers={"Accept": "text/event-stream"}) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        assert answer.headers["cache-control"] == "no-cache"
        body = b"".join([chunk async for chunk in answer.aiter_bytes()]).decode()
    assert body.count("event: tick") == 3 and 'data: {"n": 2}' in body


async def test_an_unreachable_service_is_503(browser: httpx.AsyncClient) -> None:
    answer = await browser.get("/api/v1/campaigns")
    assert answer.status_code == 503 and answer.json() == {"detail": "campaign is unavailable"}
