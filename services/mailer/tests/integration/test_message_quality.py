"""What a receiving server gets from the mailer: the bulk-mail headers and a DKIM signature that
verifies on the message as received (the devstack's SMTP inbox), and, signature aside, exactly the
message a campaign preview builds."""

from __future__ import annotations

import base64
import email
import re
from email import policy

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailstify_contracts import CampaignContent, DeliverySucceeded, Recipient
from mailstify_contracts.unsubscribe import UnsubscribeTarget, signed_unsubscribe_url
from mailstify_devstack.inprocess import until
from mailstify_rendering import HeaderOptions, PreparedCampaign

from .conftest import PUBLIC_URL, SECRET_KEY, deliver, new_campaign_id

pytestmark = pytest.mark.integration

CONTENT = CampaignContent(
    subject="News for {{ subscriber.first_name }}",
    from_name="Acme News",
    from_email="news@acme.test",
    reply_to="help@acme.test",
    body_html="<p>Dear {{ subscriber.first_name }},</p>\n<p>. a line starting with a dot</p>",
    list_id="list-42",
)
OPTIONS = HeaderOptions(unsubscribe_mailto="unsubscribe@acme.test", feedback_id_sender="acme-news")
SELECTOR = "mail2026"


@pytest.fixture(scope="module")
def dkim_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def published_record(key: rsa.RSAPrivateKey) -> bytes:
    """The TXT record an operator publishes at mail2026._domainkey.acme.test."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


async def test_received_messages_carry_the_bulk_headers_and_a_verifying_signature(
    start_mailer, smtp_inbox, dkim_key, tmp_path
):
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(
        dkim_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    mailer = await start_mailer(
        smtp_inbox.smtp_host,
        smtp_inbox.smtp_port,
        dkim_selector=SELECTOR,
        dkim_domain="acme.test",
        dkim_private_key_file=key_file,
        list_unsubscribe_mailto=OPTIONS.unsubscribe_mailto,
        feedback_id_sender=OPTIONS.feedback_id_sender,
    )
    campaign_id = new_campaign_id()
    people = [
        Recipient(subscriber_id="1", email=f"ana.{campaign_id}@example.com", first_name="Ana"),
        Recipient(subscriber_id="2", email=f"zoe.{campaign_id}@example.com", first_name="Zoë", last_name="Ångström"),
    ]
    await mailer.put_content(campaign_id, CONTENT)
    await mailer.publish([deliver(campaign_id, person) for person in people])
    results = await mailer.wait_for_results(campaign_id, len(people))
    assert all(isinstance(result, DeliverySucceeded) for result in results)

    async def received() -> dict[str, bytes] | None:
        mails = {m["rcpt_tos"][0]: m for m in smtp_inbox.messages() if campaign_id in (m["message_id"] or "")}
        return {rcpt: smtp_inbox.raw(m["id"]) for rcpt, m in mails.items()} if len(mails) == len(people) else None

    raw_by_recipient = await until(received)

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return published_record(dkim_key) if name == f"{SELECTOR}._domainkey.acme.test.".encode() else None

    for person in people:
        raw = raw_by_recipient[person.email]
        message = email.message_from_bytes(raw, policy=policy.default)
        link = signed_unsubscribe_url(
            PUBLIC_URL, SECRET_KEY.encode(), UnsubscribeTarget("acc-1", campaign_id, person.subscriber_id)
        )
        token = link.rpartition("/")[2]

        assert message["Message-ID"] == f"<{campaign_id}.{person.subscriber_id}@acme.test>"
        assert email.utils.parsedate_to_datetime(message["Date"]).tzinfo is not None
        assert message["List-Unsubscribe"] == f"<{link}>, <mailto:unsubscribe@acme.test?subject=unsubscribe%20{token}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["List-Id"] == "<list-42.acme.test>"
        assert message["Precedence"] == "bulk"
        assert message["Feedback-ID"] == f"{campaign_id}:list-42:acme-news"
        assert message["Reply-To"] == "help@acme.test"
        assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]

        assert dkim.verify(raw, dnsfunc=dns), "the DKIM signature does not verify on the received message"
        signature = dkim.util.parse_tag_value(message["DKIM-Signature"].encode())
        covered = {h.strip() for h in signature[b"h"].split(b":")}
        assert {b"from", b"subject", b"date", b"message-id", b"list-unsubscribe", b"list-unsubscribe-post"} <= covered
        assert (signature[b"d"], signature[b"s"]) == (b"acme.test", SELECTOR.encode())

        # Signature aside, the message is byte for byte the one a preview builds (its random MIME
        # boundary and Date apart, which a preview cannot know).
        preview = PreparedCampaign.prepare(CONTENT, options=OPTIONS).build(campaign_id, person, link, message["Date"])
        assert without_signature(raw) == same_boundary(preview, as_in=raw)


def without_signature(raw: bytes) -> bytes:
    head, _, body = raw.partition(b"\r\n\r\n")
    return re.sub(rb"^DKIM-Signature:.*?\r\n(?=\S)", b"", head + b"\r\n", count=1, flags=re.S) + b"\r\n" + body


def same_boundary(message: bytes, as_in: bytes) -> bytes:
    pattern = rb'boundary="([^"]+)"'
    return message.replace(re.search(pattern, message)[1], re.search(pattern, as_in)[1])
