"""A service reachable over https refuses to start with development or placeholder secrets."""

from __future__ import annotations

import secrets

import pytest
from pydantic import ValidationError

from mailstify_servicekit.settings import DEV_SECRET_KEY, ServiceSettings

DB = "postgresql+psycopg://u@127.0.0.1:5432/mailstify_x"
STRONG = secrets.token_urlsafe(32)


def settings(**values: str) -> ServiceSettings:
    return ServiceSettings(database_url=DB, **values)


def test_development_secrets_are_fine_on_plain_http():
    assert settings(public_url="http://127.0.0.1:8000").secret_key.get_secret_value() == DEV_SECRET_KEY


def test_https_with_the_development_secrets_is_refused_naming_both():
    with pytest.raises(ValidationError) as refused:
        settings(public_url="https://mail.example.com")
    message = str(refused.value)
    assert "MAILSTIFY_INTERNAL_TOKEN and MAILSTIFY_SECRET_KEY are the development value" in message
    assert "token_urlsafe" in message


@pytest.mark.parametrize(
    ("internal_token", "secret_key", "named"),
    [
        (STRONG, DEV_SECRET_KEY, "MAILSTIFY_SECRET_KEY"),
        ("replace-me-internal-token", STRONG, "MAILSTIFY_INTERNAL_TOKEN"),
    ],
)
def test_https_with_one_weak_secret_names_it(internal_token, secret_key, named):
    with pytest.raises(ValidationError, match=f"{named} is the development value or shorter than 32"):
        settings(public_url="HTTPS://mail.example.com", internal_token=internal_token, secret_key=secret_key)


def test_https_with_long_random_secrets_starts(monkeypatch):
    # From the environment, as in a container: the check runs on what the process really reads.
    monkeypatch.setenv("MAILSTIFY_PUBLIC_URL", "https://mail.example.com")
    monkeypatch.setenv("MAILSTIFY_INTERNAL_TOKEN", secrets.token_urlsafe(32))
    monkeypatch.setenv("MAILSTIFY_SECRET_KEY", STRONG)
    assert ServiceSettings(database_url=DB).secret_key.get_secret_value() == STRONG
