"""The web app's pure parts: page rules, flash cookies, the live-region macro, how the typed service
clients read a service's refusal, and the page use cases over fake services."""

from __future__ import annotations

import httpx
import pytest

from mailstify_servicekit.errors import Conflict, InvalidInput, NotFound, UpstreamUnavailable

from gateway.adapters.service_api import build, refusal
from gateway.domain import pages as rules
from gateway.entrypoints.web import templating
from gateway.entrypoints.web.auth_pages import safe_next
from gateway.service_layer import pages
from gateway.service_layer.web_ports import Campaign, InboxMessage, Listing, MailingList, WebBackends

SECRET = b"test-secret"


@pytest.mark.parametrize(
    ("status", "failed", "expected"),
    [
        ("draft", 0, ("send", "test", "duplicate")),
        ("sending", 0, ("pause", "cancel", "duplicate")),
        ("paused", 0, ("resume", "cancel", "duplicate")),
        ("sent", 0, ("duplicate",)),
        ("sent", 2, ("retry-failed", "duplicate")),
        ("cancelled", 0, ("duplicate",)),
    ],
)
def test_buttons_only_where_the_status_allows_them(status: str, failed: int, expected: tuple[str, ...]) -> None:
    assert rules.allowed_actions(status, failed) == expected


def test_progress_counts_every_outcome_and_is_unknown_until_the_total_is() -> None:
    assert rules.progress(3, 1, 1, 10).percent == 50
    assert rules.progress(3, 0, 0, None).percent is None


def test_forms_are_trimmed_and_blank_optional_fields_are_absent() -> None:
    fields = rules.campaign_fields({"name": " Hi ", "reply_to": "  ", "body_html": "<p>x</p>"})
    assert fields["name"] == "Hi" and fields["reply_to"] is None and fields["subject"] == ""
    assert rules.subscriber_fields({"email": " a@b.test ", "first_name": ""}) == {
        "email": "a@b.test",
        "first_name": None,
        "last_name": None,
    }
    assert rules.test_addresses("a@b.test, c@d.test\ne@f.test") == ["a@b.test", "c@d.test", "e@f.test"]
    assert rules.status_filter("bounced") == "bounced" and rules.status_filter("'; drop") is None


def test_a_new_campaigns_sender_name_is_never_an_email_address() -> None:
    assert rules.default_from_name("Acme News", "Ada", "Acme") == "Acme News"
    assert rules.default_from_name(None, "Ada", "ada@example.com") == "Ada"
    # Signed up without a name: the account is named after the email, which is no sender name.
    assert rules.default_from_name(None, None, "ada@example.com") == ""
    assert rules.default_from_name("", "", "Acme") == "Acme"


def test_flash_cookies_survive_a_round_trip_and_a_tampered_one_is_ignored() -> None:
    flashes = [templating.success("List “Ünïcode” created."), templating.error("nope")]
    cookie = templating.encode_flashes(SECRET, flashes)
    assert templating.decode_flashes(SECRET, cookie) == flashes
    payload, _, signature = cookie.partition(".")
    assert templating.decode_flashes(SECRET, payload + "." + "0" * len(signature)) == []
    assert templating.decode_flashes(b"another secret", cookie) == []
    assert templating.decode_flashes(SECRET, None) == []


def test_login_only_returns_to_a_page_of_this_site() -> None:
    assert safe_next("/campaigns/1") == "/campaigns/1"
    for hostile in ("//evil.example", "https://evil.example", "/\\evil.example", None, ""):
        assert safe_next(hostile) == "/lists"


@pytest.mark.parametrize("mode", ["poll", "sse"])
def test_live_regions_follow_the_stream_or_poll(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setitem(templating.environment.globals, "LIVE_MODE", mode)
    template = templating.environment.from_string(
        '{% from "_macros.html" import live, live_source with context %}'
        '<div {{ live_source("/api/v1/events") }}><div {{ live("/part", "list") }}></div></div>'
        '<div {{ live("/other") }}></div>'
    )
    page = template.render()
    assert 'hx-get="/part"' in page and 'hx-get="/other" hx-swap="outerHTML" hx-trigger="every 2s"' in page
    if mode == "sse":
        assert 'hx-ext="sse" sse-connect="/api/v1/events"' in page and 'hx-trigger="sse:list, every 15s"' in page
    else:
        assert "sse" not in page and page.count('hx-trigger="every 2s"') == 2


def test_every_output_is_escaped() -> None:
    page = templating.environment.get_template("inbox/show.html").render(
        message=InboxMessage(id="1", subject="<script>alert(1)</script>", from_="x", to="y", rcpt_tos=["y"]),
        raw="<b>raw</b>",
        flashes=[],
        path="/inbox/1",
    )
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;raw" in page


def _answer(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, json=body)


def test_a_services_refusal_keeps_its_status_words_and_field() -> None:
    missing = refusal("audience", _answer(404, {"detail": "list 7 not found"}))
    assert isinstance(missing, NotFound) and missing.detail == "list 7 not found"
    assert refusal("audience", _answer(404, {"detail": "Not Found"})).detail == "not found"  # no such route
    assert isinstance(refusal("audience", _answer(409, {"detail": "already on the list"})), Conflict)

    named = refusal("campaign", _answer(422, {"detail": "from_email: not valid"}))
    assert isinstance(named, InvalidInput) and named.extra["field"] == "from_email"
    located = refusal("campaign", _answer(422, {"detail": "x", "errors": [{"loc": ["body", "subject"]}]}))
    assert located.extra["field"] == "subject"
    assert refusal("campaign", _answer(422, {"detail": "bad", "field": "body_html"})).extra["field"] == "body_html"

    down = refusal("campaign", httpx.Response(502, text="bad gateway"))
    assert isinstance(down, UpstreamUnavailable) and "campaign service is unavailable" in down.detail


def test_answers_with_fields_we_do_not_know_still_build() -> None:
    made = build(MailingList, {"id": "1", "name": "n", "brand_new_field": True})
    assert made == MailingList(id="1", name="n")


class FakeAudience:
    def __init__(self, down: bool = False):
        self.down = down

    async def lists(self, account_id: str, cursor: str | None = None) -> Listing[MailingList]:
        if self.down:
            raise UpstreamUnavailable("the audience service is unavailable; try again shortly")
        return Listing([MailingList(id="L1", name="Friends")])

    async def start_import(self, account_id: str, list_id: str, filename: str, content: bytes):
        raise NotFound("not found")


class FakeCampaigns:
    def __init__(self) -> None:
        self.actions: list[tuple[str, dict]] = []

    async def campaigns(self, account_id: str, cursor: str | None = None) -> Listing[Campaign]:
        campaign = Campaign(id="C1", name="Hi", subject="s", list_id="L1", from_name="f", from_email="f@x.test",
                            status="draft")  # fmt: skip
        return Listing([campaign])

    async def action(self, account_id: str, campaign_id: str, action: str, body: dict) -> None:
        self.actions.append((action, body))


def backends(audience_down: bool = False) -> WebBackends:
    return WebBackends(audience=FakeAudience(audience_down), campaigns=FakeCampaigns())  # type: ignore[arg-type]


async def test_the_campaigns_index_names_lists_and_still_shows_when_the_audience_is_down() -> None:
    (row,) = await pages.campaigns_index(backends(), "acct")
    assert row.list_name == "Friends"
    (row,) = await pages.campaigns_index(backends(audience_down=True), "acct")
    assert row.list_name is None and row.campaign.id == "C1"


async def test_imports_refuse_an_empty_file_and_say_when_the_audience_has_none() -> None:
    with pytest.raises(InvalidInput, match="choose a CSV file"):
        await pages.start_import(backends(), "acct", "L1", "a.csv", b"  \n")
    with pytest.raises(InvalidInput, match="not available"):
        await pages.start_import(backends(), "acct", "L1", "a.csv", b"email\na@b.test\n")


async def test_campaign_actions_are_the_known_ones_and_a_test_needs_an_address() -> None:
    web = backends()
    with pytest.raises(NotFound):
        await pages.campaign_action(web, "acct", "C1", "explode", {})
    with pytest.raises(InvalidInput, match="at least one address"):
        await pages.campaign_action(web, "acct", "C1", "test", {"emails": " "})
    await pages.campaign_action(web, "acct", "C1", "test", {"emails": "a@b.test, c@d.test"})
    assert web.campaigns.actions == [("test", {"emails": ["a@b.test", "c@d.test"]})]  # type: ignore[attr-defined]
