"""Exact totals (issue 7, item 6; decision 0005): the dispatcher is SIGKILLed in the middle of
fanning out a 20,000-recipient campaign, 500 subscribers are removed while it is down, and it is
started again. The campaign's `total` must then be exactly the recipients that were published to the
mail queue — counted at the effect: the distinct recipients the SMTP inbox received, plus the failed
and unknown ones — and the campaign ends `sent` with `sent + failed + unknown == total`.

The kill is aimed at the middle of a page (messages of the campaign on MAIL not a multiple of the
page size when it is sent): the page being published is the one a resume must not fetch again, since
some of its recipients are gone by then. The 20,000 subscribers are inserted straight into the
audience database (the API adds one per request), and the 500 deleted there while the dispatcher is
down (the list's subscriber count, kept by the audience database's triggers, shows it).

The session's dispatcher process is replaced for this test by one with a short ack wait on send
requests (MAILSTIFY_FANOUT_ACK_WAIT_SECONDS), so the request the killed process held is delivered to
the restarted one within seconds, not two minutes; the original is restored afterwards."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
import signal
import time
import uuid
from collections.abc import Iterator

import nats
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from mailstify_contracts import topology
from mailstify_devstack.processes import RunningProcess
from mailstify_devstack.pytest_plugin import MailstifyStack
from mailstify_devstack.services import wait_until_ready

from .conftest import Api, until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

RECIPIENTS = 20_000
REMOVED_EVERY = 40  # every 40th subscriber: 500 of them, 25 on every page
PAGE = 1000
DISPATCHER_ENV = {"MAILSTIFY_FANOUT_ACK_WAIT_SECONDS": "5", "MAILSTIFY_FANOUT_PAGE_SIZE": str(PAGE)}


class Dispatchers:
    """Starts, SIGKILLs and restarts the stack's dispatcher process; `restore` puts the original back."""

    def __init__(self, stack: MailstifyStack):
        self.stack = stack
        self.original = stack.processes["dispatcher"]
        self.spec = dataclasses.replace(self.original.spec, env={**self.original.spec.env, **DISPATCHER_ENV})

    def start(self) -> None:
        process = RunningProcess.start(self.spec, self.original.log_path)
        self.stack.processes["dispatcher"] = process
        problems = wait_until_ready({"dispatcher": self.stack.service_url("dispatcher")}, 60, lambda: not process.alive())
        assert not problems, f"the dispatcher did not start: {problems}\n{process.log_tail()}"

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final checkpoint, no ack."""
        process = self.stack.processes["dispatcher"]
        os.killpg(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while process.alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not process.alive()

    def restore(self) -> None:
        self.stack.processes["dispatcher"].stop()
        self.spec = self.original.spec
        self.start()


@pytest.fixture
def dispatchers(mailstify_stack: MailstifyStack) -> Iterator[Dispatchers]:
    dispatchers = Dispatchers(mailstify_stack)
    dispatchers.original.stop()
    dispatchers.start()
    try:
        yield dispatchers
    finally:
        dispatchers.restore()


def _audience_database(postgres_server) -> psycopg.Connection:
    return psycopg.connect(make_conninfo(postgres_server.admin_dsn, dbname="mailstify_audience"), autocommit=True)


def seed(postgres_server, account_id: str, list_id: str, tag: str) -> list[int]:
    """RECIPIENTS subscribed subscribers of the list, in one statement; their ids in order."""
    with _audience_database(postgres_server) as connection:
        rows = connection.execute(
            "INSERT INTO subscribers (account_id, list_id, email, first_name)"
            " SELECT %s, %s, 'r' || lpad(n::text, 5, '0') || '.' || %s || '@example.com', 'R' || n"
            " FROM generate_series(1, %s) AS n ORDER BY n RETURNING id",
            (account_id, int(list_id), tag, RECIPIENTS),
        ).fetchall()
    return sorted(row[0] for row in rows)


def remove(postgres_server, subscriber_ids: list[int]) -> None:
    with _audience_database(postgres_server) as connection:
        deleted = connection.execute("DELETE FROM subscribers WHERE id = ANY(%s)", (subscriber_ids,)).rowcount
    assert deleted == len(subscriber_ids)


async def test_a_dispatcher_killed_mid_fanout_while_the_list_changes_totals_exactly(
    api: Api, mailstify_stack: MailstifyStack, dispatchers: Dispatchers, postgres_server
) -> None:
    tag = uuid.uuid4().hex[:8]
    account_id = (await api.call("GET", "/auth/me", 200))["account"]["id"]
    mailing_list = await api.call("POST", "/lists", 201, json={"name": f"exact {tag}"})
    ids = await asyncio.to_thread(seed, postgres_server, account_id, mailing_list["id"], tag)
    assert len(ids) == RECIPIENTS
    campaign = await api.new_campaign(mailing_list["id"])
    path = f"/campaigns/{campaign['id']}"

    nc = await nats.connect(mailstify_stack.nats_url)
    try:
        js = nc.jetstream()

        async def published() -> int:
            return (await js.stream_info(topology.MAIL_STREAM.name)).state.last_seq - before

        before = (await js.stream_info(topology.MAIL_STREAM.name)).state.last_seq
        started = time.monotonic()
        await api.call("POST", f"{path}/send", 202, json={})

        async def mid_page() -> int:
            count = await published()
            return count if count > 2 * PAGE and count % PAGE else 0

        at_kill = await until(mid_page, timeout=60, interval=0.005)
        dispatchers.kill()
        after_kill = await published()
    finally:
        await nc.close()
    state_at_kill = await api.call("GET", path, 200)

    removed = ids[REMOVED_EVERY - 1 :: REMOVED_EVERY]
    await asyncio.to_thread(remove, postgres_server, removed)
    assert (await api.call("GET", f"/lists/{mailing_list['id']}", 200))["subscriber_count"] == RECIPIENTS - len(removed)
    dispatchers.start()

    async def finished() -> dict | None:
        current = await api.call("GET", path, 200)
        return current if current["status"] not in ("sending", "scheduled") else None

    # Patience, not a speed check: on a loaded 2-core machine 20,000 mails take minutes.
    final = await until(finished, timeout=900, interval=2.0)
    elapsed = time.monotonic() - started

    def mails() -> list[dict]:
        return [m for m in mailstify_stack.inbox.messages() if any(tag in r for r in m["rcpt_tos"])]

    # `sent` counts what the inbox accepted, so once it is final every accepted mail is in the inbox.
    received = collections.Counter(r for m in await asyncio.to_thread(mails) for r in m["rcpt_tos"])
    everyone = {f"r{n:05d}.{tag}@example.com" for n in range(1, RECIPIENTS + 1)}
    removed_addresses = {f"r{n:05d}.{tag}@example.com" for n in range(REMOVED_EVERY, RECIPIENTS + 1, REMOVED_EVERY)}
    settled = final["sent_count"] + final["failed_count"] + final["unknown_count"]
    figures = (
        f"exact totals: killed the dispatcher at {at_kill} published ({after_kill} once dead; campaign total"
        f" then {state_at_kill['total']}), removed {len(removed)}; final status={final['status']}"
        f" total={final['total']} sent={final['sent_count']} failed={final['failed_count']}"
        f" unknown={final['unknown_count']}; inbox: {len(received)} distinct recipients,"
        f" {sum(received.values()) - len(received)} duplicates, {len(removed_addresses & set(received))} of the"
        f" removed mailed; {elapsed:.1f} s from send to {final['status']}"
    )
    assert state_at_kill["total"] is None, f"the fan-out had finished before the kill: {figures}"
    assert final["status"] == "sent", figures
    assert settled == final["total"], figures
    # The total is exactly what was published: every published recipient got one mail or an outcome.
    assert len(received) + final["failed_count"] + final["unknown_count"] == final["total"], figures
    assert final["sent_count"] == len(received) and all(n == 1 for n in received.values()), figures
    # Nobody outside the list; everyone still subscribed; of the removed, only those already published
    # (pages before the kill, and the page recorded when it died) — never one of a later page.
    assert set(received) <= everyone and everyone - removed_addresses <= set(received), figures
    # Whole pages of them: the page being published at the kill went out whole, as recorded (fetched
    # again, it would have lost the removed recipients it had not reached yet).
    removed_per_page = PAGE // REMOVED_EVERY
    removed_mailed = len(removed_addresses & set(received))
    assert removed_mailed % removed_per_page == 0, figures
    assert after_kill // PAGE * removed_per_page <= removed_mailed <= (after_kill // PAGE + 1) * removed_per_page, figures
