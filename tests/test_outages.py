"""NATS or PostgreSQL stopped for 10 s in the middle of a send loses and duplicates no email (issue 8,
"Crashes, measured against a real SMTP server's ledger"; decision 0020).

This module runs its own stack — PostgreSQL, NATS, the dev SMTP inbox and the five services as
processes on fixed loopback ports — because it stops and starts the servers the session's stack
shares. A campaign is sent through the gateway's API and, once a tenth of it has reached the inbox,
NATS (or PostgreSQL) is really stopped (SIGTERM to the process this module started: NATS exits,
PostgreSQL does a fast shutdown that disconnects every client), and started again 10 s later on the
same port with the same store or data directory. The campaign must then end `sent` with exact
counts — every recipient sent, none failed and none `unknown` (outcomes known while the database was
down are recorded once it is back, not abandoned to the lease) — and the inbox must hold exactly one
email per recipient, by recipient and Message-ID.

The mailer runs with a pool of 4 connections and batches of 50, so the send lasts long enough for
the outage to land in its middle.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from mailstify_devstack import inbox, nats, postgres
from mailstify_devstack.net import wait_until
from mailstify_devstack.postgres import PostgresServer
from mailstify_devstack.processes import ProcessSpec, RunningProcess, stop_all
from mailstify_devstack.pytest_plugin import MailstifyStack, ready_stack
from mailstify_devstack.services import SERVICE_NAMES, Infrastructure, Secrets, service_process

from .conftest import Api, mails_for, report, until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

RECIPIENTS = 600
OUTAGE_SECONDS = 10.0
# Fixed ports (the range this module was given): a server started again must be where its clients
# reconnect to.
POSTGRES_PORT, NATS_PORT, SMTP_PORT, INBOX_HTTP_PORT = 19600, 19601, 19602, 19603
SERVICE_PORTS = dict(zip(SERVICE_NAMES, range(19610, 19610 + len(SERVICE_NAMES)), strict=True))
SERVICE_SETTINGS = {
    "mailer": {
        "MAILSTIFY_SMTP_POOL_SIZE": "4",
        "MAILSTIFY_BATCH_SIZE": "50",
        "MAILSTIFY_RETRY_SCHEDULE": "1s,1s,2s,2s",
    },
    "dispatcher": {"MAILSTIFY_FANOUT_PAGE_SIZE": "100"},
}


@dataclasses.dataclass
class Server:
    """A server process of this module's stack that can be stopped and started again, on the same
    port and with the same data."""

    spec: ProcessSpec
    log_path: Path
    is_ready: Callable[[], bool]
    process: RunningProcess | None = None

    def start(self, timeout: float = 30.0) -> None:
        self.process = RunningProcess.start(self.spec, self.log_path)
        wait_until(self.is_ready, timeout=timeout, what=self.spec.name, still_alive=self.process.alive, interval=0.1)

    def stop(self) -> None:
        """SIGTERM to the process this module started (SIGKILL if it has not exited within 10 s)."""
        assert self.process is not None
        self.process.stop()
        assert not self.process.alive()


@dataclasses.dataclass
class OutageStack:
    stack: MailstifyStack
    postgres: Server
    nats: Server
    postgres_server: PostgresServer


@pytest.fixture(scope="module")
def outage_stack(mailstify_session_dir: Path) -> Iterator[OutageStack]:
    root = mailstify_session_dir / "outages"
    logs = mailstify_session_dir / "logs"
    postgres_dir = root / "postgres"
    postgres.init_cluster(postgres_dir)
    postgres_server = PostgresServer(POSTGRES_PORT)
    pg = Server(
        postgres.process_spec(postgres_dir, POSTGRES_PORT, postgres.TEST_SETTINGS),
        logs / "outages-postgres.log",
        lambda: postgres.accepts_queries(postgres_server.admin_dsn),
    )
    nats_dir = root / "nats"
    nats_dir.mkdir(parents=True, exist_ok=True)
    js = Server(
        nats.process_spec(nats_dir, NATS_PORT),
        logs / "outages-nats.log",
        lambda: nats.answers_nats("127.0.0.1", NATS_PORT),
    )
    processes: dict[str, RunningProcess] = {}
    try:
        pg.start()
        js.start()
        with inbox.running(root / "inbox", logs / "outages-inbox.log", SMTP_PORT, INBOX_HTTP_PORT) as smtp:
            infra = Infrastructure(
                nats.url(NATS_PORT), postgres_server.server_url, smtp.smtp_host, SMTP_PORT, smtp.http_url
            )
            secrets = Secrets.generate()
            for name in SERVICE_NAMES:
                spec = service_process(name, SERVICE_PORTS, infra, secrets)
                spec = dataclasses.replace(spec, env={**spec.env, **SERVICE_SETTINGS.get(name, {})})
                processes[name] = RunningProcess.start(spec, logs / f"outages-{name}.log")
            stack = ready_stack(processes, SERVICE_PORTS, nats.url(NATS_PORT), smtp, secrets.internal_token)
            yield OutageStack(stack, pg, js, postgres_server)
    finally:
        stop_all(processes.values())
        for server in (js, pg):
            if server.process is not None:
                server.process.stop()


@pytest.fixture(scope="module")
def mailstify_stack(outage_stack: OutageStack) -> MailstifyStack:
    """What the `api` fixture (tests/conftest.py) signs up against in this module."""
    return outage_stack.stack


# --- helpers -------------------------------------------------------------------------------------


def _database(server: PostgresServer, name: str) -> psycopg.Connection:
    return psycopg.connect(make_conninfo(server.admin_dsn, dbname=name), autocommit=True)


def seed(server: PostgresServer, account_id: str, list_id: str, tag: str) -> None:
    """RECIPIENTS subscribed subscribers of the list, in one statement in the audience database."""
    with _database(server, "mailstify_audience") as connection:
        inserted = connection.execute(
            "INSERT INTO subscribers (account_id, list_id, email, first_name)"
            " SELECT %s, %s, 'r' || lpad(n::text, 5, '0') || '.' || %s || '@example.com', 'R' || n"
            " FROM generate_series(1, %s) AS n",
            (account_id, int(list_id), tag, RECIPIENTS),
        ).rowcount
    assert inserted == RECIPIENTS


def ledger(server: PostgresServer, campaign_id: str) -> dict[str, int]:
    """The mailer's deliveries of the campaign, counted by status."""
    with _database(server, "mailstify_mailer") as connection:
        rows = connection.execute(
            "SELECT status, count(*) FROM deliveries WHERE campaign_id::text = %s GROUP BY status", (campaign_id,)
        ).fetchall()
    return {status: count for status, count in rows}


# --- the test ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stopped", ["nats", "postgres"])
async def test_a_server_stopped_mid_send_loses_and_duplicates_no_email(
    api: Api, outage_stack: OutageStack, stopped: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, server = outage_stack.stack, getattr(outage_stack, stopped)
    tag = uuid.uuid4().hex[:8]
    account_id = (await api.call("GET", "/auth/me", 200))["account"]["id"]
    mailing_list = await api.call("POST", "/lists", 201, json={"name": f"outage {tag}"})
    await asyncio.to_thread(seed, outage_stack.postgres_server, account_id, mailing_list["id"], tag)
    campaign = await api.new_campaign(mailing_list["id"])
    path = f"/campaigns/{campaign['id']}"

    started = time.monotonic()
    await api.call("POST", f"{path}/send", 202, json={})

    async def a_tenth_delivered() -> bool:
        return len(await asyncio.to_thread(mails_for, stack, tag)) >= RECIPIENTS // 10

    await until(a_tenth_delivered, 60, 0.05)
    delivered_at_stop = len(await asyncio.to_thread(mails_for, stack, tag))
    send_rate = delivered_at_stop / (time.monotonic() - started)
    await asyncio.to_thread(server.stop)
    stopped_at = time.monotonic()
    await asyncio.sleep(OUTAGE_SECONDS)
    delivered_at_restart = len(await asyncio.to_thread(mails_for, stack, tag))
    await asyncio.to_thread(server.start)
    restarted_at = time.monotonic()
    restarted_at_wall = datetime.datetime.now(datetime.UTC)

    async def finished() -> dict | None:
        try:
            current = await api.call("GET", path, 200)
        except AssertionError:  # the gateway answers 503 while its dependencies reconnect
            return None
        return current if current["status"] != "sending" else None

    try:
        final = await until(finished, timeout=150, interval=0.5)
    except AssertionError:
        delivered = len(await asyncio.to_thread(mails_for, stack, tag))
        statuses = await asyncio.to_thread(ledger, outage_stack.postgres_server, campaign["id"])
        current = await api.call("GET", path, 200)
        raise AssertionError(
            f"[{stopped}] stopped with {delivered_at_stop} delivered; not finished 150 s after the restart:"
            f" {delivered} delivered, mailer ledger {statuses}, campaign {current}"
        ) from None
    restart_to_sent = time.monotonic() - restarted_at
    elapsed = time.monotonic() - started

    mails = await asyncio.to_thread(mails_for, stack, tag)
    statuses = await asyncio.to_thread(ledger, outage_stack.postgres_server, campaign["id"])
    per_recipient = collections.Counter(rcpt for m in mails for rcpt in m["rcpt_tos"])
    message_ids = collections.Counter(m["message_id"] for m in mails)
    accepted, unique = len(mails), len(per_recipient)
    duplicates = sum(n - 1 for n in per_recipient.values())
    # How soon the send picked up again: the first email the inbox received after the restart.
    after_restart = [datetime.datetime.fromisoformat(m["received_at"]) for m in mails]
    after_restart = [at for at in after_restart if at > restarted_at_wall]
    resumed = f"{(min(after_restart) - restarted_at_wall).total_seconds():.1f} s" if after_restart else "never"
    figures = (
        f"outage test [{stopped}]: stopped after {delivered_at_stop} of {RECIPIENTS} delivered"
        f" (~{send_rate:.0f}/s), {delivered_at_restart} delivered when it was started again"
        f" {restarted_at - stopped_at:.1f} s later; first email {resumed} after the restart; {restart_to_sent:.1f} s from the restart to {final['status']}"
        f" ({elapsed:.1f} s from the send request); accepted={accepted} unique={unique} duplicates={duplicates}"
        f" distinct Message-IDs={len(message_ids)}; final status={final['status']} total={final['total']}"
        f" sent={final['sent_count']} failed={final['failed_count']} unknown={final['unknown_count']};"
        f" mailer ledger {statuses}"
    )
    report(capsys, figures)

    # The outage really landed in the middle of the send.
    assert delivered_at_stop < RECIPIENTS and delivered_at_restart < RECIPIENTS, figures
    assert (final["status"], final["total"], final["sent_count"], final["failed_count"], final["unknown_count"]) == (
        "sent",
        RECIPIENTS,
        RECIPIENTS,
        0,
        0,
    ), figures
    assert statuses == {"sent": RECIPIENTS}, figures
    assert (accepted, unique, duplicates) == (RECIPIENTS, RECIPIENTS, 0), figures
    assert set(per_recipient) == {f"r{i:05d}.{tag}@example.com" for i in range(1, RECIPIENTS + 1)}, figures
    assert len(message_ids) == RECIPIENTS and all(campaign["id"] in mid for mid in message_ids), figures
