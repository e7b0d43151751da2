"""Previews over in-memory fakes: the preview is the mail the mailer would build, byte for byte."""

from __future__ import annotations

import dataclasses
from email import message_from_bytes, policy

import pytest

from mailstify_contracts import Recipient
from mailstify_contracts.unsubscribe import UnsubscribeTarget, unsubscribe_token, unsubscribe_url
from mailstify_rendering import HeaderOptions, PreparedCampaign, message_id
from mailstify_servicekit import InvalidInput, NotFound

from campaign.service_layer.handlers import campaigns, previews
from campaign.service_layer.ports import MessageSettings

from .fakes import FakeCampaignUnitOfWork, FakeLists, FakeRecipients

ACCOUNT = "acct-1"
LINKS = MessageSettings(public_url="https://mail.example.org/", secret_key=b"preview-secret")
ADA = Recipient(subscriber_id="42", email="ada@example.com", first_name="Ada", last_name="Lovelace",
                attributes={"plan": "pro"})


@pytest.fixture
def uow() -> FakeCampaignUnitOfWork:
    return FakeCampaignUnitOfWork()


@pytest.fixture
def recipients() -> FakeRecipients:
    return FakeRecipients(**{"list-1": [ADA]})


async def new_campaign(uow: FakeCampaignUnitOfWork, **overrides: object):
    fields = {
        "name": "Welcome",
        "subject": "Hello {{ subscriber.first_name }}",
        "list_id": "list-1",
        "from_name": "Team",
        "from_email": "team@example.com",
        "reply_to": None,
        "body_html": "<p>Hi {{ subscriber.first_name }}, plan {{ subscriber.attributes.plan | default('free') }}</p>\n<p>ok</p>",
        "body_text": None,
        **overrides,
    }
    return await campaigns.create_campaign(uow, FakeLists(**{"list-1": 1}), ACCOUNT, fields)


def mailer_message(campaign, recipient: Recipient) -> bytes:
    """What the mailer's delivery handler builds for this recipient."""
    url = unsubscribe_url(
        LINKS.public_url,
        unsubscribe_token(LINKS.secret_key, UnsubscribeTarget(ACCOUNT, campaign.id, recipient.subscriber_id)),
    )
    return PreparedCampaign.prepare(campaign.content()).build(
        campaign.id, recipient, url, "Mon, 01 Jan 2024 00:00:00 +0000"
    )


async def test_the_preview_is_the_decoded_parts_of_the_mail_the_mailer_builds(uow, recipients) -> None:
    campaign = await new_campaign(uow)
    found = await previews.preview(uow, recipients, LINKS, ACCOUNT, campaign.id, "42")
    sent = message_from_bytes(mailer_message(campaign, ADA), policy=policy.default)
    assert found.html.decode() == sent.get_body(("html",)).get_content()
    assert found.text.decode() == sent.get_body(("plain",)).get_content()
    assert found.subject == sent["Subject"] == "Hello Ada"
    assert b"plan pro" in found.html and b"https://mail.example.org/u/" in found.html


async def test_the_sample_preview_needs_no_subscriber(uow, recipients) -> None:
    campaign = await new_campaign(uow)
    found = await previews.preview(uow, recipients, LINKS, ACCOUNT, campaign.id)
    assert b"Hi Jane, plan free" in found.html
    assert found.subject == "Hello Jane"


async def test_preview_eml_is_the_mailers_message(uow, recipients) -> None:
    campaign = await new_campaign(uow)
    raw = await previews.preview_message(uow, recipients, LINKS, ACCOUNT, campaign.id, "42")
    message = message_from_bytes(raw, policy=policy.default)
    expected = message_from_bytes(mailer_message(campaign, ADA), policy=policy.default)
    assert message["Message-ID"] == expected["Message-ID"] == message_id(campaign.id, "42", "team@example.com")
    assert message["To"] == expected["To"] and message["Subject"] == "Hello Ada"
    assert message["List-Unsubscribe"] == expected["List-Unsubscribe"]
    assert message.get_body(("html",)).get_content() == expected.get_body(("html",)).get_content()


async def test_preview_eml_carries_the_operators_headers_as_the_mailer_does(uow, recipients) -> None:
    campaign = await new_campaign(uow)
    headers = HeaderOptions(unsubscribe_mailto="unsubscribe@mail.example.org", feedback_id_sender="acme")
    links = dataclasses.replace(LINKS, headers=headers)
    raw = await previews.preview_message(uow, recipients, links, ACCOUNT, campaign.id, "42")
    message = message_from_bytes(raw, policy=policy.default)
    assert "<mailto:unsubscribe@mail.example.org?subject=unsubscribe" in message["List-Unsubscribe"]
    assert message["Feedback-ID"].endswith(":acme")


async def test_unknown_campaign_or_subscriber_is_not_found(uow, recipients) -> None:
    campaign = await new_campaign(uow)
    with pytest.raises(NotFound, match="campaign"):
        await previews.preview(uow, recipients, LINKS, ACCOUNT, "nope")
    with pytest.raises(NotFound, match="subscriber 7 not found"):
        await previews.preview(uow, recipients, LINKS, ACCOUNT, campaign.id, "7")
    with pytest.raises(NotFound):
        await previews.preview_message(uow, recipients, LINKS, "other-account", campaign.id, "42")


async def test_a_template_failing_for_that_subscriber_is_422(uow) -> None:
    # Passes the sample render at save time; fails only for a subscriber whose attribute is a huge number.
    campaign = await new_campaign(
        uow, body_html="<p>{% for i in range(subscriber.attributes.n | default(1)) %}x{% endfor %}</p>"
    )
    huge = Recipient(subscriber_id="9", email="x@example.com", attributes={"n": 10**9})
    with pytest.raises(InvalidInput, match="cannot be rendered"):
        await previews.preview(uow, FakeRecipients(**{"list-1": [huge]}), LINKS, ACCOUNT, campaign.id, "9")
    with pytest.raises(InvalidInput):
        await previews.preview_message(uow, FakeRecipients(**{"list-1": [huge]}), LINKS, ACCOUNT, campaign.id, "9")
