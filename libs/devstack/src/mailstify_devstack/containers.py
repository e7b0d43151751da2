"""The test infrastructure in containers (testcontainers), for machines with a Docker engine:
`MAILSTIFY_TEST_DOCKER=1`. Needs the `docker` extra (`mailstify-devstack[docker]`).

Only the pytest plugin imports this module, and only when asked to and once `docker_engine` found an
engine: the default path never needs Docker nor testcontainers. Each context manager yields the same
kind of object as its local counterpart, so the fixtures and the tests do not know which one they got.

Not exercised by CI (CI has no Docker engine): the local-process backend is the tested one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
from testcontainers.community.nats import NatsContainer
from testcontainers.community.postgres import PostgresContainer
from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import wait_for_logs

from .inbox import InboxClient, Summary, summarize
from .nats import NatsServer
from .postgres import TEST_SETTINGS, PostgresServer

NATS_IMAGE = "nats:2.11-alpine"
POSTGRES_IMAGE = "postgres:18-alpine"
MAILPIT_IMAGE = "axllent/mailpit:v1.27"


@contextlib.contextmanager
def nats_server() -> Iterator[NatsServer]:
    with NatsContainer(NATS_IMAGE, jetstream=True) as container:
        yield NatsServer(container.nats_uri())


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    container = PostgresContainer(POSTGRES_IMAGE, username="postgres", password="postgres", dbname="postgres")
    # The same server settings as the local test cluster: max_connections above all (five services'
    # pools and the tests' engines exceed the image's default of 100).
    container.with_command(["postgres", *(arg for k, v in TEST_SETTINGS.items() for arg in ("-c", f"{k}={v}"))])
    with container:
        yield PostgresServer(
            port=int(container.get_exposed_port(5432)),
            host=container.get_container_host_ip(),
            user="postgres",
            password="postgres",
        )


@contextlib.contextmanager
def smtp_inbox() -> Iterator[InboxClient]:
    with DockerContainer(MAILPIT_IMAGE).with_exposed_ports(1025, 8025) as container:
        wait_for_logs(container, "accessible via", timeout=30)
        host = container.get_container_host_ip()
        yield MailpitClient(
            f"http://{host}:{container.get_exposed_port(8025)}",
            smtp_host=host,
            smtp_port=int(container.get_exposed_port(1025)),
        )


class MailpitClient(InboxClient):
    """Mailpit's API behind the dev inbox's interface. Mailpit lists newest first and keeps no SMTP
    envelope as such: the recipients are its To + Cc + Bcc (Bcc holds envelope-only recipients), the
    sender its Return-Path."""

    def messages(self) -> list[Summary]:
        listed = self._get("/api/v1/messages", params={"limit": 10_000}).json()["messages"]
        return [self._summary(entry["ID"]) for entry in reversed(listed)]

    def raw(self, message_id: str) -> bytes:
        return self._get(f"/api/v1/message/{message_id}/raw").content

    def clear(self) -> None:
        httpx.delete(f"{self.http_url}/api/v1/messages", timeout=10.0).raise_for_status()

    def _summary(self, message_id: str) -> Summary:
        detail = self._get(f"/api/v1/message/{message_id}").json()
        recipients = [a["Address"] for key in ("To", "Cc", "Bcc") for a in detail.get(key) or []]
        mail_from = (detail.get("ReturnPath") or "").strip("<>")
        return summarize(message_id, self.raw(message_id), mail_from, recipients, detail.get("Date", ""))

    def _get(self, path: str, **kwargs: object) -> httpx.Response:
        response = httpx.get(self.http_url + path, timeout=10.0, **kwargs)  # type: ignore[arg-type]
        response.raise_for_status()
        return response
