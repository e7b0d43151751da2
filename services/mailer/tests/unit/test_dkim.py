"""DKIM signing, checked by dkimpy's verifier against the signer's own public key record."""

from __future__ import annotations

import email
from email import policy

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mailstify_contracts import CampaignContent, Recipient
from mailstify_rendering import HeaderOptions, PreparedCampaign

from mailer.adapters.dkim import DkimSigner, SigningSender
from mailer.service_layer.ports import OutgoingMail

from .fakes import FakeSender

CONTENT = CampaignContent(
    subject="Hello {{ subscriber.first_name }}",
    from_name="Acme",
    from_email="news@acme.test",
    reply_to="help@acme.test",
    body_html="<p>Hi {{ subscriber.first_name }}</p>\n<p>" + "line with trailing dots.\n" * 40 + "</p>",
    list_id="list-1",
)
ANA = Recipient(subscriber_id="7", email="ana@example.com", first_name="Ana")
REQUIRED = {"from", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"}


def pem(key, private_format=serialization.PrivateFormat.PKCS8) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, private_format, serialization.NoEncryption())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def signer(rsa_key) -> DkimSigner:
    return DkimSigner("mail2026", "acme.test", pem(rsa_key), clock=lambda: 1_700_000_000)


def campaign_message() -> bytes:
    options = HeaderOptions(unsubscribe_mailto="unsubscribe@acme.test")
    prepared = PreparedCampaign.prepare(CONTENT, options=options)
    return prepared.build("cmp-1", ANA, "https://mail.acme.test/u/tok.en", "Tue, 24 Nov 2026 19:21:00 +0000")


def verifies(signer: DkimSigner, message: bytes) -> bool:
    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return signer.public_key_record() if name == b"mail2026._domainkey.acme.test." else None

    return dkim.verify(message, dnsfunc=dns)


def test_a_signed_campaign_message_verifies_and_covers_the_headers_that_matter(signer):
    message = campaign_message()
    signed = signer.sign(message)
    assert signed.endswith(message)  # one header prepended, nothing else touched
    assert verifies(signer, signed)
    fields = dkim.util.parse_tag_value(email.message_from_bytes(signed, policy=policy.default)["DKIM-Signature"].encode())
    assert (fields[b"d"], fields[b"s"], fields[b"a"], fields[b"t"]) == (b"acme.test", b"mail2026", b"rsa-sha256", b"1700000000")
    signed_headers = [h.strip().decode() for h in fields[b"h"].split(b":")]
    assert REQUIRED | {"reply-to", "list-id", "feedback-id", "to"} <= set(signed_headers)
    # Oversigned: a second From or a second unsubscribe target added on the way breaks it.
    assert signed_headers.count("from") == 2 and signed_headers.count("list-unsubscribe") == 2


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m.replace(b"Subject: Hello Ana", b"Subject: Hello Bob"),
        lambda m: m.replace(b"https://mail.acme.test/u/tok.en", b"https://evil.test/u/tok.en", 1),
        lambda m: m.replace(b"Hi Ana", b"Hi Bob"),
        lambda m: b"From: Mallory <m@evil.test>\r\n" + m,
        lambda m: b"List-Unsubscribe: <https://evil.test/x>\r\n" + m,
    ],
    ids=["subject", "unsubscribe link", "body", "added From", "added List-Unsubscribe"],
)
def test_a_changed_message_no_longer_verifies(signer, tamper):
    signed = signer.sign(campaign_message())
    assert verifies(signer, signed)
    assert not verifies(signer, tamper(signed))


def test_relaxed_canonicalisation_survives_refolding_on_the_way(signer):
    signed = signer.sign(campaign_message())
    refolded = signed.replace(b"Subject: Hello Ana", b"Subject:   Hello\r\n\tAna")
    assert verifies(signer, refolded)


def test_pkcs1_keys_are_accepted_too(rsa_key):
    traditional = DkimSigner("mail2026", "acme.test", pem(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL))
    assert verifies(traditional, traditional.sign(campaign_message()))


@pytest.mark.parametrize(
    "key_pem",
    [lambda: b"not a key", lambda: pem(ec.generate_private_key(ec.SECP256R1()))],
    ids=["garbage", "not RSA"],
)
def test_unusable_keys_are_refused_when_the_signer_is_made(key_pem):
    with pytest.raises(ValueError, match="DKIM private key"):
        DkimSigner("s", "acme.test", key_pem())


async def test_the_signing_sender_hands_on_each_message_signed(signer):
    inner = FakeSender()
    message = campaign_message()
    attempts = await SigningSender(inner, signer).send_all(
        [OutgoingMail("news@acme.test", "ana@example.com", message)], start_before=float("inf")
    )
    assert [a.code for a in attempts] == [250]
    (sent,) = inner.sent
    assert (sent.mail_from, sent.rcpt_to) == ("news@acme.test", "ana@example.com")
    assert sent.data.startswith(b"DKIM-Signature: ") and sent.data.endswith(message)
    assert verifies(signer, sent.data)
