"""The platform's five services, how each is launched and configured, and the whole local stack's
layout. `mailstify up` and the pytest fixtures both build their processes here."""

from __future__ import annotations

import os
import secrets as random_secrets
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

import httpx

from . import inbox, nats, postgres
from .net import LOOPBACK
from .processes import ProcessSpec

SERVICE_NAMES: tuple[str, ...] = ("gateway", "audience", "campaign", "dispatcher", "mailer")

# Every SMTP setting of the mailer (docs/configuration.md) starts with this.
SMTP_VARIABLE_PREFIX = "MAILSTIFY_SMTP_"
# The mailer's default port for each MAILSTIFY_SMTP_TLS mode when MAILSTIFY_SMTP_PORT is unset.
_DEFAULT_SMTP_PORTS = {"none": "25", "starttls": "587", "tls": "465"}


@dataclass(frozen=True)
class SmtpRelay:
    """The deployer's SMTP server: `MAILSTIFY_SMTP_HOST` (and the other MAILSTIFY_SMTP_* variables) set
    in `mailstify up`'s environment. The services then inherit those variables unchanged."""

    host: str
    port: str | None = None
    tls: str = "none"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SmtpRelay | None:
        """The relay the environment names, or None (unset or empty MAILSTIFY_SMTP_HOST: the dev inbox)."""
        environ = os.environ if environ is None else environ
        host = environ.get("MAILSTIFY_SMTP_HOST", "").strip()
        if not host:
            return None
        port = environ.get("MAILSTIFY_SMTP_PORT", "").strip() or None
        return cls(host, port, environ.get("MAILSTIFY_SMTP_TLS", "").strip() or "none")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port or _DEFAULT_SMTP_PORTS.get(self.tls, '?')}"


@dataclass(frozen=True)
class Infrastructure:
    """Where the services find what they depend on."""

    nats_url: str
    postgres_url: str  # SQLAlchemy URL of the server, without a database
    # An SMTP server the stack runs (the dev inbox), which every service is pointed at whatever the
    # inherited environment says; None: the deployer's relay, from the inherited MAILSTIFY_SMTP_*.
    smtp_host: str | None
    smtp_port: int | None = None
    # The dev inbox's web API, which the gateway's Inbox page reads; None where mail goes elsewhere.
    inbox_url: str | None = None


@dataclass(frozen=True)
class Secrets:
    secret_key: str  # signs sessions, CSRF and unsubscribe tokens
    internal_token: str  # what the gateway presents to the internal services

    @classmethod
    def generate(cls) -> Secrets:
        return cls(random_secrets.token_urlsafe(32), random_secrets.token_urlsafe(24))


def local_url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}"


def service_process(name: str, ports: Mapping[str, int], infra: Infrastructure, secrets: Secrets) -> ProcessSpec:
    """Service `name` on `ports[name]`; `ports` holds every service's port because services call each
    other. The command line is the convention every service is written to."""
    argv = [
        sys.executable, "-m", "uvicorn", "--factory", f"{name}.entrypoints.app:create_app",
        "--host", LOOPBACK, "--port", str(ports[name]), "--no-access-log",
    ]  # fmt: skip
    env = {
        "MAILSTIFY_DATABASE_URL": f"{infra.postgres_url}/mailstify_{name}",
        "MAILSTIFY_NATS_URL": infra.nats_url,
        "MAILSTIFY_AUDIENCE_URL": local_url(ports["audience"]),
        "MAILSTIFY_CAMPAIGN_URL": local_url(ports["campaign"]),
        "MAILSTIFY_SECRET_KEY": secrets.secret_key,
        "MAILSTIFY_INTERNAL_TOKEN": secrets.internal_token,
        "MAILSTIFY_PUBLIC_URL": local_url(ports["gateway"]),
    }
    if name == "gateway" and infra.inbox_url:
        env["MAILSTIFY_INBOX_URL"] = infra.inbox_url
    if infra.smtp_host is None:  # the deployer's relay: their MAILSTIFY_SMTP_* are inherited as they are
        return ProcessSpec(name, argv, env)
    if infra.smtp_port is None:
        raise ValueError("an SMTP host the stack runs needs its port")
    env |= {
        "MAILSTIFY_SMTP_HOST": infra.smtp_host,
        "MAILSTIFY_SMTP_PORT": str(infra.smtp_port),
        "MAILSTIFY_SMTP_TLS": "none",
    }
    # None of a developer's own SMTP settings (a relay's credentials, TLS...) may leak into the
    # services meant to use this inbox.
    return ProcessSpec(name, argv, env, unset_prefixes=(SMTP_VARIABLE_PREFIX,))


def service_processes(ports: Mapping[str, int], infra: Infrastructure, secrets: Secrets) -> list[ProcessSpec]:
    return [service_process(name, ports, infra, secrets) for name in SERVICE_NAMES]


def readiness_problem(url: str) -> str | None:
    """Why the service at `url` is not ready, or None when its /readyz answers 200."""
    try:
        response = httpx.get(f"{url}/readyz", timeout=2.0)
    except httpx.ConnectError:
        return "not listening yet"
    except httpx.HTTPError as error:
        return type(error).__name__
    if response.status_code == 200:
        return None
    return f"/readyz {response.status_code}: {response.text[:200]}"


def wait_until_ready(
    urls: Mapping[str, str], timeout: float, give_up: Callable[[], bool] = lambda: False, interval: float = 0.25
) -> dict[str, str]:
    """Poll every service's /readyz until all answer 200, the time is up, or `give_up()`. Returns what
    is still not ready and why: empty means all are ready."""
    deadline = time.monotonic() + timeout
    while True:
        problems = {name: problem for name, url in urls.items() if (problem := readiness_problem(url))}
        if not problems or give_up() or time.monotonic() > deadline:
            return problems
        time.sleep(interval)


@dataclass(frozen=True)
class Ports:
    """Every port of the local stack; the defaults are the development ports."""

    gateway: int = field(default=8000, metadata={"help": "the gateway: public API and web app"})
    audience: int = field(default=8001, metadata={"help": "the audience service"})
    campaign: int = field(default=8002, metadata={"help": "the campaign service"})
    dispatcher: int = field(default=8003, metadata={"help": "the dispatcher service"})
    mailer: int = field(default=8004, metadata={"help": "the mailer service"})
    nats: int = field(default=4222, metadata={"help": "NATS"})
    postgres: int = field(default=54329, metadata={"help": "PostgreSQL"})
    smtp: int = field(default=1025, metadata={"help": "the dev inbox's SMTP server"})
    inbox: int = field(default=8025, metadata={"help": "the dev inbox's web page and API"})

    def services(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in SERVICE_NAMES}

    def named(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class StackLayout:
    """Everything `mailstify up` runs: where its data lives and which ports it uses."""

    directory: Path
    ports: Ports = field(default_factory=Ports)
    # Where mail goes: the deployer's relay, or (None) the stack's dev inbox.
    smtp_relay: SmtpRelay | None = None

    @property
    def gateway_url(self) -> str:
        return local_url(self.ports.gateway)

    @property
    def inbox_url(self) -> str:
        return local_url(self.ports.inbox)

    @property
    def postgres_dir(self) -> Path:
        return self.directory / "postgres"

    def service_urls(self) -> dict[str, str]:
        return {name: local_url(port) for name, port in self.ports.services().items()}

    def infrastructure(self) -> Infrastructure:
        return Infrastructure(
            nats_url=nats.url(self.ports.nats),
            postgres_url=postgres.PostgresServer(self.ports.postgres).server_url,
            smtp_host=None if self.smtp_relay else LOOPBACK,
            smtp_port=None if self.smtp_relay else self.ports.smtp,
            inbox_url=None if self.smtp_relay else self.inbox_url,
        )

    def secrets(self) -> Secrets:
        """The secret key is kept in the stack's directory so sessions survive a restart; the internal
        token is new for every run."""
        key_file = self.directory / "secret_key"
        if not key_file.exists():
            key_file.touch(mode=0o600)
            key_file.write_text(Secrets.generate().secret_key)
        return Secrets(key_file.read_text().strip(), Secrets.generate().internal_token)

    def processes(self, secrets: Secrets) -> list[ProcessSpec]:
        return [
            nats.process_spec(self.directory / "nats", self.ports.nats),
            postgres.process_spec(self.postgres_dir, self.ports.postgres),
            inbox.process_spec(self.directory / "inbox", self.ports.smtp, self.ports.inbox),
            *service_processes(self.ports.services(), self.infrastructure(), secrets),
        ]
