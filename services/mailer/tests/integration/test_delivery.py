"""The mailer against real PostgreSQL, NATS JetStream and SMTP servers."""

from __future__ import annotations

import email
from email import policy

import pytest

from mailstify_contracts import CampaignContent, DeliveryFailed, DeliveryOutcomeUnknown, DeliverySucceeded, Recipient

from mailer.domain.model import OUTCOME_UNKNOWN_REASON
from mailstify_contracts.unsubscribe import verify_unsubscribe_token

from mailstify_devstack.inprocess import until

from .conftest import PUBLIC_URL, SECRET_KEY, deliver, new_campaign_id

pytestmark = pytest.mark.integration

CONTENT = CampaignContent(
    subject='Hello {{ subscriber.first_name | default("friend") }}',
    from_name="Acme News",
    from_email="news@acme.test",
    body_html='<p>Dear {{ subscriber.first_name | default("friend") }},</p><p>Plan: {{ subscriber.attributes.plan }}</p>',
)


async def test_delivers_personalised_multipart_emails_exactly_once(start_mailer, smtp_inbox):
    mailer = await start_mailer(smtp_inbox.smtp_host, smtp_inbox.smtp_port)
    campaign_id = new_campaign_id()
    recipients = [
        Recipient(subscriber_id="1", email=f"ana.{campaign_id}@example.com", first_name="Ana", attributes={"plan": "pro"}),
        Recipient(subscriber_id="2", email=f"zoe.{campaign_id}@example.com", first_name="Zoë", last_name="Ångström"),
        Recipient(subscriber_id="3", email=f"anon.{campaign_id}@example.com"),
    ]
    await mailer.put_content(campaign_id, CONTENT)
    await mailer.publish([deliver(campaign_id, r) for r in recipients])

    def ours():
        return [m for m in smtp_inbox.messages() if campaign_id in (m["message_id"] or "")]

    async def three_mails():
        return len(ours()) >= 3

    await until(three_mails)
    results = await mailer.wait_for_results(campaign_id, 3)
    assert all(isinstance(e, DeliverySucceeded) for e in results)
    assert sorted(e.subscriber_id for e in results) == ["1", "2", "3"]

    by_recipient = {m["rcpt_tos"][0]: m for m in ours()}
    assert set(by_recipient) == {r.email for r in recipients}
    for recipient, greeting in zip(recipients, ["Ana", "Zoë", "friend"]):
        mail = by_recipient[recipient.email]
        assert mail["subject"] == f"Hello {greeting}"
        assert f"Dear {greeting}," in mail["html"]
        assert f"Dear {greeting}," in mail["text"]
        assert mail["message_id"] == f"<{campaign_id}.{recipient.subscriber_id}@acme.test>"
        assert mail["mail_from"] == "news@acme.test"
    assert "Plan: pro" in by_recipient[recipients[0].email]["text"]
    assert {e.message_id for e in results} == {m["message_id"] for m in ours()}

    ledger = await mailer.ledger(campaign_id)
    assert {sid: (row.status, row.attempts, row.smtp_code) for sid, row in ledger.items()} == {
        "1": ("sent", 1, 250),
        "2": ("sent", 1, 250),
        "3": ("sent", 1, 250),
    }

    # Redelivery: the same events again under new msg ids (so JetStream's dedupe does not drop
    # them) are acked without sending.
    copies = await mailer.publish([deliver(campaign_id, r) for r in recipients], msg_id_prefix="copy")

    async def copies_consumed():
        return await mailer.consumed(copies)

    await until(copies_consumed)
    assert len(ours()) == 3
    assert len(await mailer.results(campaign_id)) == 3
    assert {sid: row.attempts for sid, row in (await mailer.ledger(campaign_id)).items()} == {"1": 1, "2": 1, "3": 1}


async def test_message_carries_one_click_unsubscribe_with_a_verifiable_token(start_mailer, scripted_smtp):
    handler, port = scripted_smtp
    mailer = await start_mailer("127.0.0.1", port)
    campaign_id = new_campaign_id()
    await mailer.put_content(campaign_id, CONTENT)
    await mailer.publish([deliver(campaign_id, Recipient(subscriber_id="9", email="u@example.com"), account_id="acc-7")])
    await mailer.wait_for_results(campaign_id, 1)

    (raw,) = handler.received_by("u@example.com")
    message = email.message_from_bytes(raw, policy=policy.default)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = message["List-Unsubscribe"].strip("<>")
    assert url.startswith(f"{PUBLIC_URL}/u/")
    target = verify_unsubscribe_token(SECRET_KEY.encode(), url.rsplit("/", 1)[1])
    assert (target.account_id, target.campaign_id, target.subscriber_id) == ("acc-7", campaign_id, "9")
    assert url in message.get_body(("html",)).get_content()  # the footer the body lacked


async def test_mailbox_5xx_is_a_permanent_hard_bounce(start_mailer, scripted_smtp):
    handler, port = scripted_smtp
    handler.replies["gone@example.com"] = ["550 5.1.1 <gone@example.com>: Recipient address rejected"]
    mailer = await start_mailer("127.0.0.1", port)
    campaign_id = new_campaign_id()
    await mailer.put_content(campaign_id, CONTENT)
    await mailer.publish(
        [
            deliver(campaign_id, Recipient(subscriber_id="1", email="gone@example.com")),
            deliver(campaign_id, Recipient(subscriber_id="2", email="here@example.com")),
        ]
    )
    results = {e.subscriber_id: e for e in await mailer.wait_for_results(campaign_id, 2)}

    failed = results["1"]
    assert isinstance(failed, DeliveryFailed)
    assert (failed.permanent, failed.hard_bounce, failed.smtp_code) == (True, True, 550)
    assert "Recipient address rejected" in failed.reason
    assert isinstance(results["2"], DeliverySucceeded)
    assert handler.received_by("gone@example.com") == []
    assert len(handler.received_by("here@example.com")) == 1
    ledger = await mailer.ledger(campaign_id)
    assert (ledger["1"].status, ledger["1"].smtp_code) == ("failed", 550)


async def test_4xx_is_retried_and_delivered_once(start_mailer, scripted_smtp):
    handler, port = scripted_smtp
    handler.replies["busy@example.com"] = ["451 4.3.0 Try again later", "250"]
    mailer = await start_mailer("127.0.0.1", port)
    campaign_id = new_campaign_id()
    await mailer.put_content(campaign_id, CONTENT)
    await mailer.publish([deliver(campaign_id, Recipient(subscriber_id="1", email="busy@example.com"))])

    (result,) = await mailer.wait_for_results(campaign_id, 1)
    assert isinstance(result, DeliverySucceeded)
    assert len(handler.received_by("busy@example.com")) == 1
    row = (await mailer.ledger(campaign_id))["1"]
    assert (row.status, row.attempts, row.smtp_code) == ("sent", 2, 250)


async def test_send_abandoned_by_a_dead_mailer_is_reported_unknown_not_resent(start_mailer, scripted_smtp):
    handler, port = scripted_smtp
    mailer = await start_mailer("127.0.0.1", port)
    campaign_id = new_campaign_id()
    await mailer.put_content(campaign_id, CONTENT)
    # A replica claimed this row and died mid-send; its lease runs out in 2 seconds.
    await mailer.execute(
        "INSERT INTO deliveries (campaign_id, subscriber_id, account_id, email, status, attempts, lease_until)"
        " VALUES (:c, '1', 'acc-1', 'lost@example.com', 'sending', 1, now() + interval '2 seconds')",
        c=campaign_id,
    )
    await mailer.publish([deliver(campaign_id, Recipient(subscriber_id="1", email="lost@example.com"))])

    # Under the live lease the message is put back; once the lease is over it is recorded unknown.
    (result,) = await mailer.wait_for_results(campaign_id, 1, timeout=30)
    assert isinstance(result, DeliveryOutcomeUnknown)
    assert result.reason == OUTCOME_UNKNOWN_REASON
    assert handler.received_by("lost@example.com") == []
    assert (await mailer.ledger(campaign_id))["1"].status == "unknown"


async def test_missing_content_is_retried_until_it_appears(start_mailer, scripted_smtp):
    handler, port = scripted_smtp
    mailer = await start_mailer("127.0.0.1", port)
    campaign_id = new_campaign_id()
    await mailer.publish([deliver(campaign_id, Recipient(subscriber_id="1", email="early@example.com"))])

    async def retry_recorded():
        row = (await mailer.ledger(campaign_id)).get("1")
        return row is not None and row.status == "retry"

    await until(retry_recorded)
    await mailer.put_content(campaign_id, CONTENT)
    (result,) = await mailer.wait_for_results(campaign_id, 1)
    assert isinstance(result, DeliverySucceeded)
    assert len(handler.received_by("early@example.com")) == 1
