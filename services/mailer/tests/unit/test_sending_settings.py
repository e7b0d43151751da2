"""The settings for signing, list headers and SMTP sessions: complete or refused at start."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from mailstify_rendering import HeaderOptions

from mailer.config import Settings

DATABASE_URL = "postgresql+psycopg://nobody@127.0.0.1:1/none"


@pytest.fixture(autouse=True)
def no_mailstify_environment(monkeypatch):
    for name in [n for n in os.environ if n.startswith("MAILSTIFY_")]:
        monkeypatch.delenv(name)


def settings(**values) -> Settings:
    return Settings(database_url=DATABASE_URL, **values)


def test_nothing_is_signed_or_added_unless_configured():
    plain = settings()
    assert (plain.dkim_selector, plain.dkim_domain, plain.dkim_private_key, plain.dkim_private_key_file) == (None,) * 4
    assert plain.header_options == HeaderOptions()
    assert plain.smtp_max_messages_per_connection is None


def test_the_environment_configures_signing_and_list_headers(monkeypatch, tmp_path):
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(b"-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n")
    for name, value in {
        "DKIM_SELECTOR": "mail2026",
        "DKIM_DOMAIN": "acme.test",
        "DKIM_PRIVATE_KEY_FILE": str(key_file),
        "LIST_UNSUBSCRIBE_MAILTO": "unsubscribe@acme.test",
        "FEEDBACK_ID_SENDER": "acme",
        "SMTP_MAX_MESSAGES_PER_CONNECTION": "100",
    }.items():
        monkeypatch.setenv(f"MAILSTIFY_{name}", value)
    configured = settings()
    assert configured.dkim_private_key_pem() == key_file.read_bytes()
    assert configured.header_options == HeaderOptions(unsubscribe_mailto="unsubscribe@acme.test", feedback_id_sender="acme")
    assert configured.smtp_max_messages_per_connection == 100


def test_an_inline_key_is_used_as_given():
    configured = settings(dkim_selector="s", dkim_domain="acme.test", dkim_private_key="-----BEGIN...")
    assert configured.dkim_private_key_pem() == b"-----BEGIN..."


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"dkim_selector": "s"}, "DKIM signing needs"),
        ({"dkim_selector": "s", "dkim_domain": "acme.test"}, "only MAILSTIFY_DKIM_SELECTOR, MAILSTIFY_DKIM_DOMAIN set"),
        ({"dkim_private_key": "k"}, "DKIM signing needs"),
        ({"dkim_selector": "s", "dkim_domain": "d", "dkim_private_key": "k", "dkim_private_key_file": "/k"}, "not both"),
        ({"dkim_selector": "s", "dkim_domain": "d", "dkim_private_key_file": "/no/such/key.pem"}, "not a readable file"),
        ({"list_unsubscribe_mailto": "unsubscribe at acme"}, "cannot send to"),
        ({"feedback_id_sender": "a:b"}, "feedback id sender"),
        ({"smtp_max_messages_per_connection": 0}, "at least 1"),
    ],
)
def test_incomplete_or_unusable_settings_are_refused(values, message):
    with pytest.raises(ValidationError, match=message):
        settings(**values)
