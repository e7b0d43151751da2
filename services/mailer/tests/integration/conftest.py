"""Helpers for the mailer's integration tests: a mailer app booted in-process against real
PostgreSQL and NATS, an SMTP server whose replies a test scripts, and readers of the RESULT stream
and the ledger."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import SMTP as SmtpProtocol
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from mailstify_contracts import (
    CampaignContent,
    DeliverEmail,
    DeliveriesSucceeded,
    DeliverySucceeded,
    Event,
    Recipient,
    subjects,
    topology,
)
from mailstify_devstack import nats as devstack_nats
from mailstify_devstack.inbox import AdvertisesPipelining
from mailstify_devstack.inprocess import running_service, stream_events, until
from mailstify_devstack.nats import NatsServer
from mailstify_messaging import OutgoingMessage, connect, ensure_topology, publish_many
from mailstify_servicekit import Runtime, create_service_app

from mailer.bootstrap import bootstrap
from mailer.config import Settings

PUBLIC_URL = "http://mail.example.test"
SECRET_KEY = "integration-secret"


@dataclass
class MailerUnderTest:
    runtime: Runtime
    settings: Settings

    @property
    def js(self) -> JetStreamContext:
        return self.runtime.jetstream()

    async def put_content(self, campaign_id: str, content: CampaignContent) -> None:
        bucket = await self.js.key_value(topology.CAMPAIGN_CONTENT.bucket)
        await bucket.put(campaign_id, content.model_dump_json().encode())

    async def publish(self, deliveries: list[DeliverEmail], msg_id_prefix: str | None = None) -> list[int]:
        """Publish DeliverEmail events like the dispatcher (or, with a prefix, as copies under new msg ids)."""
        messages = [
            OutgoingMessage.for_event(
                d,
                subjects.mail_deliver(d.campaign_id),
                subjects.deliver_msg_id(d.campaign_id, d.recipient.subscriber_id)
                if msg_id_prefix is None
                else f"{msg_id_prefix}:{d.campaign_id}:{d.recipient.subscriber_id}",
            )
            for d in deliveries
        ]
        return [ack.seq for ack in await publish_many(self.js, messages)]

    async def consumed(self, sequences: list[int]) -> bool:
        """The MAIL stream is a work queue: an acked message is gone from it."""
        for seq in sequences:
            try:
                await self.js.get_msg(topology.MAIL_STREAM.name, seq)
                return False
            except NotFoundError:
                continue
        return True

    async def results(self, campaign_id: str) -> list:
        """Every outcome of the campaign on the RESULT stream, in stream order, one per recipient: the
        deliveries of a DeliveriesSucceeded as the DeliverySucceeded each stands for."""
        events = await stream_events(self.js, topology.RESULT_STREAM.name, subjects.MAIL_RESULT_ALL)
        return [one for e in events if getattr(e, "campaign_id", None) == campaign_id for one in each_outcome(e)]

    async def wait_for_results(self, campaign_id: str, count: int, timeout: float = 20.0) -> list:
        async def enough():
            events = await self.results(campaign_id)
            return events if len(events) >= count else None

        return await until(enough, timeout)

    async def ledger(self, campaign_id: str) -> dict[str, sa.Row]:
        async with self.runtime.engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT * FROM deliveries WHERE campaign_id = :c ORDER BY subscriber_id"), {"c": campaign_id}
            )
            return {row.subscriber_id: row for row in rows}

    async def execute(self, sql: str, **params: object) -> None:
        async with self.runtime.engine.begin() as conn:
            await conn.execute(sa.text(sql), params)


def each_outcome(event: Event) -> list[Event]:
    if not isinstance(event, DeliveriesSucceeded):
        return [event]
    common = {"account_id": event.account_id, "campaign_id": event.campaign_id, "occurred_at": event.occurred_at}
    return [DeliverySucceeded(**common, **delivery.model_dump()) for delivery in event.deliveries]


@pytest.fixture(scope="module")
def mailer_nats(mailstify_session_dir: Path) -> Iterator[NatsServer]:
    """A NATS server of the mailer tests' own. Mailers share one durable consumer: on the session's
    server, the mailer of a `mailstify_stack` started by another test would take these tests'
    deliveries (and send them to its own SMTP server)."""
    directory = mailstify_session_dir / f"mailer-nats-{uuid.uuid4().hex[:8]}"
    with devstack_nats.running(directory / "store", directory / "nats.log") as server:
        yield server


@pytest.fixture
async def start_mailer(mailer_nats, fresh_database) -> AsyncIterator[Callable[..., Awaitable[MailerUnderTest]]]:
    """Boot a mailer app (one at a time: replicas share the durable consumer) on a fresh database."""
    async with contextlib.AsyncExitStack() as running:

        async def start(smtp_host: str, smtp_port: int, **overrides: object) -> MailerUnderTest:
            options: dict[str, object] = {
                "smtp_timeout": 5.0,
                "lease_seconds": 15.0,
                # Retries within a test's patience (the default schedule spans ≥ 42 minutes).
                "retry_schedule": "1s,1s,1s,2s,2s,2s",
                **overrides,
            }
            settings = Settings(
                database_url=fresh_database,
                nats_url=mailer_nats.url,
                smtp_host=smtp_host,
                smtp_port=smtp_port,
                public_url=PUBLIC_URL,
                secret_key=SECRET_KEY,
                **options,
            )
            app = create_service_app(bootstrap(settings))
            await running.enter_async_context(running_service(app))
            return MailerUnderTest(app.state.runtime, settings)

        yield start


@dataclass
class ScriptedHandler(AdvertisesPipelining):
    """aiosmtpd handler: answers RCPT per address from a script of replies, then accepts; offers
    PIPELINING, so the mailer writes MAIL, RCPT and DATA at once (test_smtp_outcomes' servers do not)."""

    replies: dict[str, list[str]] = field(default_factory=dict)
    received: list[tuple[str, bytes]] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        script = self.replies.get(address)
        if script:
            reply = script.pop(0)
            if not reply.startswith("250"):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        for rcpt in envelope.rcpt_tos:
            self.received.append((rcpt, envelope.content))
        return "250 2.0.0 Ok: queued"

    def received_by(self, address: str) -> list[bytes]:
        return [content for rcpt, content in self.received if rcpt == address]


@pytest.fixture
async def scripted_smtp() -> AsyncIterator[tuple[ScriptedHandler, int]]:
    handler = ScriptedHandler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SmtpProtocol(handler, hostname="scripted.test"), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield handler, port
    server.close()


def new_campaign_id() -> str:
    return f"cmp{uuid.uuid4().hex[:12]}"


def deliver(campaign_id: str, recipient: Recipient, account_id: str = "acc-1") -> DeliverEmail:
    return DeliverEmail(account_id=account_id, campaign_id=campaign_id, recipient=recipient, content_key=campaign_id)


async def publish_campaign_directly(
    nats_url: str, campaign_id: str, content: CampaignContent, recipients: list[Recipient]
) -> None:
    """The campaign's content and one DeliverEmail per recipient, as the dispatcher would publish
    them, for mailers running as processes of their own (no in-process runtime to borrow)."""
    nc = await connect(nats_url, name="mailer-test-publisher")
    try:
        js = nc.jetstream()
        await ensure_topology(js, consumers=(topology.MAILER_DELIVERIES,))
        bucket = await js.key_value(topology.CAMPAIGN_CONTENT.bucket)
        await bucket.put(campaign_id, content.model_dump_json().encode())
        messages = [
            OutgoingMessage.for_event(
                deliver(campaign_id, r),
                subjects.mail_deliver(campaign_id),
                subjects.deliver_msg_id(campaign_id, r.subscriber_id),
            )
            for r in recipients
        ]
        await publish_many(js, messages)
    finally:
        await nc.close()
