"""Stopping a mailer mid-batch loses no recipient (defect B9): on SIGTERM it starts no new SMTP
transaction, lets those in flight finish and be recorded, releases the rest of its batch (`retry`,
nak'ed at once) and exits; another replica then sends exactly those.

A real mailer process (uvicorn, as deployed) gets the signal. Its own module, hence its own NATS
server (`mailer_nats` is module-scoped), so no other test's messages share the consumer."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import SMTP as SmtpProtocol
from sqlalchemy.ext.asyncio import create_async_engine

from mailstify_contracts import CampaignContent, DeliverySucceeded, Recipient, subjects, topology
from mailstify_devstack.inprocess import until
from mailstify_devstack.net import free_port
from mailstify_messaging import OutgoingMessage, connect, ensure_topology, publish_many

from mailer.adapters.smtp_pool import SmtpPool
from mailer.config import Settings
from mailer.service_layer.ports import OutgoingMail

from .conftest import PUBLIC_URL, SECRET_KEY, deliver, new_campaign_id

pytestmark = pytest.mark.integration

RECIPIENTS = 20
POOL_SIZE = 2
DATA_SECONDS = 0.5
# Far shorter than the ~5 s the batch needs (20 mails, 2 connections, 0.5 s each): today's services
# default is shorter than a 200-message batch the same way.
GRACE_SECONDS = 3

CONTENT = CampaignContent(subject="News", from_name="Acme", from_email="news@acme.test", body_html="<p>News</p>")


@dataclass
class SlowSmtp:
    """aiosmtpd handler taking DATA_SECONDS per message; records every transaction that completed."""

    received: list[tuple[str, float]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(DATA_SECONDS)
        for rcpt in envelope.rcpt_tos:
            self.received.append((rcpt, time.monotonic()))
        return "250 2.0.0 Ok: queued"


def mailer_environment(database_url: str, nats_url: str, smtp_port: int) -> dict[str, str]:
    # Nothing of the developer's own MAILSTIFY_* (an SMTP relay...) may reach the process.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILSTIFY_", "OTEL_"))}
    return env | {
        "MAILSTIFY_DATABASE_URL": database_url,
        "MAILSTIFY_NATS_URL": nats_url,
        "MAILSTIFY_SMTP_HOST": "127.0.0.1",
        "MAILSTIFY_SMTP_PORT": str(smtp_port),
        "MAILSTIFY_SMTP_TLS": "none",
        "MAILSTIFY_SMTP_TIMEOUT": "5",
        "MAILSTIFY_SMTP_POOL_SIZE": str(POOL_SIZE),
        "MAILSTIFY_LEASE_SECONDS": "15",
        "MAILSTIFY_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
        "MAILSTIFY_PUBLIC_URL": PUBLIC_URL,
        "MAILSTIFY_SECRET_KEY": SECRET_KEY,
    }


async def ledger_statuses(database_url: str, campaign_id: str) -> dict[str, tuple[str, bool]]:
    """subscriber_id → (status, lease held)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT subscriber_id, status, lease_until FROM deliveries WHERE campaign_id = :c"),
                {"c": campaign_id},
            )
            return {row.subscriber_id: (row.status, row.lease_until is not None) for row in rows}
    finally:
        await engine.dispose()


async def publish_campaign(nats_url: str, campaign_id: str, recipients: list[Recipient]) -> None:
    nc = await connect(nats_url, name="shutdown-test")
    try:
        js = nc.jetstream()
        await ensure_topology(js, consumers=(topology.MAILER_DELIVERIES,))
        bucket = await js.key_value(topology.CAMPAIGN_CONTENT.bucket)
        await bucket.put(campaign_id, CONTENT.model_dump_json().encode())
        await publish_many(
            js,
            [
                OutgoingMessage.for_event(
                    deliver(campaign_id, r),
                    subjects.mail_deliver(campaign_id),
                    subjects.deliver_msg_id(campaign_id, r.subscriber_id),
                )
                for r in recipients
            ],
        )
    finally:
        await nc.close()


async def spawn_mailer(env: dict[str, str], log_path: Path) -> asyncio.subprocess.Process:
    """A real mailer process, as deployed."""
    with log_path.open("wb") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", "--factory", "mailer.entrypoints.app:create_app",
            "--host", "127.0.0.1", "--port", str(free_port()), "--no-access-log",
            env=env, stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip


@pytest.fixture
async def slow_smtp() -> AsyncIterator[tuple[SlowSmtp, int]]:
    """A SlowSmtp on a free loopback port: (its record, the port)."""
    smtp = SlowSmtp()
    server = await asyncio.get_running_loop().create_server(lambda: SmtpProtocol(smtp, hostname="slow.test"), "127.0.0.1", 0)
    yield smtp, server.sockets[0].getsockname()[1]
    server.close()


def campaign_recipients(campaign_id: str) -> list[Recipient]:
    return [Recipient(subscriber_id=f"{i:02d}", email=f"r{i:02d}.{campaign_id}@example.com") for i in range(RECIPIENTS)]


async def test_a_mailer_stopped_mid_batch_releases_what_it_did_not_send(
    mailer_nats, fresh_database, start_mailer, slow_smtp, tmp_path: Path
):
    smtp, smtp_port = slow_smtp
    campaign_id = new_campaign_id()
    recipients = campaign_recipients(campaign_id)
    log_path = tmp_path / "mailer.log"
    process: asyncio.subprocess.Process | None = None

    def log_tail() -> str:
        return log_path.read_text(errors="replace")[-4000:] if log_path.exists() else ""

    try:
        # The whole batch is waiting before the mailer starts: its first fetch takes all of it.
        await publish_campaign(mailer_nats.url, campaign_id, recipients)
        process = await spawn_mailer(mailer_environment(fresh_database, mailer_nats.url, smtp_port), log_path)

        async def a_few_mails_arrived() -> bool:
            assert process.returncode is None, f"mailer exited early:\n{log_tail()}"
            return len(smtp.received) >= 2 * POOL_SIZE

        await until(a_few_mails_arrived, timeout=60)  # a busy machine starts a process slowly
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=GRACE_SECONDS + 15)
        except TimeoutError:
            pytest.fail(f"the mailer did not exit after SIGTERM:\n{log_tail()}")
        sent_by_first = len(smtp.received)
        assert sent_by_first < RECIPIENTS, "the batch finished before the stop: nothing was tested"

        # What it sent is recorded `sent`; what it claimed but never sent is released (`retry`, no
        # lease), not left `sending` to expire into `unknown`.
        after_stop = await ledger_statuses(fresh_database, campaign_id)
        held = {sid: status for sid, (status, leased) in after_stop.items() if status == "sending" or leased}
        assert held == {}, f"claimed rows left behind by the stopped mailer:\n{log_tail()}"
        assert Counter(status for status, _ in after_stop.values()) == Counter(
            {"sent": sent_by_first, "retry": len(after_stop) - sent_by_first}
        )

        # Another replica takes the released messages at once (short nak delay, no lease to wait out).
        mailer = await start_mailer("127.0.0.1", smtp_port, smtp_pool_size=POOL_SIZE)

        async def everyone_has_an_outcome() -> dict[str, tuple[str, bool]] | None:
            statuses = await ledger_statuses(fresh_database, campaign_id)
            done = len(statuses) == RECIPIENTS and all(s in {"sent", "failed", "unknown"} for s, _ in statuses.values())
            return statuses if done else None

        final = await until(everyone_has_an_outcome, timeout=20)
        results = await mailer.wait_for_results(campaign_id, RECIPIENTS, timeout=10)
    finally:
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()

    assert {sid: status for sid, (status, _) in final.items()} == {r.subscriber_id: "sent" for r in recipients}
    # Exactly one SMTP transaction per recipient, over both mailers.
    assert Counter(rcpt for rcpt, _ in smtp.received) == Counter({r.email: 1 for r in recipients})
    assert all(isinstance(e, DeliverySucceeded) for e in results)
    assert sorted(e.subscriber_id for e in results) == [r.subscriber_id for r in recipients]
    # Nothing more arrives later (a duplicate on redelivery, say).
    await asyncio.sleep(1.0)
    assert len(smtp.received) == RECIPIENTS


async def test_after_stop_starting_the_pool_finishes_what_is_in_flight_and_starts_nothing():
    smtp = SlowSmtp()
    smtp_server = await asyncio.get_running_loop().create_server(
        lambda: SmtpProtocol(smtp, hostname="slow.test"), "127.0.0.1", 0
    )
    port = smtp_server.sockets[0].getsockname()[1]
    pool = SmtpPool(
        Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", smtp_host="127.0.0.1", smtp_port=port,
                 smtp_pool_size=1, smtp_timeout=5, lease_seconds=15)
    )  # fmt: skip
    mails = [OutgoingMail("news@acme.test", f"r{i}@example.com", b"Subject: hi\r\n\r\nhi\r\n") for i in range(4)]
    try:
        sending = asyncio.create_task(pool.send_all(mails, start_before=time.monotonic() + 60))
        await asyncio.sleep(DATA_SECONDS / 2)  # the first mail is in its DATA phase
        pool.stop_starting()
        attempts = await asyncio.wait_for(sending, timeout=5)
    finally:
        await pool.aclose()
        smtp_server.close()

    assert [(a.attempted, a.code) for a in attempts] == [(True, 250), (False, None), (False, None), (False, None)]
    assert [rcpt for rcpt, _ in smtp.received] == ["r0@example.com"]


async def test_a_mailer_killed_mid_batch_leaves_only_what_was_on_the_wire_unknown(
    mailer_nats, fresh_database, start_mailer, slow_smtp, tmp_path: Path
):
    """SIGKILL, so nothing is released: the claims the dead mailer had not put on the wire yet are
    taken over by another replica once their lease runs out (within 30 s of the kill), and only the
    messages on the wire at the kill (at most the pool size) end `unknown`. Nobody gets two."""
    smtp, smtp_port = slow_smtp
    campaign_id = new_campaign_id()
    recipients = campaign_recipients(campaign_id)
    log_path = tmp_path / "mailer.log"
    process: asyncio.subprocess.Process | None = None
    try:
        await publish_campaign(mailer_nats.url, campaign_id, recipients)
        process = await spawn_mailer(mailer_environment(fresh_database, mailer_nats.url, smtp_port), log_path)

        async def a_few_mails_arrived() -> bool:
            assert process.returncode is None, f"mailer exited early:\n{log_path.read_text(errors='replace')[-4000:]}"
            return len(smtp.received) >= 2 * POOL_SIZE

        await until(a_few_mails_arrived, timeout=60)
        process.kill()
        killed_at = time.monotonic()
        await process.wait()
        assert len(smtp.received) < RECIPIENTS, "the batch finished before the kill: nothing was tested"

        await start_mailer("127.0.0.1", smtp_port, smtp_pool_size=POOL_SIZE, smtp_timeout=5)

        async def everyone_has_an_outcome() -> dict[str, tuple[str, bool]] | None:
            statuses = await ledger_statuses(fresh_database, campaign_id)
            done = len(statuses) == RECIPIENTS and all(s in {"sent", "failed", "unknown"} for s, _ in statuses.values())
            return statuses if done else None

        final = await until(everyone_has_an_outcome, timeout=90)
    finally:
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()

    statuses = Counter(status for status, _ in final.values())
    unknown = {sid for sid, (status, _) in final.items() if status == "unknown"}
    assert set(statuses) <= {"sent", "unknown"}, statuses
    assert len(unknown) <= POOL_SIZE, f"{len(unknown)} unknown after the kill, more than the pool's {POOL_SIZE}"
    received = Counter(rcpt for rcpt, _ in smtp.received)
    # Nobody twice: the unknown ones were on the wire (the server may have them), never sent again.
    assert max(received.values()) == 1, [r for r, n in received.items() if n > 1]
    sent = {r.email for r in recipients if final[r.subscriber_id][0] == "sent"}
    assert sent <= set(received) and len(sent) == RECIPIENTS - len(unknown)
    last_sent = max(at for rcpt, at in smtp.received if rcpt in sent)
    assert last_sent - killed_at <= 30, f"the last recipient was sent {last_sent - killed_at:.1f} s after the kill"
    print(f"killed mid-batch: {len(unknown)} unknown (pool {POOL_SIZE}), last of the others sent "
          f"{last_sent - killed_at:.1f} s after the kill")  # fmt: skip
