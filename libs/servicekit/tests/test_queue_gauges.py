"""The queue gauges against a real JetStream and PostgreSQL, read the way Prometheus reads them
(the process's `/metrics` text, parsed): consumer lag counts pending and unacked messages and falls
back to 0 once they are acked; the outbox backlog and its age follow the rows the relay has not
published yet."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import nats
import pytest
from nats.js import JetStreamContext
from prometheus_client.parser import text_string_to_metric_families

from mailstify_contracts import FanoutCompleted
from mailstify_contracts.topology import ConsumerSpec, StreamSpec
from mailstify_messaging import OutboxRelay, add_to_outbox, ensure_topology
from mailstify_servicekit import ServiceSettings
from mailstify_servicekit.metrics import QueueGauges
from mailstify_servicekit.telemetry import configure_telemetry, metrics_response


def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics_response().body.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def gauge(name: str, **labels: str) -> float | None:
    wanted = tuple(sorted(labels.items()))
    for (sample, sample_labels), value in scrape().items():
        if sample == name and set(wanted) <= set(sample_labels):
            return value
    return None


@pytest.fixture(scope="module", autouse=True)
def _telemetry() -> None:
    configure_telemetry("gauges", ServiceSettings(database_url="postgresql+psycopg://unused@127.0.0.1:1/unused"))


@pytest.fixture
async def js(nats_server) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_server.url)
    yield nc.jetstream()
    await nc.close()


@pytest.fixture
async def topology(js: JetStreamContext) -> AsyncIterator[tuple[StreamSpec, ConsumerSpec]]:
    suffix = uuid.uuid4().hex[:8]
    stream = StreamSpec(name=f"GAUGES_{suffix}", subjects=(f"gauges.{suffix}.>",))
    consumer = ConsumerSpec(stream=stream.name, durable=f"gauges-{suffix}", filter_subjects=(f"gauges.{suffix}.>",))
    await ensure_topology(js, streams=[stream], consumers=[consumer], buckets=[])
    yield stream, consumer
    await js.delete_stream(stream.name)


async def test_consumer_lag_counts_pending_and_unacked_and_returns_to_zero(js, engine, topology) -> None:
    stream, consumer = topology
    gauges = QueueGauges("gauges", engine, js, [consumer])
    subject = stream.subjects[0].replace(">", "work")
    for n in range(5):
        await js.publish(subject, f"{n}".encode())
    lag = {"messaging_consumer_group_name": consumer.durable, "messaging_destination_name": stream.name}

    await gauges.poll()
    assert gauge("mailstify_consumer_lag", **lag) == 5

    subscription = await js.pull_subscribe_bind(consumer.durable, stream=stream.name)
    fetched = await subscription.fetch(2, timeout=5)
    await gauges.poll()
    assert gauge("mailstify_consumer_lag", **lag) == 5  # 3 pending + 2 delivered, not acked

    for msg in fetched + await subscription.fetch(3, timeout=5):
        await msg.ack_sync()
    await gauges.poll()
    assert gauge("mailstify_consumer_lag", **lag) == 0

    gauges.forget()
    assert gauge("mailstify_consumer_lag", **lag) is None
    await subscription.unsubscribe()


async def test_outbox_backlog_and_age_follow_the_unpublished_rows(js, engine, topology) -> None:
    stream, _ = topology
    gauges = QueueGauges("gauges", engine, js, [])
    await gauges.poll()
    assert gauge("mailstify_outbox_backlog") == 0
    assert gauge("mailstify_outbox_oldest_age_seconds") == 0

    subject = stream.subjects[0].replace(">", "fanout")
    async with engine.begin() as conn:
        await add_to_outbox(conn, [(FanoutCompleted(account_id="a", campaign_id=f"c{n}", total=1), subject) for n in range(3)])
    await asyncio.sleep(0.3)
    await gauges.poll()
    assert gauge("mailstify_outbox_backlog") == 3
    age = gauge("mailstify_outbox_oldest_age_seconds")
    assert age is not None and 0.3 <= age < 30

    assert await OutboxRelay(engine, js).relay_batch() == 3
    await gauges.poll()
    assert gauge("mailstify_outbox_backlog") == 0
    assert gauge("mailstify_outbox_oldest_age_seconds") == 0
    gauges.forget()
