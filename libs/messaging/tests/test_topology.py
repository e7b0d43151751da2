"""`ensure_topology` turns the contracts' declarations into JetStream objects, idempotently."""

from __future__ import annotations

from dataclasses import replace

from nats.js.api import DiscardPolicy, RetentionPolicy

from mailstify_contracts import topology
from mailstify_messaging import ensure_topology


async def test_declares_the_contracts_streams_consumers_and_bucket(js):
    # The real names: declaring them is what every service does at start-up, so it must be harmless
    # when they already exist; they are not deleted because other tests' services use them.
    await ensure_topology(js)
    await ensure_topology(js)

    for spec in topology.STREAMS:
        info = await js.stream_info(spec.name)
        assert set(info.config.subjects) == set(spec.subjects)
    mail = (await js.stream_info(topology.MAIL_STREAM.name)).config
    assert mail.retention == RetentionPolicy.WORK_QUEUE
    assert mail.discard == DiscardPolicy.NEW
    for spec in topology.CONSUMERS:
        info = await js.consumer_info(spec.stream, spec.durable)
        assert info.config.ack_wait == spec.ack_wait_seconds
        assert info.config.max_deliver == spec.max_deliver
    kv = await js.key_value(topology.CAMPAIGN_CONTENT.bucket)
    assert (await kv.status()).bucket == topology.CAMPAIGN_CONTENT.bucket


async def test_is_idempotent_and_applies_a_changed_consumer_setting(js, scratch):
    # Copies of the contracts' own specs under unique names and subjects, so this test can change
    # and delete them freely.
    streams = [
        replace(spec, name=f"{spec.name}_{scratch.uid}", subjects=tuple(f"t{scratch.uid}.{s}" for s in spec.subjects))
        for spec in topology.STREAMS
    ]
    renamed = {spec.name: copy for spec, copy in zip(topology.STREAMS, streams)}
    consumers = [
        replace(
            spec,
            stream=renamed[spec.stream].name,
            durable=f"{spec.durable}-{scratch.uid}",
            filter_subjects=tuple(f"t{scratch.uid}.{s}" for s in spec.filter_subjects),
        )
        for spec in topology.CONSUMERS
    ]
    buckets = [replace(spec, bucket=f"{spec.bucket}_{scratch.uid}") for spec in topology.KEY_VALUE_BUCKETS]

    await scratch.declare(streams, consumers, buckets)
    await scratch.declare(streams, consumers, buckets)  # second call: no error, nothing duplicated

    for spec in streams:
        config = (await js.stream_info(spec.name)).config
        assert config.subjects == list(spec.subjects)
        assert config.duplicate_window == spec.duplicate_window_seconds
        assert config.max_msgs == (spec.max_msgs or -1)
    for spec in consumers:
        config = (await js.consumer_info(spec.stream, spec.durable)).config
        assert config.ack_wait == spec.ack_wait_seconds
        assert config.max_ack_pending == spec.max_ack_pending
        assert list(config.filter_subjects or [config.filter_subject]) == list(spec.filter_subjects)
    for spec in buckets:
        assert (await (await js.key_value(spec.bucket)).status()).bucket == spec.bucket

    changed = replace(consumers[0], ack_wait_seconds=consumers[0].ack_wait_seconds + 15, max_ack_pending=7)
    await scratch.declare(streams, [changed, *consumers[1:]], buckets)

    config = (await js.consumer_info(changed.stream, changed.durable)).config
    assert config.ack_wait == changed.ack_wait_seconds
    assert config.max_ack_pending == 7
    names = {c.name for c in await js.consumers_info(changed.stream)}
    assert names == {c.durable for c in consumers if c.stream == changed.stream}
