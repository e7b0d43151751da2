"""Declare the streams, consumers and buckets of `mailstify_contracts.topology` on a JetStream server.

Declaring is idempotent (create, or update to the declared config), so every service declares what it
uses at start-up and nobody depends on start order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from mailstify_contracts.topology import (
    CONSUMERS,
    KEY_VALUE_BUCKETS,
    STREAMS,
    ConsumerSpec,
    KeyValueSpec,
    Retention,
    StreamSpec,
)


def stream_config(spec: StreamSpec, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        retention=RetentionPolicy.WORK_QUEUE if spec.retention is Retention.WORK_QUEUE else RetentionPolicy.LIMITS,
        max_age=spec.max_age_seconds,
        max_bytes=spec.max_bytes,
        max_msgs=spec.max_msgs,
        discard=DiscardPolicy.NEW if spec.discard_new else DiscardPolicy.OLD,
        duplicate_window=spec.duplicate_window_seconds,
        storage=StorageType.FILE,
        num_replicas=replicas,
    )


def consumer_config(spec: ConsumerSpec) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=spec.durable,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=spec.ack_wait_seconds,
        max_deliver=spec.max_deliver,
        max_ack_pending=spec.max_ack_pending,
        filter_subjects=list(spec.filter_subjects),
    )


async def ensure_stream(js: JetStreamContext, spec: StreamSpec, replicas: int = 1) -> None:
    config = stream_config(spec, replicas)
    try:
        await js.stream_info(spec.name)
    except NotFoundError:
        await js.add_stream(config)
    else:
        await js.update_stream(config)


async def ensure_consumer(js: JetStreamContext, spec: ConsumerSpec) -> None:
    # add_consumer on an existing durable with a changed config updates it (server >= 2.10).
    await js.add_consumer(spec.stream, consumer_config(spec))


async def ensure_key_value(js: JetStreamContext, spec: KeyValueSpec, replicas: int = 1) -> None:
    try:
        await js.key_value(spec.bucket)
    except NotFoundError:
        await js.create_key_value(
            KeyValueConfig(
                bucket=spec.bucket,
                history=spec.history,
                ttl=spec.ttl_seconds,
                description=spec.description,
                replicas=replicas,
            )
        )
    else:
        # Like the streams, an existing bucket follows the replicas setting (R1 -> R3 when a
        # deployment moves onto a cluster); its other settings are the bucket's own.
        backing = f"KV_{spec.bucket}"
        config = (await js.stream_info(backing)).config
        if config.num_replicas != replicas:
            await js.update_stream(dataclasses.replace(config, num_replicas=replicas))


async def ensure_topology(
    js: JetStreamContext,
    streams: Iterable[StreamSpec] = STREAMS,
    consumers: Iterable[ConsumerSpec] = CONSUMERS,
    buckets: Iterable[KeyValueSpec] = KEY_VALUE_BUCKETS,
    replicas: int = 1,
) -> None:
    """`replicas`: 1 for the embedded stack and tests, 3 in production (ARCHITECTURE.md §5)."""
    for stream in streams:
        await ensure_stream(js, stream, replicas)
    for consumer in consumers:
        await ensure_consumer(js, consumer)
    for bucket in buckets:
        await ensure_key_value(js, bucket, replicas)
