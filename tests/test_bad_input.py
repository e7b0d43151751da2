"""Bad input always gets a clear 4xx with a human `detail` — never a 500 — and leaves nothing stored
behind (API.md). A sweep of malformed requests through the gateway, across every routed service."""

from __future__ import annotations

import pytest

from .conftest import Api, unique_subscribers

pytestmark = pytest.mark.e2e

NOT_JSON = {"content": b"{not json", "headers": {"content-type": "application/json"}}


async def test_malformed_requests_get_a_clear_client_error(api: Api) -> None:
    mailing_list, (ada,) = await api.new_list_with(unique_subscribers("Ada"))
    campaign = await api.new_campaign(mailing_list["id"])
    list_path, campaign_path = f"/lists/{mailing_list['id']}", f"/campaigns/{campaign['id']}"
    fields = ("name", "subject", "list_id", "from_name", "from_email", "body_html")
    valid = {key: campaign[key] for key in fields}
    cases = [
        ("POST", "/lists", NOT_JSON),
        ("POST", "/lists", {"json": {"name": ""}}),
        ("POST", "/lists", {"json": {"name": ["not", "a", "string"]}}),
        ("GET", "/lists?limit=0", {}),
        ("GET", "/lists?limit=abc", {}),
        ("GET", "/lists?cursor=%%%garbage", {}),
        ("GET", "/lists/not-a-number", {}),
        ("GET", "/lists/99999999999999999999999", {}),
        ("POST", f"{list_path}/subscribers", NOT_JSON),
        ("POST", f"{list_path}/subscribers", {"json": {"email": "not an email"}}),
        ("POST", f"{list_path}/subscribers", {"json": {"email": "x@example.com", "attributes": "nope"}}),
        ("GET", f"{list_path}/subscribers?status=sideways", {}),
        ("POST", "/campaigns", NOT_JSON),
        ("POST", "/campaigns", {"json": {"name": "only a name"}}),
        ("POST", "/campaigns", {"json": {**valid, "list_id": "no-such-list"}}),
        ("POST", "/campaigns", {"json": {**valid, "from_email": "not-an-address"}}),
        ("POST", "/campaigns", {"json": {**valid, "body_html": "<p>{{ subscriber.first_name </p>"}}),
        ("GET", "/campaigns?cursor=bogus", {}),
        ("GET", "/campaigns/does-not-exist", {}),
        ("POST", f"{campaign_path}/send", NOT_JSON),
        ("POST", f"{campaign_path}/send", {"json": {"send_at": "tomorrow-ish"}}),
        ("PATCH", campaign_path, {"json": {"subject": 42}}),
        # A line break in a header field would be header injection.
        ("POST", "/campaigns", {"json": {**valid, "subject": "Hi\r\nBcc: victim@example.com"}}),
        ("PATCH", campaign_path, {"json": {"from_name": "Team\nBcc: victim@example.com"}}),
        ("PATCH", campaign_path, {"json": {"reply_to": "ops@example.com\r\nBcc: victim@example.com"}}),
        ("POST", f"{campaign_path}/send", {"json": {"send_at": "2001-01-01T00:00:00Z"}}),
        ("POST", f"{campaign_path}/pause", {}),
        ("POST", f"{campaign_path}/test", {"json": {"emails": []}}),
        ("POST", f"{campaign_path}/test", {"json": {"emails": ["a@example.com"], "subscriber_id": "nobody"}}),
        ("POST", f"{campaign_path}/retry-failed", {}),
        ("GET", f"{campaign_path}/deliveries?limit=-5", {}),
    ]
    for method, path, kwargs in cases:
        response = await api.client.request(method, f"/api/v1{path}", **kwargs)
        assert 400 <= response.status_code < 500, f"{method} {path}: {response.status_code} {response.text}"
        detail = response.json().get("detail")
        assert isinstance(detail, str) and detail, f"{method} {path}: no human detail in {response.text}"

    # Nothing the refused requests carried was stored.
    lists = await api.call("GET", "/lists?limit=100", 200)
    assert [item["id"] for item in lists["items"]] == [mailing_list["id"]]
    campaigns = await api.call("GET", "/campaigns?limit=100", 200)
    assert [item["id"] for item in campaigns["items"]] == [campaign["id"]]
    assert (await api.call("GET", campaign_path, 200))["status"] == "draft"
    members = await api.call("GET", f"{list_path}/subscribers?limit=100", 200)
    assert [item["email"] for item in members["items"]] == [ada["email"]]


async def test_another_accounts_resources_answer_404(api: Api, mailstify_stack) -> None:
    import httpx

    mailing_list, subscribers = await api.new_list_with(unique_subscribers("Ada"))
    campaign = await api.new_campaign(mailing_list["id"])
    async with httpx.AsyncClient(base_url=mailstify_stack.gateway_url, timeout=30) as stranger:
        signup = await stranger.post(
            "/api/v1/auth/signup", json={"email": f"stranger-{campaign['id'][:8]}@example.com", "password": "12345678x"}
        )
        assert signup.status_code == 201, signup.text
        csrf = {"X-CSRF-Token": stranger.cookies["mailstify_csrf"]}
        for method, path in [
            ("GET", f"/api/v1/lists/{mailing_list['id']}"),
            ("GET", f"/api/v1/lists/{mailing_list['id']}/subscribers"),
            ("DELETE", f"/api/v1/lists/{mailing_list['id']}/subscribers/{subscribers[0]['id']}"),
            ("GET", f"/api/v1/campaigns/{campaign['id']}"),
            ("POST", f"/api/v1/campaigns/{campaign['id']}/send"),
            ("DELETE", f"/api/v1/campaigns/{campaign['id']}"),
        ]:
            response = await stranger.request(method, path, headers=csrf)
            assert response.status_code == 404, f"{method} {path}: {response.status_code} {response.text}"
    # The stranger's DELETE and send changed nothing.
    assert (await api.call("GET", f"/campaigns/{campaign['id']}", 200))["status"] == "draft"
    members = await api.call("GET", f"/lists/{mailing_list['id']}/subscribers", 200)
    assert [(item["id"], item["status"]) for item in members["items"]] == [(subscribers[0]["id"], "subscribed")]
