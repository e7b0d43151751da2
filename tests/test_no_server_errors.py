"""The two 500s the API fuzz found, pinned: text PostgreSQL cannot store, and a request the proxy
relayed with a body it did not forward (a wrong method, with a JSON body, on an existing path)."""

from __future__ import annotations

import pytest

from .conftest import Api, unique_subscribers

pytestmark = pytest.mark.e2e


async def test_nul_characters_are_refused_wherever_user_text_enters(api: Api) -> None:
    mailing_list, _ = await api.new_list_with(unique_subscribers("Ada"))
    subscribers = f"/lists/{mailing_list['id']}/subscribers"
    cases = [
        ("POST", "/lists", {"json": {"name": "a\u0000b"}}, 422),
        ("POST", subscribers, {"json": {"email": "nul@example.com", "first_name": "a\u0000"}}, 422),
        ("POST", subscribers, {"json": {"email": "nul@example.com", "attributes": {"k": ["\u0000"]}}}, 422),
        ("POST", subscribers, {"json": {"email": "nul@example.com", "attributes": {"k\u0000": 1}}}, 422),
        ("POST", subscribers, {"content": b'{"email": "nul@example.com", "first_name": "\\ud800"}',
                               "headers": {"content-type": "application/json"}}, 422),
        ("GET", f"{subscribers}?q=a%00b", {}, 400),
        ("GET", "/lists/1%00", {}, 400),
        ("POST", "/campaigns", {"json": {"name": "\u0000"}}, 422),
        ("POST", "/api-keys", {"json": {"name": "k\u0000"}}, 422),
    ]
    for method, path, kwargs, expected in cases:
        response = await api.client.request(method, f"/api/v1{path}", **kwargs)
        assert response.status_code == expected, f"{method} {path}: {response.status_code} {response.text}"
        assert response.json()["detail"], response.text


async def test_a_wrong_method_with_a_body_answers_405(api: Api) -> None:
    mailing_list, _ = await api.new_list_with(unique_subscribers("Ada"))
    campaign = await api.new_campaign(mailing_list["id"])
    for method in ("GET", "PUT", "DELETE"):
        response = await api.client.request(method, f"/api/v1/campaigns/{campaign['id']}/send", json={})
        assert response.status_code == 405, f"{method}: {response.status_code} {response.text}"
        assert response.headers["allow"] == "POST"
    # A GET with a body is still relayed whole.
    response = await api.client.request("GET", f"/api/v1/campaigns/{campaign['id']}", json={})
    assert response.status_code == 200, response.text
