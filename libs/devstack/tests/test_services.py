"""How every service is launched: one convention, shared by `mailstify up` and the fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

from mailstify_devstack.services import (
    SERVICE_NAMES,
    Infrastructure,
    Ports,
    Secrets,
    SmtpRelay,
    StackLayout,
    service_processes,
)

INFRA = Infrastructure("nats://127.0.0.1:4999", "postgresql+psycopg://postgres@127.0.0.1:5999", "127.0.0.1", 2525)
PORTS = {"gateway": 9000, "audience": 9001, "campaign": 9002, "dispatcher": 9003, "mailer": 9004}


def test_every_service_runs_under_uvicorn_with_its_factory() -> None:
    specs = service_processes(PORTS, INFRA, Secrets("key", "token"))

    assert [spec.name for spec in specs] == list(SERVICE_NAMES)
    mailer = specs[-1]
    assert mailer.argv == [
        sys.executable, "-m", "uvicorn", "--factory", "mailer.entrypoints.app:create_app",
        "--host", "127.0.0.1", "--port", "9004", "--no-access-log",
    ]  # fmt: skip


def test_every_service_is_told_where_everything_is() -> None:
    (gateway, *_, mailer) = service_processes(PORTS, INFRA, Secrets("key", "token"))

    assert mailer.env == {
        "MAILSTIFY_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5999/mailstify_mailer",
        "MAILSTIFY_NATS_URL": "nats://127.0.0.1:4999",
        "MAILSTIFY_AUDIENCE_URL": "http://127.0.0.1:9001",
        "MAILSTIFY_CAMPAIGN_URL": "http://127.0.0.1:9002",
        "MAILSTIFY_SMTP_HOST": "127.0.0.1",
        "MAILSTIFY_SMTP_PORT": "2525",
        "MAILSTIFY_SMTP_TLS": "none",
        "MAILSTIFY_SECRET_KEY": "key",
        "MAILSTIFY_INTERNAL_TOKEN": "token",
        "MAILSTIFY_PUBLIC_URL": "http://127.0.0.1:9000",
    }
    assert gateway.env["MAILSTIFY_DATABASE_URL"].endswith("/mailstify_gateway")


def test_the_local_stack_runs_infrastructure_then_services_on_the_development_ports(tmp_path: Path) -> None:
    layout = StackLayout(tmp_path)
    specs = layout.processes(layout.secrets())

    assert [spec.name for spec in specs] == ["nats", "postgres", "inbox", *SERVICE_NAMES]
    assert specs[-1].env["MAILSTIFY_DATABASE_URL"] == "postgresql+psycopg://postgres@127.0.0.1:54329/mailstify_mailer"
    assert specs[-1].env["MAILSTIFY_SMTP_PORT"] == "1025"
    assert layout.gateway_url == "http://127.0.0.1:8000" and layout.inbox_url == "http://127.0.0.1:8025"
    assert Ports().services() == {
        "gateway": 8000,
        "audience": 8001,
        "campaign": 8002,
        "dispatcher": 8003,
        "mailer": 8004,
    }


def test_the_secret_key_survives_a_restart_but_the_internal_token_does_not(tmp_path: Path) -> None:
    first, second = StackLayout(tmp_path).secrets(), StackLayout(tmp_path).secrets()

    assert first.secret_key == second.secret_key
    assert first.internal_token != second.internal_token
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


RELAY_ENVIRONMENT = {
    "PATH": "/usr/bin",
    "MAILSTIFY_SMTP_HOST": "smtp.example.net",
    "MAILSTIFY_SMTP_PORT": "2587",
    "MAILSTIFY_SMTP_USERNAME": "deployer",
    "MAILSTIFY_SMTP_PASSWORD": "s3cret",
    "MAILSTIFY_SMTP_TLS": "starttls",
}


def test_a_given_inbox_wins_over_whatever_smtp_settings_the_shell_has() -> None:
    # What the test fixtures do: their services must reach their own inbox, not a developer's relay.
    mailer = service_processes(PORTS, INFRA, Secrets("key", "token"))[-1]

    env = mailer.full_env(RELAY_ENVIRONMENT)

    assert {k: v for k, v in env.items() if k.startswith("MAILSTIFY_SMTP_")} == {
        "MAILSTIFY_SMTP_HOST": "127.0.0.1",
        "MAILSTIFY_SMTP_PORT": "2525",
        "MAILSTIFY_SMTP_TLS": "none",
    }
    assert env["PATH"] == "/usr/bin"


def test_with_a_deployers_relay_the_services_inherit_its_smtp_settings(tmp_path: Path) -> None:
    relay = SmtpRelay.from_environment(RELAY_ENVIRONMENT)
    layout = StackLayout(tmp_path, smtp_relay=relay)

    (*_, mailer) = layout.processes(layout.secrets())

    assert relay == SmtpRelay("smtp.example.net", "2587", "starttls") and relay.address == "smtp.example.net:2587"
    assert not any(name.startswith("MAILSTIFY_SMTP_") for name in mailer.env)
    env = mailer.full_env(RELAY_ENVIRONMENT)
    assert {k: v for k, v in env.items() if k.startswith("MAILSTIFY_SMTP_")} == {
        k: v for k, v in RELAY_ENVIRONMENT.items() if k.startswith("MAILSTIFY_SMTP_")
    }


def test_no_relay_host_means_the_dev_inbox() -> None:
    assert SmtpRelay.from_environment({"MAILSTIFY_SMTP_PORT": "2525"}) is None
    assert SmtpRelay.from_environment({"MAILSTIFY_SMTP_HOST": " "}) is None
    assert SmtpRelay.from_environment({"MAILSTIFY_SMTP_HOST": "relay.test", "MAILSTIFY_SMTP_TLS": "tls"}).address == (
        "relay.test:465"
    )
