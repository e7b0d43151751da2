"""Preview through the gateway: what the preview shows a subscriber is byte for byte what that
subscriber's inbox received (HTML and text parts, Message-ID), sandboxed by its CSP."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from .conftest import Api, unique_subscribers, until

pytestmark = pytest.mark.e2e

BODY = (
    "<p>Hi {{ subscriber.first_name }} {{ subscriber.last_name }},</p>\n"
    "<p>your plan: {{ subscriber.attributes.plan | default('free') }} — ünïcode</p>"
)


async def test_preview_is_exactly_what_the_subscriber_received(api: Api, mailstify_stack) -> None:
    (person,) = unique_subscribers("Ada")
    person = {**person, "last_name": "Lovelace", "attributes": {"plan": "pro"}}
    mailing_list, (subscriber,) = await api.new_list_with([person])
    campaign = await api.new_campaign(mailing_list["id"], body_html=BODY)
    base = f"/api/v1/campaigns/{campaign['id']}"
    query = {"subscriber_id": subscriber["id"]}

    await api.call("POST", f"/campaigns/{campaign['id']}/send", 202, json={})

    async def received() -> dict | None:
        mails = [m for m in mailstify_stack.inbox.messages() if m["rcpt_tos"] == [person["email"]]]
        return mails[0] if mails else None

    mail = await until(received, timeout=60)
    sent = message_from_bytes(mailstify_stack.inbox.raw(mail["id"]), policy=policy.default)

    html = await api.client.get(f"{base}/preview", params=query)
    assert html.status_code == 200, html.text
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert html.headers["content-security-policy"] == (
        "sandbox; default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'"
    )
    assert html.headers["x-content-type-options"] == "nosniff"
    assert html.content.decode("utf-8") == sent.get_body(("html",)).get_content()
    assert "Hi Ada Lovelace" in html.text and "your plan: pro" in html.text and "/u/" in html.text

    text = await api.client.get(f"{base}/preview.txt", params=query)
    assert text.status_code == 200, text.text
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.content.decode("utf-8") == sent.get_body(("plain",)).get_content()

    eml = await api.client.get(f"{base}/preview.eml", params=query)
    assert eml.status_code == 200, eml.text
    assert eml.headers["content-type"] == "message/rfc822"
    previewed = message_from_bytes(eml.content, policy=policy.default)
    assert previewed["Message-ID"] == sent["Message-ID"]
    assert previewed["To"] == sent["To"] and person["email"] in previewed["To"]
    assert previewed["Subject"] == sent["Subject"] == "Hello Ada"
    assert previewed["List-Unsubscribe"] == sent["List-Unsubscribe"]
    assert previewed.get_body(("html",)).get_content() == sent.get_body(("html",)).get_content()


async def test_sample_preview_needs_no_subscriber_and_unknowns_are_404(api: Api) -> None:
    mailing_list, _ = await api.new_list_with(unique_subscribers("Grace"))
    campaign = await api.new_campaign(mailing_list["id"], body_html=BODY)
    base = f"/api/v1/campaigns/{campaign['id']}"

    sample = await api.client.get(f"{base}/preview")
    assert sample.status_code == 200, sample.text
    assert "Hi Jane Doe" in sample.text and "your plan: free" in sample.text
    assert sample.headers["content-security-policy"].startswith("sandbox;")
    assert "Hello Jane" in (await api.client.get(f"{base}/preview.eml")).text

    unknown = await api.client.get(f"{base}/preview", params={"subscriber_id": "999999999"})
    assert unknown.status_code == 404
    assert "subscriber 999999999 not found" in unknown.json()["detail"]
    assert (await api.client.get(f"{base}/preview.txt", params={"subscriber_id": "nope"})).status_code == 404
    assert (await api.client.get("/api/v1/campaigns/no-such-campaign/preview")).status_code == 404
