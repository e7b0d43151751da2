"""The fast path (MimeSkeleton) must parse to the same message as the email package's (slow) one."""

import email
from email import policy
from email.message import EmailMessage

import pytest

from mailstify_contracts import CampaignContent, Recipient
from mailstify_rendering import PreparedCampaign
from mailstify_rendering.mime import encoded_part, wire_body
from mailstify_rendering import (
    HeaderOptions,
    MessageFields,
    MimeSkeleton,
    UnsupportedAddress,
    build_reference_message,
    message_id,
    recipient_name,
)

DATE = "Tue, 24 Nov 2026 19:21:00 +0000"
ASCII_CONTENT = CampaignContent(subject="-", from_name="Acme News", from_email="news@acme.test", body_html="-")
UNICODE_CONTENT = CampaignContent(
    subject="-", from_name='Ünïcode "Ltd", Inc.', from_email="news@acme.test", reply_to="help@acme.test", body_html="-"
)


def fields(**overrides) -> MessageFields:
    values = {
        "campaign_id": "c1",
        "to_email": "jane@example.com",
        "to_name": "Jane Doe",
        "subject": "Hello Jane",
        "message_id": message_id("c1", "42", "news@acme.test"),
        "date": DATE,
        "unsubscribe_url": "https://mail.example.com/u/abc.def",
        "text": "Hi Jane,\nsee you.",
        "html": "<p>Hi Jane,</p>\n<p>see you.</p>",
    }
    return MessageFields(**{**values, **overrides})


CASES = {
    "ascii": (ASCII_CONTENT, fields()),
    "non-ascii names and subject": (
        UNICODE_CONTENT,
        fields(
            to_name="Zoë Ångström-日本",
            subject="Grüße, Zoë — 50 % Rabatt 🎉 auf alles",
            text="Liebe Zoë,\nschöne Grüße 🎉\n",
            html="<p>Liebe Zoë, schöne Grüße 🎉</p>",
        ),
    ),
    "long lines and qp specials": (
        ASCII_CONTENT,
        fields(
            subject="A very long subject line " + "that keeps going " * 12 + "until the end",
            text="x" * 300 + "\n.leading dot\ntrailing space   \ntab\there\n=equals= =3D\r\nCRLF line\rlone CR\n\n\nend",
            html="<div>" + "<span>é</span>" * 120 + "</div>\n" + "y" * 500,
        ),
    ),
    "display names needing quotes": (
        UNICODE_CONTENT,
        fields(to_name='Doe, "Jane" (Jr.) \\ O\'Neil', subject="Re: [list] =?not-an-encoded-word?= 100%"),
    ),
    "long non-ascii subject and empty name": (
        ASCII_CONTENT,
        fields(to_name="", subject="Ünïcödé " * 30, text="", html=""),
    ),
    "bare CR and LF in the parts": (ASCII_CONTENT, fields(text="one\rtwo\nthree\r\n\n.four\r", html="<p>a\rb</p>\n.c")),
    "test recipient id": (ASCII_CONTENT, fields(message_id=message_id("c1", "test:jane@example.com", "news@acme.test"))),
    "list id, mailto and a sender id": (
        ASCII_CONTENT.model_copy(update={"list_id": "list:7"}),
        fields(),
        HeaderOptions(unsubscribe_mailto="unsubscribe@acme.test", feedback_id_sender="acme-mail"),
    ),
}
DEFAULT_OPTIONS = HeaderOptions()


def case_of(name: str) -> tuple[CampaignContent, MessageFields, HeaderOptions]:
    content, message_fields, *options = CASES[name]
    return content, message_fields, (options[0] if options else DEFAULT_OPTIONS)


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=policy.default)


@pytest.mark.parametrize("case", CASES)
def test_fast_path_parses_like_the_email_package(case):
    content, message_fields, options = case_of(case)
    fast = parse(MimeSkeleton(content, options=options).build(message_fields))
    slow = parse(build_reference_message(content, message_fields, options).as_bytes(policy=policy.SMTP))

    assert sorted(k.lower() for k in fast.keys()) == sorted(k.lower() for k in slow.keys())
    for name in slow.keys():
        if name.lower() == "content-type":
            assert fast.get_content_type() == slow.get_content_type() == "multipart/alternative"
            continue
        assert str(fast[name]) == str(slow[name]), name
        if name.lower() in ("from", "to", "reply-to"):
            assert fast[name].addresses == slow[name].addresses
    fast_parts, slow_parts = list(fast.iter_parts()), list(slow.iter_parts())
    assert [p.get_content_type() for p in fast_parts] == [p.get_content_type() for p in slow_parts] == [
        "text/plain",
        "text/html",
    ]
    for fast_part, slow_part in zip(fast_parts, slow_parts):
        assert fast_part.get_content_charset() == slow_part.get_content_charset() == "utf-8"
        assert fast_part["Content-Transfer-Encoding"] == slow_part["Content-Transfer-Encoding"]
        assert fast_part.get_content() == slow_part.get_content()
    assert not any(part.defects for part in fast.walk())


@pytest.mark.parametrize("case", CASES)
def test_fast_path_keeps_line_limits(case):
    content, message_fields, options = case_of(case)
    data = MimeSkeleton(content, options=options).build(message_fields)
    head, _, body = data.partition(b"\r\n\r\n")
    assert data.isascii()
    # CRLF only, so the SMTP pool sends the bytes as they are, without normalising line endings.
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    assert all(len(line) <= 998 for line in body.split(b"\r\n"))


def test_fast_path_headers_carry_ids_and_one_click_unsubscribe():
    message = parse(MimeSkeleton(ASCII_CONTENT).build(fields()))
    assert message["Message-ID"] == "<c1.42@acme.test>"
    assert message["List-Unsubscribe"] == "<https://mail.example.com/u/abc.def>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_message_id_is_deterministic_and_valid_for_any_id():
    assert message_id("c1", "42", "news@acme.test") == "<c1.42@acme.test>"
    odd = message_id("c.1", "test:jane@example.com", "x@Bücher.example")
    assert odd == message_id("c.1", "test:jane@example.com", "x@Bücher.example")
    assert odd == "<c%2E1.test%3Ajane%40example%2Ecom@xn--bcher-kva.example>"
    assert message_id("c", "1.2", "a@b") != message_id("c.1", "2", "a@b")


@pytest.mark.parametrize("address", ["jäne@example.com", "a b@example.com", "x@example.com\r\nBcc: y@z", "no-at-sign"])
def test_unusable_recipient_addresses_are_refused(address):
    with pytest.raises(UnsupportedAddress):
        MimeSkeleton(ASCII_CONTENT).build(fields(to_email=address))


def test_recipient_name():
    assert recipient_name(" Jane ", "Doe") == "Jane Doe"
    assert recipient_name(None, "Doe") == "Doe"
    assert recipient_name(None, None) == ""


def test_prepared_campaign_builds_a_personalised_message():
    content = CampaignContent(
        subject="Hi {{ subscriber.first_name }}",
        from_name="Acme",
        from_email="news@acme.test",
        body_html="<p>Dear {{ subscriber.first_name }}</p>",
    )
    recipient = Recipient(subscriber_id="42", email="jane@example.com", first_name="Jäne", last_name="Doe")
    message = parse(PreparedCampaign.prepare(content).build("c1", recipient, "https://m.test/u/t", DATE))
    assert message["Subject"] == "Hi Jäne"
    assert message["To"].addresses[0].display_name == "Jäne Doe"
    assert message["Message-ID"] == "<c1.42@acme.test>"
    text, html = (part.get_content() for part in message.iter_parts())
    assert "Dear Jäne" in html and "Dear Jäne" in text
    assert "https://m.test/u/t" in html and "https://m.test/u/t" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<p>plain ASCII</p>\n<p>short lines</p>", b"7bit"),
        ("<p>Zoë</p>", b"quoted-printable"),  # not ASCII
        ("<p>trailing space</p> \n<p>x</p>", b"quoted-printable"),  # a relay may strip it: DKIM
        ("<p>" + "x" * 1000 + "</p>", b"quoted-printable"),  # over RFC 5322's 998
        ("--=_boundary\n", b"quoted-printable"),  # would end the part early
        ("<p>trailing tab</p>\t\n<p>x</p>", b"quoted-printable"),
        ("<p>a\ttab inside</p>\n", b"7bit"),
        ('<a href="x">=_ but not the boundary</a>\n', b"7bit"),
    ],
)
def test_a_part_goes_as_it_is_only_when_7bit_can_carry_it(text, expected):
    encoding, wire = encoded_part(text, b"=_boundary")
    assert encoding == expected
    decoded = email.message_from_bytes(
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: " + encoding + b"\r\n\r\n" + wire,
        policy=policy.default,
    ).get_content()
    assert decoded == wire_body(text).decode()
