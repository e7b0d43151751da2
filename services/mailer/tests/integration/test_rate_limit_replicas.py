"""The send rate limit with three real mailer processes (uvicorn, as deployed) sharing one database
and one durable consumer, against an SMTP server on loopback that notes when each message arrives:
- MAILSTIFY_RATE_LIMIT=30 holds within 10% over a minute (issue 8's acceptance);
- a domain whose server answers 421 4.7.0 for a while is slowed down by every replica, recovers,
  and every recipient still arrives exactly once.

Its own module, hence its own NATS server (`mailer_nats` is module-scoped)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP as SmtpProtocol

from mailstify_contracts import CampaignContent, Recipient
from mailstify_devstack.inprocess import until
from mailstify_devstack.net import free_ports
from mailstify_devstack.processes import ProcessSpec, RunningProcess, stop_all
from mailstify_devstack.services import local_url, wait_until_ready

from .conftest import PUBLIC_URL, SECRET_KEY, new_campaign_id, publish_campaign_directly

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

REPLICAS = 3
CONTENT = CampaignContent(subject="News", from_name="Acme", from_email="news@acme.test", body_html="<p>News</p>")
_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass
class CountingSmtp:
    """aiosmtpd handler noting each accepted message's recipient, Message-ID and arrival time; RCPT
    to a domain in `throttling` is answered 421 4.7.0 until `throttle_until` (from its first RCPT)."""

    throttling: str | None = None
    throttle_seconds: float = 0.0
    received: list[tuple[str, bytes, float]] = field(default_factory=list)
    refused: list[float] = field(default_factory=list)
    _throttle_until: float | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.throttling and address.endswith("@" + self.throttling):
            now = time.monotonic()
            if self._throttle_until is None:
                self._throttle_until = now + self.throttle_seconds
            if now < self._throttle_until:
                self.refused.append(now)
                return "421 4.7.0 Too many messages, slow down"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        found = _MESSAGE_ID.search(envelope.content)
        for rcpt in envelope.rcpt_tos:
            self.received.append((rcpt, found.group(1) if found else b"", time.monotonic()))
        return "250 2.0.0 Ok: queued"

    def times(self) -> list[float]:
        return sorted(t for _, _, t in self.received)


def count_between(times: list[float], start: float, end: float) -> int:
    return sum(start <= t < end for t in times)


@contextlib.asynccontextmanager
async def smtp_server(handler: CountingSmtp) -> AsyncIterator[int]:
    server = await asyncio.get_running_loop().create_server(
        lambda: SmtpProtocol(handler, hostname="counting.test"), "127.0.0.1", 0
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@contextlib.contextmanager
def mailers(database_url: str, nats_url: str, smtp_port: int, logs: Path, **settings: str):
    """REPLICAS mailer processes, all ready; stopped (by PID) on exit."""
    ports = free_ports(REPLICAS)
    env = {
        "MAILSTIFY_DATABASE_URL": database_url,
        "MAILSTIFY_NATS_URL": nats_url,
        "MAILSTIFY_SMTP_HOST": "127.0.0.1",
        "MAILSTIFY_SMTP_PORT": str(smtp_port),
        "MAILSTIFY_SMTP_TLS": "none",
        "MAILSTIFY_SMTP_TIMEOUT": "5",
        "MAILSTIFY_SMTP_POOL_SIZE": "4",
        # Small batches: at 10/s per replica a batch of 20 is two seconds of sending.
        "MAILSTIFY_BATCH_SIZE": "20",
        "MAILSTIFY_PUBLIC_URL": PUBLIC_URL,
        "MAILSTIFY_SECRET_KEY": SECRET_KEY,
        **{f"MAILSTIFY_{name.upper()}": value for name, value in settings.items()},
    }
    processes = [
        RunningProcess.start(
            ProcessSpec(
                f"mailer-{i}",
                [sys.executable, "-m", "uvicorn", "--factory", "mailer.entrypoints.app:create_app",
                 "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],  # fmt: skip
                env,
                unset_prefixes=("MAILSTIFY_", "OTEL_"),
            ),
            logs / f"mailer-{i}.log",
        )
        for i, port in enumerate(ports)
    ]
    try:
        problems = wait_until_ready({f"mailer-{i}": local_url(p) for i, p in enumerate(ports)}, 60.0)
        assert not problems, f"mailers not ready: {problems}\n" + "\n".join(p.log_tail() for p in processes)
        yield processes
    finally:
        stop_all(processes)


def assert_each_once(handler: CountingSmtp, recipients: list[Recipient]) -> None:
    by_rcpt = Counter(rcpt for rcpt, _, _ in handler.received)
    assert {r.email for r in recipients} == set(by_rcpt), "someone never arrived"
    assert [rcpt for rcpt, n in by_rcpt.items() if n > 1] == [], "someone arrived twice"
    assert len({mid for _, mid, _ in handler.received}) == len(recipients)


async def test_three_replicas_hold_the_overall_limit_over_a_minute(mailer_nats, fresh_database, tmp_path, capsys):
    limit, window = 30.0, 60.0
    handler = CountingSmtp()
    campaign_id = new_campaign_id()
    # More than a minute's worth, so the replicas are never short of work in the window.
    recipients = [Recipient(subscriber_id=f"{i:05d}", email=f"r{i:05d}@example.com") for i in range(2_000)]
    async with smtp_server(handler) as smtp_port:
        with mailers(fresh_database, mailer_nats.url, smtp_port, tmp_path, rate_limit=str(limit)) as processes:
            await publish_campaign_directly(mailer_nats.url, campaign_id, CONTENT, recipients)

            async def all_arrived() -> bool:
                assert all(p.alive() for p in processes), "\n".join(p.log_tail() for p in processes)
                return len(handler.received) >= len(recipients)

            await until(all_arrived, timeout=120.0, interval=0.5)
            await asyncio.sleep(1.0)  # nothing more comes
    times = handler.times()
    first = times[0]
    in_window = count_between(times, first, first + window)
    # Every second of the minute, not only the total: a burst then a stall would also average out.
    per_10s = [count_between(times, first + s, first + s + 10) for s in range(0, int(window), 10)]
    with capsys.disabled():
        print(
            f"\n{REPLICAS} mailer processes, MAILSTIFY_RATE_LIMIT={limit}: {in_window} emails in the first "
            f"{window:.0f}s ({in_window / window:.2f}/s), per 10 s {per_10s}; "
            f"all {len(recipients)} in {times[-1] - first:.1f}s"
        )
    assert in_window == pytest.approx(limit * window, rel=0.10)
    assert all(count == pytest.approx(limit * 10, rel=0.2) for count in per_10s)
    assert_each_once(handler, recipients)


async def test_a_throttling_domain_slows_every_replica_then_recovers(mailer_nats, fresh_database, tmp_path, capsys):
    limit, hold, recovery = 20.0, 6.0, 4.0
    handler = CountingSmtp(throttling="slow.test", throttle_seconds=2.0)
    campaign_id = new_campaign_id()
    recipients = [Recipient(subscriber_id=f"{i:04d}", email=f"r{i:04d}@slow.test") for i in range(400)]
    async with smtp_server(handler) as smtp_port:
        with mailers(
            fresh_database,
            mailer_nats.url,
            smtp_port,
            tmp_path,
            rate_limit_domains=f"slow.test={limit}",
            throttle_hold_seconds=str(hold),
            throttle_recovery_seconds=str(recovery),
            retry_schedule=",".join(["1s"] * 20),
        ) as processes:
            await publish_campaign_directly(mailer_nats.url, campaign_id, CONTENT, recipients)

            async def all_arrived() -> bool:
                assert all(p.alive() for p in processes), "\n".join(p.log_tail() for p in processes)
                return len(handler.received) >= len(recipients)

            await until(all_arrived, timeout=120.0, interval=0.5)
            await asyncio.sleep(1.0)
    times = handler.times()
    refused_from, refused_until = handler.refused[0], handler.refused[-1]
    # Slowed (halved once or twice) by every replica: the three together stay under half the limit.
    slowed = count_between(times, refused_until + 1.0, refused_from + hold) / (refused_from + hold - refused_until - 1.0)
    # Once recovered (a halving or two, held `hold`, climbing half the limit every `recovery` s).
    recovered_from = refused_until + hold + 1.5 * recovery / 0.5
    recovered = count_between(times, recovered_from, times[-1]) / (times[-1] - recovered_from)
    with capsys.disabled():
        print(
            f"\n{REPLICAS} mailers, slow.test={limit}/s answering 421 4.7.0 for 2 s: {len(handler.refused)} refused; "
            f"{slowed:.1f}/s while slowed, {recovered:.1f}/s once recovered; all {len(recipients)} in "
            f"{times[-1] - refused_from:.1f}s"
        )
    assert slowed <= limit / 2 * 1.15
    assert recovered == pytest.approx(limit, rel=0.15)
    assert_each_once(handler, recipients)
