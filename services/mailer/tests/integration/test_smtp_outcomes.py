"""Ambiguous SMTP outcomes (B5), delivery-path refusals (B6) and the retry schedule (B8), against
real PostgreSQL, NATS JetStream and aiosmtpd servers scripted to misbehave."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiosmtpd.smtp import SMTP as SmtpProtocol
from aiosmtpd.smtp import AuthResult

from mailstify_contracts import (
    CampaignContent,
    DeliveryDeferred,
    DeliveryFailed,
    DeliveryOutcomeUnknown,
    DeliverySucceeded,
    Recipient,
)
from mailstify_devstack.inprocess import running_service, until
from mailstify_servicekit import create_service_app

from mailer.bootstrap import bootstrap
from mailer.config import Settings

from .conftest import PUBLIC_URL, SECRET_KEY, MailerUnderTest, deliver, new_campaign_id

pytestmark = pytest.mark.integration

CONTENT = CampaignContent(subject="Hello", from_name="Acme", from_email="news@acme.test", body_html="<p>Hi</p>")
SMTP_TIMEOUT = 2.0
# Short enough for a test, long enough that "never retried" is observable.
SCHEDULE = "1s,1s"


@pytest.fixture
async def start_mailer(mailer_nats, fresh_database) -> AsyncIterator[Callable[..., Awaitable[MailerUnderTest]]]:
    """Like conftest's `start_mailer`, with a short retry schedule and smtp_timeout. Until
    bootstrap.py wires `settings.retry_schedule` / `settings.deliveries_consumer` itself, the
    schedule is applied here (a no-op once it does)."""
    async with contextlib.AsyncExitStack() as running:

        async def start(smtp_port: int, **overrides: object) -> MailerUnderTest:
            options: dict[str, object] = {
                "smtp_timeout": SMTP_TIMEOUT,
                "lease_seconds": 15.0,
                "retry_schedule": SCHEDULE,
                **overrides,
            }
            settings = Settings(
                database_url=fresh_database,
                nats_url=mailer_nats.url,
                smtp_host="127.0.0.1",
                smtp_port=smtp_port,
                public_url=PUBLIC_URL,
                secret_key=SECRET_KEY,
                **options,
            )
            spec = bootstrap(settings)
            spec.consumers = (settings.deliveries_consumer,)
            wire = spec.wire

            def wire_with_schedule(connections):
                wiring = wire(connections)
                service = wiring.dependencies.deliveries
                if service._policy.retry_schedule != settings.retry_schedule:
                    service._policy = dataclasses.replace(service._policy, retry_schedule=settings.retry_schedule)
                return wiring

            spec.wire = wire_with_schedule
            app = create_service_app(spec)
            await running.enter_async_context(running_service(app))
            return MailerUnderTest(app.state.runtime, settings)

        yield start


@dataclass
class MisbehavingHandler:
    """Counts every step of every transaction; misbehaves as told."""

    # After the data arrived: "silent" sleeps past the mailer's smtp_timeout, "disconnect" drops the connection.
    after_data: str | None = None
    # Replies to MAIL FROM, one per transaction, before it accepts.
    mail_replies: list[str] = field(default_factory=list)
    # Replies to RCPT TO, one per transaction; `rcpt_always` answers every RCPT (when set).
    rcpt_always: str | None = None
    mails: int = 0
    rcpts: int = 0
    data: list[tuple[str, bytes]] = field(default_factory=list)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.mails += 1
        if self.mail_replies:
            return self.mail_replies.pop(0)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpts += 1
        if self.rcpt_always:
            return self.rcpt_always
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        for rcpt in envelope.rcpt_tos:
            self.data.append((rcpt, envelope.content))
        if self.after_data == "silent":
            await asyncio.sleep(SMTP_TIMEOUT + 3)
        elif self.after_data == "disconnect":
            server.transport.close()
        return "250 2.0.0 Ok: queued"

    def received_by(self, address: str) -> list[bytes]:
        return [content for rcpt, content in self.data if rcpt == address]


@pytest.fixture
async def smtp_server() -> AsyncIterator[Callable[..., Awaitable[int]]]:
    servers = []

    async def serve(handler: MisbehavingHandler, **protocol_options: object) -> int:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SmtpProtocol(handler, hostname="misbehaving.test", **protocol_options), "127.0.0.1", 0
        )
        servers.append(server)
        return server.sockets[0].getsockname()[1]

    yield serve
    for server in servers:
        server.close()


async def _settle(mailer: MailerUnderTest, sequences: list[int], timeout: float = 20.0) -> None:
    async def consumed():
        return await mailer.consumed(sequences)

    await until(consumed, timeout)


# B5 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("after_data", ["silent", "disconnect"])
async def test_no_reply_after_the_data_is_unknown_and_never_resent(start_mailer, smtp_server, after_data):
    handler = MisbehavingHandler(after_data=after_data)
    mailer = await start_mailer(await smtp_server(handler))
    campaign_id = new_campaign_id()
    recipient = Recipient(subscriber_id="1", email=f"ana.{campaign_id}@example.com")
    await mailer.put_content(campaign_id, CONTENT)
    sequences = await mailer.publish([deliver(campaign_id, recipient)])

    (event,) = await mailer.wait_for_results(campaign_id, 1)
    assert isinstance(event, DeliveryOutcomeUnknown)
    assert event.reason.startswith("outcome unknown: no reply after the message data was sent")
    assert (event.subscriber_id, event.email) == ("1", recipient.email)
    await _settle(mailer, sequences)

    # Past every delay of the schedule (and the silent server's sleep): no second transaction.
    await asyncio.sleep(SMTP_TIMEOUT + 4)
    assert len(handler.received_by(recipient.email)) == 1
    assert handler.mails == 1
    row = (await mailer.ledger(campaign_id))["1"]
    assert (row.status, row.attempts) == ("unknown", 1)
    assert [type(e) for e in await mailer.results(campaign_id)] == [DeliveryOutcomeUnknown]

    # A redelivered copy finds the row terminal: acked without sending.
    copies = await mailer.publish([deliver(campaign_id, recipient)], msg_id_prefix="copy")
    await _settle(mailer, copies)
    assert handler.mails == 1 and len(handler.received_by(recipient.email)) == 1


# B6 ----------------------------------------------------------------------------------------------


async def test_refused_mail_from_is_deferred_not_charged_to_the_recipients(start_mailer, smtp_server):
    # The relay refuses the sender on the first two transactions (both recipients of the first batch).
    handler = MisbehavingHandler(mail_replies=["550 5.7.1 Sender address rejected"] * 2)
    mailer = await start_mailer(await smtp_server(handler), retry_schedule="2s,2s")
    campaign_id = new_campaign_id()
    recipients = [Recipient(subscriber_id=str(i), email=f"s{i}.{campaign_id}@example.com") for i in (1, 2)]
    await mailer.put_content(campaign_id, CONTENT)
    sequences = await mailer.publish([deliver(campaign_id, r) for r in recipients])

    async def deferred_and_retry():
        events = await mailer.results(campaign_id)
        ledger = await mailer.ledger(campaign_id)
        if any(isinstance(e, DeliveryDeferred) for e in events) and ledger.get("1") and ledger["1"].status != "sending":
            return events, ledger
        return None

    events, ledger = await until(deferred_and_retry, 10)
    # The first attempt: no recipient failed, none hard-bounced, the campaign is told why.
    assert not [e for e in events if isinstance(e, DeliveryFailed)]
    assert all(row.status in ("retry", "sending", "sent") for row in ledger.values())
    deferred = [e for e in events if isinstance(e, DeliveryDeferred)]
    assert deferred[0].smtp_code == 550
    assert "MAIL FROM" in deferred[0].reason and "Sender address rejected" in deferred[0].reason

    # Redelivered (the relay accepts now): each recipient gets exactly one mail.
    results = await mailer.wait_for_results(campaign_id, len(deferred) + 2)
    await _settle(mailer, sequences)
    outcomes = [e for e in results if not isinstance(e, DeliveryDeferred)]
    assert sorted((type(e), e.subscriber_id) for e in outcomes) == [(DeliverySucceeded, "1"), (DeliverySucceeded, "2")]
    assert all(len(handler.received_by(r.email)) == 1 for r in recipients)
    # One DeliveryDeferred per campaign and batch: the two refusals came in at most two batches.
    assert 1 <= len(deferred) <= 2
    assert {row.status for row in (await mailer.ledger(campaign_id)).values()} == {"sent"}


async def test_auth_failure_is_deferred_and_finally_fails_without_a_bounce(start_mailer, smtp_server):
    handler = MisbehavingHandler()
    port = await smtp_server(
        handler, auth_require_tls=False, authenticator=lambda *args: AuthResult(success=False, handled=False)
    )
    mailer = await start_mailer(port, smtp_username="mailer", smtp_password="wrong")
    campaign_id = new_campaign_id()
    recipient = Recipient(subscriber_id="1", email=f"ana.{campaign_id}@example.com")
    await mailer.put_content(campaign_id, CONTENT)
    sequences = await mailer.publish([deliver(campaign_id, recipient)])

    async def failed():
        events = await mailer.results(campaign_id)
        return events if any(isinstance(e, DeliveryFailed) for e in events) else None

    events = await until(failed, 20)
    await _settle(mailer, sequences)
    deferred = [e for e in events if isinstance(e, DeliveryDeferred)]
    (failure,) = [e for e in events if isinstance(e, DeliveryFailed)]
    # Deferred on each of the first two deliveries, failed (not permanently, no bounce) on the third.
    assert len(deferred) == 2 and all(e.smtp_code == 535 for e in deferred)
    assert (failure.permanent, failure.hard_bounce) == (False, False)
    assert failure.reason.startswith("retries exhausted: delivery path: SMTP session: 535")
    assert handler.mails == 0
    row = (await mailer.ledger(campaign_id))["1"]
    assert (row.status, row.attempts) == ("failed", 3)


# B8 ----------------------------------------------------------------------------------------------


async def test_4xx_is_retried_along_the_schedule_then_fails_not_permanently(start_mailer, smtp_server):
    handler = MisbehavingHandler(rcpt_always="451 4.3.0 Try again later")
    mailer = await start_mailer(await smtp_server(handler))
    campaign_id = new_campaign_id()
    recipient = Recipient(subscriber_id="1", email=f"ana.{campaign_id}@example.com")
    await mailer.put_content(campaign_id, CONTENT)
    sequences = await mailer.publish([deliver(campaign_id, recipient)])

    (failure,) = await mailer.wait_for_results(campaign_id, 1, timeout=20)
    await _settle(mailer, sequences)
    assert isinstance(failure, DeliveryFailed)
    assert (failure.permanent, failure.hard_bounce, failure.smtp_code) == (False, False, 451)
    assert failure.reason.startswith("retries exhausted")
    # len(schedule) + 1 deliveries, each one transaction; nothing after the last.
    await asyncio.sleep(2.5)
    assert handler.rcpts == len(SCHEDULE.split(",")) + 1 == 3
    row = (await mailer.ledger(campaign_id))["1"]
    assert (row.status, row.attempts) == ("failed", 3)
