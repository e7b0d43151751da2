"""The public unsubscribe link: only a token the platform signed reaches the audience, every other
token gets one and the same 404 page, and the confirmation page escapes what it echoes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gateway.entrypoints import unsubscribe as page
from gateway.service_layer import handlers
from mailstify_contracts.unsubscribe import UnsubscribeTarget, unsubscribe_token

SECRET = b"test-secret"
TARGET = UnsubscribeTarget(account_id="acct-1", campaign_id="cmp-1", subscriber_id="42")


class RecordingUpstreams:
    def __init__(self, known: bool = True):
        self.calls: list[tuple[str, str, str]] = []
        self.known = known

    async def unsubscribe(self, account_id: str, subscriber_id: str, campaign_id: str) -> bool:
        self.calls.append((account_id, subscriber_id, campaign_id))
        return self.known


def _dependencies(upstreams: RecordingUpstreams) -> SimpleNamespace:
    return SimpleNamespace(settings=SimpleNamespace(secret_key=SimpleNamespace(get_secret_value=lambda: "test-secret")), upstreams=upstreams)


def _altered(token: str) -> str:
    payload, mac = token.split(".")
    return f"{payload}.{('A' if mac[0] != 'A' else 'B')}{mac[1:]}"


async def test_a_signed_token_unsubscribes_its_target() -> None:
    upstreams = RecordingUpstreams()
    assert await handlers.unsubscribe(upstreams, SECRET, unsubscribe_token(SECRET, TARGET))
    assert upstreams.calls == [("acct-1", "42", "cmp-1")]


async def test_a_subscriber_deleted_since_still_counts_as_unsubscribed() -> None:
    upstreams = RecordingUpstreams(known=False)
    assert await handlers.unsubscribe(upstreams, SECRET, unsubscribe_token(SECRET, TARGET))


@pytest.mark.parametrize(
    "token",
    [
        _altered(unsubscribe_token(SECRET, TARGET)),
        unsubscribe_token(b"another-secret", TARGET),
        "garbage",
        "",
        "a.b",
        "é.é",
    ],
)
async def test_other_tokens_never_reach_the_audience_and_get_the_same_404(token: str) -> None:
    upstreams = RecordingUpstreams()
    assert not await handlers.unsubscribe(upstreams, SECRET, token)
    assert upstreams.calls == []
    posted = await page.one_click(token, _dependencies(upstreams))
    shown = await page.confirm(token, _dependencies(upstreams))
    reference = await page.one_click("garbage", _dependencies(upstreams))
    assert posted.status_code == shown.status_code == 404
    assert posted.body == shown.body == reference.body
    assert b"garbage" not in posted.body


async def test_the_confirmation_page_posts_back_to_the_same_url_and_changes_nothing() -> None:
    upstreams = RecordingUpstreams()
    token = unsubscribe_token(SECRET, TARGET)
    shown = await page.confirm(token, _dependencies(upstreams))
    assert shown.status_code == 200
    assert f'<form method="post" action="/u/{token}">'.encode() in shown.body
    assert b"<button" in shown.body and b"http" not in shown.body  # no external assets
    assert upstreams.calls == []


async def test_the_page_escapes_the_token_it_echoes() -> None:
    target = UnsubscribeTarget(account_id="a", campaign_id="c", subscriber_id='"><script>x</script>')
    # A signed token is base64url, but the page must not rely on it.
    token = unsubscribe_token(SECRET, target)
    shown = await page.confirm(token, _dependencies(RecordingUpstreams()))
    assert b"<script>" not in shown.body


async def test_one_click_answers_200_with_a_short_page() -> None:
    upstreams = RecordingUpstreams()
    answered = await page.one_click(unsubscribe_token(SECRET, TARGET), _dependencies(upstreams))
    assert answered.status_code == 200
    assert b"unsubscribed" in answered.body
    assert upstreams.calls == [("acct-1", "42", "cmp-1")]
