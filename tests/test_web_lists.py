"""The list page through the running platform, as htmx drives it: search, status filter, paging,
inline edit and remove, each answering the subscribers partial with its flash."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from .conftest import Api

pytestmark = pytest.mark.e2e

ROW = re.compile(r'data-email="([^"]+)"')


@dataclass
class Owner:
    browser: httpx.AsyncClient  # the session cookie, as a browser holds it
    api: Api  # the same account through an API key, to fill it with data


@pytest.fixture
async def owner(mailstify_stack) -> AsyncIterator[Owner]:
    async with httpx.AsyncClient(base_url=mailstify_stack.gateway_url, timeout=30) as browser:
        email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
        assert (await browser.post("/signup", data={"email": email, "password": "correct horse 1"})).status_code == 303
        key = (await browser.post("/api/v1/api-keys", json={"name": "fill"}, headers=htmx(browser))).json()["key"]
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=mailstify_stack.gateway_url, timeout=30, headers=headers) as client:
            yield Owner(browser, Api(client))


def htmx(client: httpx.AsyncClient) -> dict[str, str]:
    return {"HX-Request": "true", "X-CSRF-Token": client.cookies["mailstify_csrf"]}


def emails(page: httpx.Response) -> list[str]:
    return ROW.findall(page.text)


async def test_search_filter_paging_edit_and_remove(owner: Owner) -> None:
    api, browser = owner.api, owner.browser
    tag = uuid.uuid4().hex[:6]
    people = [{"email": f"p{n:02d}.{tag}@example.com", "first_name": f"Person{n:02d}"} for n in range(27)]
    people[3]["first_name"] = "Zelda"
    mailing_list, added = await api.new_list_with(people)
    list_id = mailing_list["id"]
    await api.call("PATCH", f"/lists/{list_id}/subscribers/{added[5]['id']}", 200, json={"status": "unsubscribed"})

    first = await browser.get(f"/lists/{list_id}")
    assert first.status_code == 200 and len(emails(first)) == 25 and "26 subscribed" in first.text
    cursor = re.search(r'cursor=([^"&]+)', first.text.split('aria-label="Pages"')[1])
    assert cursor
    second = await browser.get(f"/lists/{list_id}/subscribers?cursor={cursor.group(1)}", headers=htmx(browser))
    assert len(emails(second)) == 2 and not set(emails(second)) & set(emails(first))

    found = await browser.get(f"/lists/{list_id}/subscribers?q=zelda", headers=htmx(browser))
    assert emails(found) == [people[3]["email"]]
    left = await browser.get(f"/lists/{list_id}/subscribers?status=unsubscribed", headers=htmx(browser))
    assert emails(left) == [people[5]["email"]]

    edit_form = await browser.get(f"/lists/{list_id}/subscribers/{added[0]['id']}/edit", headers=htmx(browser))
    assert 'id="editor-form"' in edit_form.text and "<html" not in edit_form.text  # a partial, not a page
    saved = await browser.post(
        f"/lists/{list_id}/subscribers/{added[0]['id']}",
        data={"email": people[0]["email"], "first_name": "Renamed", "last_name": "", "status": "subscribed"},
        headers=htmx(browser),
    )
    assert saved.status_code == 200 and "Renamed" in saved.text and 'hx-swap-oob="true"' in saved.text
    assert f"{people[0]['email']} saved." in saved.text

    duplicate = await browser.post(
        f"/lists/{list_id}/subscribers", data={"email": people[1]["email"]}, headers=htmx(browser)
    )
    assert duplicate.status_code == 409 and "flash-error" in duplicate.text

    removed = await browser.post(f"/lists/{list_id}/subscribers/{added[1]['id']}/delete", headers=htmx(browser))
    assert removed.status_code == 200 and "Subscriber removed." in removed.text
    assert people[1]["email"] not in emails(
        await browser.get(f"/lists/{list_id}/subscribers?q={tag}", headers=htmx(browser))
    )
