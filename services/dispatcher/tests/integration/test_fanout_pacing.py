"""Issue 8's bounded backlog and dispatcher crash, against real PostgreSQL and NATS:
- the fan-out keeps the MAIL work queue under its window (plus one page) while nobody drains it,
  keeps its send request alive meanwhile (not redelivered), and completes once a consumer drains it;
- a real dispatcher process SIGKILLed mid-fan-out of 20,000 recipients: a new process resumes the
  fan-out within 30 s of the kill, and MAIL ends with exactly one message per recipient.

Its own NATS server (module-scoped): the window counts every message of the MAIL stream, and the
drain needs the mailers' durable, so no other test's messages or mailer may share the stream."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import nats
import pytest
from fastapi import Request
from nats.js import JetStreamContext

from mailstify_contracts import CampaignContent, CampaignSendRequested, DeliverEmail, decode_event, subjects, topology
from mailstify_devstack import nats as devstack_nats
from mailstify_devstack.inprocess import running_service, serve_app, until
from mailstify_devstack.nats import NatsServer
from mailstify_devstack.net import free_port
from mailstify_messaging import OutgoingMessage, ensure_topology, publish

from dispatcher.config import Settings
from dispatcher.entrypoints.app import create_app

from .conftest import TOKEN, StubAudience, completions_of, deliver_emails_of, forget_campaign

pytestmark = pytest.mark.integration

CONTENT = CampaignContent(subject="Hi", from_name="Team", from_email="team@example.com", body_html="<p>Hi</p>")


@pytest.fixture(scope="module")
def own_nats(mailstify_session_dir: Path) -> Iterator[NatsServer]:
    directory = mailstify_session_dir / f"dispatcher-nats-{uuid.uuid4().hex[:8]}"
    with devstack_nats.running(directory / "store", directory / "nats.log") as server:
        yield server


@pytest.fixture
async def own_js(own_nats: NatsServer) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(own_nats.url)
    try:
        js = nc.jetstream()
        # The streams exist before any service boots: the tests watch MAIL from the start.
        await ensure_topology(js, consumers=(), buckets=())
        yield js
    finally:
        await nc.close()


async def mail_backlog(js: JetStreamContext) -> int:
    return (await js.stream_info(topology.MAIL_STREAM.name)).state.messages


def send_request(account: str, list_id: str) -> CampaignSendRequested:
    return CampaignSendRequested(account_id=account, campaign_id=uuid.uuid4().hex, list_id=list_id, content=CONTENT)


@contextlib.asynccontextmanager
async def largest_backlog(js: JetStreamContext) -> AsyncIterator[list[int]]:
    """Samples MAIL's message count every 20 ms meanwhile; yields [the largest seen so far]."""
    largest = [0]

    async def sample() -> None:
        while True:
            largest[0] = max(largest[0], await mail_backlog(js))
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    try:
        yield largest
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler


WINDOW = 50
PAGE = 20
RECIPIENTS = 2000


async def test_the_mail_backlog_stays_under_the_window_until_a_consumer_drains_it(
    own_nats: NatsServer, own_js: JetStreamContext, fresh_database: str
) -> None:
    js = own_js
    account = f"acct-{uuid.uuid4().hex[:8]}"
    audience = StubAudience(account, "list-window", range(1, RECIPIENTS + 1))
    request = send_request(account, "list-window")
    settings_kwargs = {"fanout_window": WINDOW, "fanout_page_size": PAGE, "fanout_ack_wait_seconds": 3}
    try:
        async with serve_app(audience.app) as audience_url, largest_backlog(js) as largest:
            settings = Settings(
                database_url=fresh_database,
                nats_url=own_nats.url,
                audience_url=audience_url,
                internal_token=TOKEN,
                **settings_kwargs,
            )
            async with running_service(create_app(settings)):
                await publish(js, OutgoingMessage.for_event(request, subjects.CAMPAIGN_SEND_REQUESTED))

                async def window_reached() -> bool:
                    return await mail_backlog(js) >= WINDOW

                await until(window_reached, timeout=30)
                # Nobody drains MAIL: the fan-out holds for longer than its request's ack wait (3 s),
                # and neither fetches more nor loses its request to a redelivery.
                await asyncio.sleep(7)
                held = await mail_backlog(js)
                assert WINDOW <= held <= WINDOW + PAGE - 1
                assert len(audience.calls) == -(-held // PAGE)
                assert await completions_of(js, request.campaign_id) == []
                consumer = await js.consumer_info(topology.CAMPAIGN_STREAM.name, topology.DISPATCHER_SEND_REQUESTS.durable)
                assert (consumer.num_ack_pending, consumer.num_redelivered) == (1, 0)

                # A mailer-like consumer drains it, slower than the fan-out could publish.
                await ensure_topology(js, streams=(), consumers=(topology.MAILER_DELIVERIES,), buckets=())
                drained = await js.pull_subscribe_bind(topology.MAILER_DELIVERIES.durable, stream=topology.MAIL_STREAM.name)
                taken: list[tuple[str, DeliverEmail]] = []
                deadline = time.monotonic() + 120
                while len(taken) < RECIPIENTS and time.monotonic() < deadline:
                    with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
                        for msg in await drained.fetch(10, timeout=1):
                            event = decode_event(msg.data)
                            assert isinstance(event, DeliverEmail)
                            taken.append((msg.headers["Nats-Msg-Id"], event))
                            await msg.ack_sync()
                await drained.unsubscribe()
                await js.delete_consumer(topology.MAIL_STREAM.name, topology.MAILER_DELIVERIES.durable)

                (completed,) = await until(lambda: completions_of(js, request.campaign_id), timeout=30)
                assert largest[0] <= WINDOW + PAGE - 1, f"MAIL held {largest[0]} messages at once"
    finally:
        await forget_campaign(js, request.campaign_id)

    assert completed.total == RECIPIENTS
    assert len(taken) == RECIPIENTS
    assert sorted(int(e.recipient.subscriber_id) for _, e in taken) == list(range(1, RECIPIENTS + 1))
    assert {msg_id for msg_id, _ in taken} == {
        subjects.deliver_msg_id(request.campaign_id, str(i)) for i in range(1, RECIPIENTS + 1)
    }


CRASH_RECIPIENTS = 20_000
CRASH_PAGE = 100
# The audience answers each page this much later: 200 pages take long enough to be killed in.
PAGE_DELAY_SECONDS = 0.05
RESUME_WITHIN_SECONDS = 30


def dispatcher_environment(database_url: str, nats_url: str, audience_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILSTIFY_", "OTEL_"))}
    return env | {
        "MAILSTIFY_DATABASE_URL": database_url,
        "MAILSTIFY_NATS_URL": nats_url,
        "MAILSTIFY_AUDIENCE_URL": audience_url,
        "MAILSTIFY_INTERNAL_TOKEN": TOKEN,
        "MAILSTIFY_FANOUT_PAGE_SIZE": str(CRASH_PAGE),
        # Every log line reaches the file before a kill, for the failure message.
        "PYTHONUNBUFFERED": "1",
    }


async def start_dispatcher(env: dict[str, str], log_path: Path) -> tuple[asyncio.subprocess.Process, str]:
    """A real dispatcher process, as deployed (uvicorn); the default ack wait and window. Returns it
    and its base URL."""
    port = free_port()
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", "--factory", "dispatcher.entrypoints.app:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            env=env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    return process, f"http://127.0.0.1:{port}"


async def ready(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        async with httpx.AsyncClient(timeout=1) as client:
            return (await client.get(f"{url}/readyz")).status_code == 200
    return False


async def test_a_dispatcher_killed_mid_fanout_is_resumed_by_another_within_30s_exactly_once(
    own_nats: NatsServer, own_js: JetStreamContext, fresh_database: str, tmp_path: Path
) -> None:
    js = own_js
    account = f"acct-{uuid.uuid4().hex[:8]}"
    audience = StubAudience(account, "list-crash", range(1, CRASH_RECIPIENTS + 1))

    @audience.app.middleware("http")
    async def slowly(request: Request, call_next):  # type: ignore[no-untyped-def]
        await asyncio.sleep(PAGE_DELAY_SECONDS)
        return await call_next(request)

    request = send_request(account, "list-crash")
    log_path = tmp_path / "dispatcher.log"
    processes: list[asyncio.subprocess.Process] = []

    def log_tail() -> str:
        return log_path.read_text(errors="replace")[-4000:] if log_path.exists() else ""

    try:
        async with serve_app(audience.app) as audience_url:
            env = dispatcher_environment(fresh_database, own_nats.url, audience_url)
            first, _ = await start_dispatcher(env, log_path)
            processes.append(first)
            await publish(js, OutgoingMessage.for_event(request, subjects.CAMPAIGN_SEND_REQUESTED))

            async def well_into_the_fanout() -> bool:
                assert first.returncode is None, f"dispatcher exited early:\n{log_tail()}"
                return await mail_backlog(js) >= CRASH_RECIPIENTS // 4

            try:
                await until(well_into_the_fanout, timeout=120)
            except AssertionError:
                pytest.fail(f"the fan-out did not reach {CRASH_RECIPIENTS // 4} queued:\n{log_tail()}")
            first.send_signal(signal.SIGKILL)
            await first.wait()
            killed_at = time.monotonic()
            # Publishes the dead process had already written may still land: let them.
            await asyncio.sleep(0.2)
            queued_at_kill = await mail_backlog(js)
            assert queued_at_kill < CRASH_RECIPIENTS, "the fan-out finished before the kill: nothing was tested"

            second, second_url = await start_dispatcher(env, log_path)
            processes.append(second)
            booted_after: float | None = None

            async def resumed() -> float | None:
                nonlocal booted_after
                assert second.returncode is None, f"the second dispatcher exited:\n{log_tail()}"
                if booted_after is None and await ready(second_url):
                    booted_after = time.monotonic() - killed_at
                return time.monotonic() - killed_at if await mail_backlog(js) > queued_at_kill else None

            resumed_after = await until(resumed, timeout=RESUME_WITHIN_SECONDS + 30, interval=0.1)
            timing = (
                f"fan-out resumed {resumed_after:.1f}s after the kill (the new process was ready after "
                f"{booted_after if booted_after is None else round(booted_after, 1)}s; "
                f"{queued_at_kill} of {CRASH_RECIPIENTS} queued at the kill)"
            )
            print(timing)
            assert resumed_after <= RESUME_WITHIN_SECONDS, f"{timing}\n{log_tail()}"

            (completed,) = await until(lambda: completions_of(js, request.campaign_id), timeout=120)
            queued = await deliver_emails_of(js, request.campaign_id)
            stored = await mail_backlog(js)
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
        await forget_campaign(js, request.campaign_id)

    assert completed.total == CRASH_RECIPIENTS
    assert stored == len(queued) == CRASH_RECIPIENTS
    subscribers = [int(e.recipient.subscriber_id) for _, e in queued]
    assert sorted(subscribers) == list(range(1, CRASH_RECIPIENTS + 1))  # nobody twice, nobody missing
    assert {msg_id for msg_id, _ in queued} == {
        subjects.deliver_msg_id(request.campaign_id, str(i)) for i in range(1, CRASH_RECIPIENTS + 1)
    }
