"""Losing a NATS node loses no email and sends none twice (issue 11, ARCHITECTURE.md §5–6).

The whole platform runs against a three-node JetStream cluster on loopback (`nats_cluster`), with
every stream and the content bucket declared R3 (`MAILSTIFY_JETSTREAM_REPLICAS=3`, as in
production) and two mailers connected to different nodes. A 2,000-recipient campaign is sent and
one node — the MAIL stream's leader, read from $JS.API.STREAM.INFO — is SIGKILLed, once while the
mailers are sending and once while the dispatcher is still fanning out; it is restarted later on
the same ports and store. Each recipient must then hold exactly one email (by recipient and
Message-ID, in this module's own SMTP inbox), the counts must be exact and the campaign `sent`.

The services' NATS clients are each given one node's URL and learn the others from the cluster, so
a client of the killed node reconnects to a survivor, as it would behind a Kubernetes Service.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from mailstify_contracts import topology
from mailstify_contracts.topology import MAILER_DELIVERIES, KeyValueSpec
from mailstify_messaging.topology import ensure_key_value
from mailstify_devstack import inbox, nats_cluster
from mailstify_devstack.inbox import InboxClient
from mailstify_devstack.nats_cluster import NatsCluster
from mailstify_devstack.net import free_ports
from mailstify_devstack.postgres import PostgresServer
from mailstify_devstack.processes import RunningProcess, stop_all
from mailstify_devstack.pytest_plugin import MailstifyStack, ready_stack
from mailstify_devstack.services import Infrastructure, Secrets, service_process

from .conftest import Api, mails_for, report, until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(330)]


RECIPIENTS = 2_000
# Which node each process is given; the two mailers sit on different nodes.
NODE_OF = {
    "gateway": "node-a",
    "audience": "node-b",
    "campaign": "node-c",
    "dispatcher": "node-a",
    "mailer": "node-b",
    "mailer-2": "node-c",
}
CLUSTER_SETTINGS = {
    "MAILSTIFY_JETSTREAM_REPLICAS": "3",
    # Small batches and pages: many acks, publishes and checkpoints are in flight when the node dies.
    "MAILSTIFY_BATCH_SIZE": "50",
    "MAILSTIFY_FANOUT_PAGE_SIZE": "50",
    "MAILSTIFY_RETRY_SCHEDULE": "1s,1s,2s,2s",
}


# --- the platform on a three-node cluster (replaces the session's one-node `mailstify_stack`) ----


@pytest.fixture(scope="module")
def cluster(mailstify_session_dir: Path) -> Iterator[NatsCluster]:
    with nats_cluster.running(mailstify_session_dir / "cluster", mailstify_session_dir / "logs") as running:
        yield running


@pytest.fixture(scope="module")
def cluster_inbox(mailstify_session_dir: Path) -> Iterator[InboxClient]:
    log_path = mailstify_session_dir / "logs" / "cluster-inbox.log"
    with inbox.running(mailstify_session_dir / "cluster-inbox", log_path, *free_ports(2)) as client:
        yield client


@pytest.fixture(scope="module")
def mailstify_stack(
    cluster: NatsCluster, postgres_server: PostgresServer, cluster_inbox: InboxClient, mailstify_session_dir: Path
) -> Iterator[MailstifyStack]:
    """The five services (and a second mailer) on the cluster, each on its own databases; what the
    `api` fixture (tests/conftest.py) signs up against in this module."""
    ports = dict(zip(NODE_OF, free_ports(len(NODE_OF)), strict=True))
    secrets = Secrets.generate()
    processes: dict[str, RunningProcess] = {}
    try:
        for name, node in NODE_OF.items():
            service = name.split("-")[0]
            infra = Infrastructure(
                cluster.url_of(node),
                postgres_server.server_url,
                cluster_inbox.smtp_host,
                cluster_inbox.smtp_port,
                cluster_inbox.http_url,
            )
            spec = service_process(service, {**ports, service: ports[name]}, infra, secrets)
            env = {**spec.env, **CLUSTER_SETTINGS, "MAILSTIFY_DATABASE_URL": f"{postgres_server.server_url}/cluster_{service}"}
            spec = dataclasses.replace(spec, name=name, env=env)
            processes[name] = RunningProcess.start(spec, mailstify_session_dir / "logs" / f"cluster-{name}.log")
        yield ready_stack(processes, ports, cluster.url_of("node-a"), cluster_inbox, secrets.internal_token)
    finally:
        stop_all(processes.values())


# --- helpers -------------------------------------------------------------------------------------


async def seed_list(api: Api, count: int) -> tuple[dict, str]:
    """A list of `count` subscribers, imported as CSV through the API; returns it and the tag in
    their addresses."""
    tag = uuid.uuid4().hex[:8]
    mailing_list = await api.call("POST", "/lists", 201, json={"name": f"cluster {tag}"})
    rows = "".join(f"r{i:04d}.{tag}@example.com,R{i}\n" for i in range(count))
    started = await api.call(
        "POST",
        f"/lists/{mailing_list['id']}/imports",
        202,
        files={"file": ("recipients.csv", f"email,first_name\n{rows}".encode(), "text/csv")},
    )

    async def imported() -> dict | None:
        job = await api.call("GET", f"/imports/{started['id']}", 200)
        return job if job["status"] in ("completed", "failed") else None

    job = await until(imported, timeout=60, interval=0.2)
    assert (job["status"], job["imported"]) == ("completed", count), job
    return mailing_list, tag


async def mail_leader(js) -> str | None:
    try:
        info = await js.stream_info(topology.MAIL_STREAM.name)
    except (nats.errors.Error, asyncio.TimeoutError):
        return None  # no leader right now: mid-election
    return info.cluster.leader if info.cluster else None


# --- the test ------------------------------------------------------------------------------------


@pytest.mark.parametrize("moment", ["mid-send", "during-fanout"])
async def test_a_nats_node_killed_loses_and_duplicates_no_email(
    api: Api, mailstify_stack: MailstifyStack, cluster: NatsCluster, moment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seeding = time.monotonic()
    mailing_list, tag = await seed_list(api, RECIPIENTS)
    seeded_in = time.monotonic() - seeding
    campaign = await api.new_campaign(mailing_list["id"])
    path = f"/campaigns/{campaign['id']}"

    nc = await nats.connect(servers=cluster.urls, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        js = nc.jetstream()
        info = await js.stream_info(topology.MAIL_STREAM.name)
        assert info.config.num_replicas == 3 and len(info.cluster.replicas) == 2, info.cluster
        published_before = info.state.last_seq
        started = time.monotonic()
        await api.call("POST", f"{path}/send", 202, json={})

        if moment == "mid-send":
            # A quarter of the emails delivered: both mailers hold batches, results are in flight.
            async def a_quarter_delivered() -> bool:
                return len(await asyncio.to_thread(mails_for, mailstify_stack, tag)) >= RECIPIENTS // 4

            await until(a_quarter_delivered, 60, 0.05)
        else:
            # The first pages of DeliverEmail published; the rest of the fan-out still to come.
            async def fanning_out() -> bool:
                return (await js.stream_info(topology.MAIL_STREAM.name)).state.last_seq > published_before + 100

            await until(fanning_out, 60, 0.02)
        at_kill = await js.stream_info(topology.MAIL_STREAM.name)
        victim = at_kill.cluster.leader
        assert victim in cluster.nodes, at_kill.cluster
        cluster.kill(victim)
        killed_at = time.monotonic()
        published_at_kill = at_kill.state.last_seq - published_before
        delivered_at_kill = len(await asyncio.to_thread(mails_for, mailstify_stack, tag))

        # The survivors elect a new leader and the send carries on without the victim for a while.
        await until(lambda: _leader_other_than(js, victim), 30, 0.2)
        await asyncio.sleep(3)
        await asyncio.to_thread(cluster.restart, victim)
        restarted_after = time.monotonic() - killed_at

        async def finished() -> dict | None:
            current = await api.call("GET", path, 200)
            return current if current["status"] != "sending" else None

        # A batch the dead node had handed out (or whose acks it swallowed) is redelivered only once
        # the consumer's ack_wait has passed: the slowest correct ending is that long after the kill.
        patience = MAILER_DELIVERIES.ack_wait_seconds + 60
        try:
            final = await until(finished, timeout=patience, interval=0.5)
        except AssertionError:
            current = await api.call("GET", path, 200)
            delivered = len(await asyncio.to_thread(mails_for, mailstify_stack, tag))
            raise AssertionError(
                f"[{moment}] killed {victim} with {published_at_kill} published / {delivered_at_kill} delivered;"
                f" not finished {patience:.0f} s after the restart: {delivered} delivered, campaign {current}"
            ) from None
        elapsed = time.monotonic() - started

        # The restarted node caught up: every replica of MAIL is current again.
        async def replicas_current() -> bool:
            cluster_info = (await js.stream_info(topology.MAIL_STREAM.name)).cluster
            return all(peer.current for peer in cluster_info.replicas)

        await until(replicas_current, 30, 0.5)
    finally:
        await nc.close()

    mails = await asyncio.to_thread(mails_for, mailstify_stack, tag)
    per_recipient = collections.Counter(rcpt for m in mails for rcpt in m["rcpt_tos"])
    message_ids = collections.Counter(m["message_id"] for m in mails)
    accepted, unique = len(mails), len(per_recipient)
    duplicates = sum(n - 1 for n in per_recipient.values())
    figures = (
        f"cluster test [{moment}]: killed {victim} (MAIL leader) with {published_at_kill} of {RECIPIENTS}"
        f" DeliverEmail published and {delivered_at_kill} emails delivered, restarted it {restarted_after:.1f} s later;"
        f" accepted={accepted} unique={unique} duplicates={duplicates}"
        f" distinct Message-IDs={len(message_ids)}; final status={final['status']} total={final['total']}"
        f" sent={final['sent_count']} failed={final['failed_count']} unknown={final['unknown_count']};"
        f" {elapsed:.1f} s from send to {final['status']} (list seeded in {seeded_in:.1f} s)"
    )
    report(capsys, figures)

    # The node really died in the middle of what this run is about.
    if moment == "during-fanout":
        assert published_at_kill < RECIPIENTS, f"the fan-out had already finished when the node died: {figures}"
    else:
        assert 0 < delivered_at_kill < RECIPIENTS, figures
    assert (final["status"], final["total"], final["sent_count"], final["failed_count"], final["unknown_count"]) == (
        "sent",
        RECIPIENTS,
        RECIPIENTS,
        0,
        0,
    ), figures
    assert (accepted, unique, duplicates) == (RECIPIENTS, RECIPIENTS, 0), figures
    assert set(per_recipient) == {f"r{i:04d}.{tag}@example.com" for i in range(RECIPIENTS)}, figures
    assert len(message_ids) == RECIPIENTS and all(campaign["id"] in mid for mid in message_ids), figures


async def _leader_other_than(js, victim: str) -> bool:
    leader = await mail_leader(js)
    return leader is not None and leader != victim


@pytest.mark.integration
async def test_an_existing_bucket_follows_the_replicas_setting(cluster: NatsCluster) -> None:
    # Streams are re-declared with the setting on every start; a bucket created R1 (say, before the
    # move onto a cluster) must follow too, keeping what it holds.
    spec = KeyValueSpec(bucket=f"REPLICAS_{uuid.uuid4().hex[:8]}")
    nc = await nats.connect(servers=cluster.urls)
    try:
        js = nc.jetstream()
        await ensure_key_value(js, spec, replicas=1)
        await (await js.key_value(spec.bucket)).put("campaign-1", b"content")
        await ensure_key_value(js, spec, replicas=3)

        async def three_current_replicas() -> bool:
            # The server adds the two peers and catches them up in the background.
            info = await js.stream_info(f"KV_{spec.bucket}")
            peers = info.cluster.replicas or []
            return info.config.num_replicas == 3 and len(peers) == 2 and all(p.current for p in peers)

        await until(three_current_replicas, timeout=30, interval=0.2)
        assert (await (await js.key_value(spec.bucket)).get("campaign-1")).value == b"content"
    finally:
        await nc.close()
