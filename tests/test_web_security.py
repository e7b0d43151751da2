"""The web app's promises through the running platform, as a browser would talk to it: another
account's list, subscriber and campaign answer 404 in the pages as through the API, and a
cookie-authenticated form post without the session's CSRF token is refused with 403."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from .conftest import Api, unique_subscribers

pytestmark = pytest.mark.e2e

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
async def visitor(mailstify_stack) -> httpx.AsyncClient:
    """A browser session of a second account, signed up through the sign-up form."""
    async with httpx.AsyncClient(base_url=mailstify_stack.gateway_url, timeout=30) as client:
        email = f"visitor-{uuid.uuid4().hex[:8]}@example.com"
        answer = await client.post("/signup", data={"email": email, "password": "correct horse 1"})
        assert answer.status_code == 303, answer.text
        yield client


async def token_of(client: httpx.AsyncClient) -> str:
    found = CSRF_FIELD.search((await client.get("/lists")).text)
    assert found
    return found.group(1)


async def test_another_accounts_pages_are_not_found(api: Api, visitor: httpx.AsyncClient) -> None:
    mailing_list, (subscriber,) = await api.new_list_with(unique_subscribers("Ada"))
    campaign = await api.new_campaign(mailing_list["id"])
    list_id, campaign_id = mailing_list["id"], campaign["id"]
    token = await token_of(visitor)

    for path in (
        f"/lists/{list_id}",
        f"/lists/{list_id}/subscribers",
        f"/lists/{list_id}/subscribers/{subscriber['id']}/edit",
        f"/campaigns/{campaign_id}",
        f"/campaigns/{campaign_id}/edit",
        f"/campaigns/{campaign_id}/preview",
        f"/campaigns/{campaign_id}/send",
    ):
        answer = await visitor.get(path)
        assert answer.status_code == 404, (path, answer.status_code)
        assert "Not found" in answer.text and subscriber["email"] not in answer.text

    for path in (f"/lists/{list_id}/subscribers/{subscriber['id']}/delete", f"/campaigns/{campaign_id}/actions/send"):
        answer = await visitor.post(path, data={"csrf_token": token})
        assert answer.status_code == 404, (path, answer.status_code)
    # Nothing changed for the owner.
    assert (await api.call("GET", f"/campaigns/{campaign_id}", 200))["status"] == "draft"
    assert (await api.call("GET", f"/lists/{list_id}/subscribers/{subscriber['id']}", 200))["email"]


async def test_form_posts_without_the_csrf_token_are_refused(visitor: httpx.AsyncClient) -> None:
    token = await token_of(visitor)
    for data, headers in (
        ({"name": "Forged"}, {}),
        ({"name": "Forged", "csrf_token": "guessed"}, {}),
        ({"name": "Forged"}, {"X-CSRF-Token": "guessed", "HX-Request": "true"}),
    ):
        refused = await visitor.post("/lists", data=data, headers=headers)
        assert refused.status_code == 403, refused.text
        assert "CSRF" in refused.text
    assert "Forged" not in (await visitor.get("/lists")).text

    made = await visitor.post("/lists", data={"name": "Real", "csrf_token": token})
    assert made.status_code == 303 and made.headers["location"].startswith("/lists/")
