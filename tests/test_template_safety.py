"""Templates are written by account users: through the public API, one must neither freeze the
mailers (B2) nor smuggle live markup into the email by way of a merge field (B3) — and what the
preview shows is what arrives (both come from `mailstify_rendering`)."""

from __future__ import annotations

import email
import time
from email import policy

import pytest

from .conftest import Api, unique_subscribers, until

pytestmark = pytest.mark.e2e

NESTED_LOOPS = "<p>{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}x</p>"


async def _sent(api: Api, campaign_id: str) -> dict:
    async def finished() -> dict | None:
        current = await api.call("GET", f"/campaigns/{campaign_id}", 200)
        return current if current["status"] == "sent" else None

    return await until(finished, timeout=60)


def _html_of(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=policy.default)
    return message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]


async def test_a_template_that_would_freeze_a_mailer_is_refused_at_save_time(api: Api) -> None:
    mailing_list, _ = await api.new_list_with(unique_subscribers("Ada"))

    started = time.monotonic()
    refused = await api.call(
        "POST",
        "/campaigns",
        422,
        json={
            "name": "loops",
            "subject": "hi",
            "list_id": mailing_list["id"],
            "from_name": "Me",
            "from_email": "me@mailstify.test",
            "body_html": NESTED_LOOPS,
        },
    )

    assert time.monotonic() - started < 5
    assert refused["detail"].startswith("body_html:") and "range" in refused["detail"]


async def test_a_template_that_blows_its_bound_for_one_subscriber_fails_that_delivery_visibly(
    api: Api, mailstify_stack
) -> None:
    # The sample render at save time passes (n defaults to 1); for Bob, n = 5000 makes 25 million
    # iterations: his delivery fails with the reason, the others go out, and the mailer carries on.
    ada, bob = unique_subscribers("Ada", "Bob")
    bob["attributes"] = {"n": 5000}  # type: ignore[assignment]
    mailing_list, added = await api.new_list_with([ada, bob])
    loop = "{% set n = subscriber.attributes.n | default(1) %}"
    loop += "{% for a in range(n) %}{% for b in range(n) %}.{% endfor %}{% endfor %}"
    campaign = await api.new_campaign(mailing_list["id"], body_html=f"<p>Hi {{{{ subscriber.first_name }}}}{loop}</p>")

    await api.call("POST", f"/campaigns/{campaign['id']}/send", 202, json={})
    sent = await _sent(api, campaign["id"])

    assert (sent["total"], sent["sent_count"], sent["failed_count"]) == (2, 1, 1)
    failed = await api.call("GET", f"/campaigns/{campaign['id']}/deliveries?status=failed", 200)
    assert [d["email"] for d in failed["items"]] == [bob["email"]]
    assert "iterations" in failed["items"][0]["detail"] or "time" in failed["items"][0]["detail"]
    assert [m for m in mailstify_stack.inbox.messages() if m["rcpt_tos"] == [ada["email"]]]


async def test_markup_producing_filters_are_refused_at_save_time(api: Api) -> None:
    mailing_list, _ = await api.new_list_with(unique_subscribers("Ada"))
    body = {
        "name": "xss",
        "subject": "hi",
        "list_id": mailing_list["id"],
        "from_name": "Me",
        "from_email": "me@mailstify.test",
    }
    for html in ['<p>{{ "<script>alert(1)</script>" | safe }}</p>', "{% autoescape false %}{{ x }}{% endautoescape %}"]:
        refused = await api.call("POST", "/campaigns", 422, json={**body, "body_html": html})
        assert refused["detail"].startswith("body_html:")


async def test_a_merge_field_cannot_put_a_script_url_or_markup_into_the_sent_email(api: Api, mailstify_stack) -> None:
    (person,) = unique_subscribers("Eve")
    person["first_name"] = "<script>alert(1)</script>"
    person["attributes"] = {"site": "javascript:alert(1)"}  # type: ignore[assignment]
    mailing_list, _ = await api.new_list_with([person])
    campaign = await api.new_campaign(
        mailing_list["id"],
        body_html=(
            '<p>Hi {{ subscriber.first_name }}</p><p><a href="{{ subscriber.attributes.site }}">site</a>'
            ' <a href="{{ \'javascript:alert(2)\' }}">two</a> <a href="java{{ \'script:alert(3)\' }}">three</a></p>'
        ),
    )

    await api.call("POST", f"/campaigns/{campaign['id']}/send", 202, json={})
    await _sent(api, campaign["id"])

    (mail,) = [m for m in mailstify_stack.inbox.messages() if m["rcpt_tos"] == [person["email"]]]
    html = _html_of(mailstify_stack.inbox.raw(mail["id"]))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in html.lower()
    assert html.count('href="#"') == 3
