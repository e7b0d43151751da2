"""The session's SMTP inbox, through the fixture interface (it may be a container: Mailpit), and the
dev inbox program itself (a local process the test starts): what it captures over SMTP and shows over
HTTP, its web page and its sandboxed HTML endpoint."""

from __future__ import annotations

import smtplib
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from mailstify_devstack import inbox
from mailstify_devstack.inbox import InboxClient, Mailbox
from mailstify_devstack.net import free_ports


def a_message(to: str, subject: str = "Hello Ada") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Mailstify <team@mailstify.test>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4().hex}@mailstify.test>"
    message.set_content("Hi Ada,\nwelcome aboard!")
    message.add_alternative("<p>Hi Ada, <b>welcome aboard!</b></p>", subtype="html")
    return message


def send(client: InboxClient, message: EmailMessage, rcpt_tos: list[str]) -> None:
    assert client.smtp_port is not None
    with smtplib.SMTP(client.smtp_host, client.smtp_port, timeout=10) as smtp:
        smtp.send_message(message, from_addr="bounces@mailstify.test", to_addrs=rcpt_tos)


@pytest.fixture(scope="module")
def dev_inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InboxClient]:
    """The dev inbox program as a local process, whatever backend the session's `smtp_inbox` has."""
    directory = tmp_path_factory.mktemp("dev-inbox")
    with inbox.running(directory / "inbox", directory / "inbox.log", *free_ports(2)) as client:
        yield client


def test_a_message_sent_over_smtp_shows_up_over_http(smtp_inbox: InboxClient) -> None:
    ada = f"ada.{uuid.uuid4().hex[:8]}@example.com"
    message = a_message(f"Ada <{ada}>", subject="Héllo Ada")
    send(smtp_inbox, message, [ada, "bcc@example.com"])

    smtp_inbox.wait_for(1)
    (captured,) = [m for m in smtp_inbox.messages() if ada in m["rcpt_tos"]]

    assert captured["mail_from"] == "bounces@mailstify.test"
    assert captured["rcpt_tos"] == [ada, "bcc@example.com"]
    assert captured["subject"] == "Héllo Ada"
    assert captured["message_id"] == message["Message-ID"]
    assert captured["to"] == f"Ada <{ada}>"
    assert captured["from"] == "Mailstify <team@mailstify.test>"
    assert captured["text"] == "Hi Ada,\nwelcome aboard!\n"
    assert captured["html"] == "<p>Hi Ada, <b>welcome aboard!</b></p>\n"
    raw = smtp_inbox.raw(captured["id"])
    assert len(raw) == captured["raw_size"]
    assert f"Message-ID: {message['Message-ID']}".encode() in raw


def test_the_dev_inbox_page_lists_the_messages(dev_inbox: InboxClient) -> None:
    ada = f"ada.{uuid.uuid4().hex[:8]}@example.com"
    send(dev_inbox, a_message(f"Ada <{ada}>", subject="Héllo Ada"), [ada])
    dev_inbox.wait_for(1)

    page = httpx.get(dev_inbox.http_url + "/").text

    assert "Héllo Ada" in page and ada in page


def test_messages_survive_a_restart_and_can_be_cleared(tmp_path: Path) -> None:
    directory = tmp_path / "inbox"
    ports = free_ports(2)
    with inbox.running(directory, tmp_path / "first.log", *ports) as client:
        send(client, a_message("ada@example.com"), ["ada@example.com"])
        client.wait_for(1)

    with inbox.running(directory, tmp_path / "second.log", *ports) as client:
        (kept,) = client.messages()
        assert kept["rcpt_tos"] == ["ada@example.com"] and kept["subject"] == "Hello Ada"

        client.clear()

        assert client.messages() == []
        assert httpx.get(f"{client.http_url}/api/messages/{kept['id']}/raw").status_code == 404


def test_the_mailbox_lists_in_arrival_order_and_reloads_that_order(tmp_path: Path) -> None:
    mailbox = Mailbox(tmp_path)
    for subject in ("first", "second", "third"):
        mailbox.add(a_message("ada@example.com", subject).as_bytes(), "a@example.com", ["ada@example.com"])

    assert [m["subject"] for m in Mailbox(tmp_path).summaries()] == ["first", "second", "third"]


def test_the_html_part_is_served_sandboxed(dev_inbox: InboxClient) -> None:
    ada = f"ada.{uuid.uuid4().hex[:8]}@example.com"
    send(dev_inbox, a_message(ada), [ada])
    dev_inbox.wait_for(1)
    (captured,) = [m for m in dev_inbox.messages() if ada in m["rcpt_tos"]]

    response = httpx.get(f"{dev_inbox.http_url}/api/messages/{captured['id']}/html")

    assert response.headers["content-security-policy"] == "sandbox"
    assert "welcome aboard" in response.text
