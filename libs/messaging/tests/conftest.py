"""Fixtures for the messaging integration tests: a real JetStream (`nats_server`) and a real
PostgreSQL (`fresh_database`) from mailstify_devstack.

Every test declares its own streams, consumers and buckets under a unique name and subject prefix
(`scratch`), so tests neither see each other's messages nor the platform's real streams, and deletes
them afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from mailstify_contracts import FanoutCompleted
from mailstify_contracts.topology import ConsumerSpec, KeyValueSpec, StreamSpec
from mailstify_messaging import BatchHandler, PullConsumer, connect, ensure_topology, outbox


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0, interval: float = 0.05
) -> None:
    """Poll `check` (plain or async) until it holds; fail the test when the deadline passes."""
    deadline = time.monotonic() + timeout
    while not await _value(check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


async def _value(result: bool | Awaitable[bool]) -> bool:
    return await result if inspect.isawaitable(result) else result


def an_event(total: int = 1) -> FanoutCompleted:
    return FanoutCompleted(account_id="acc-1", campaign_id=f"cmp-{uuid.uuid4().hex[:8]}", total=total)


@dataclass
class Scratch:
    """Uniquely named JetStream objects for one test; `cleanup` deletes them."""

    js: JetStreamContext
    uid: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    streams: list[str] = field(default_factory=list)
    buckets: list[str] = field(default_factory=list)

    def subject(self, name: str = "events") -> str:
        return f"t{self.uid}.{name}"

    def stream(self, **overrides: object) -> StreamSpec:
        spec = StreamSpec(name=f"T_{self.uid}_{len(self.streams)}", subjects=(f"t{self.uid}.>",))
        return replace(spec, **overrides)

    def consumer(self, stream: StreamSpec, **overrides: object) -> ConsumerSpec:
        spec = ConsumerSpec(stream=stream.name, durable=f"c-{self.uid}", filter_subjects=stream.subjects)
        return replace(spec, **overrides)

    async def stream_with_consumer(self, **consumer_overrides: object) -> ConsumerSpec:
        """Declare a fresh stream and one durable consumer on it; return the consumer's spec."""
        stream = self.stream()
        consumer = self.consumer(stream, **consumer_overrides)
        await self.declare([stream], [consumer])
        return consumer

    async def declare(
        self, streams: Sequence[StreamSpec], consumers: Sequence[ConsumerSpec] = (), buckets: Sequence[KeyValueSpec] = ()
    ) -> None:
        self.streams += [s.name for s in streams if s.name not in self.streams]
        self.buckets += [b.bucket for b in buckets if b.bucket not in self.buckets]
        await ensure_topology(self.js, streams, consumers, buckets)

    async def cleanup(self) -> None:
        for name in self.streams:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self.js.delete_stream(name)
        for bucket in self.buckets:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self.js.delete_key_value(bucket)


@pytest.fixture
async def nc(nats_server) -> AsyncIterator[Client]:
    client = await connect(nats_server.url, f"messaging-tests-{uuid.uuid4().hex[:6]}")
    yield client
    await client.close()


@pytest.fixture
def js(nc: Client) -> JetStreamContext:
    return nc.jetstream()


@pytest.fixture
async def scratch(js: JetStreamContext) -> AsyncIterator[Scratch]:
    objects = Scratch(js)
    yield objects
    await objects.cleanup()


class Loop(Protocol):
    def run(self) -> Awaitable[None]: ...
    def stop(self) -> None: ...


@contextlib.asynccontextmanager
async def running(loop: Loop) -> AsyncIterator[None]:
    """Run a consumer's or relay's loop in the background for the block's duration."""
    task = asyncio.create_task(loop.run())
    try:
        yield
    finally:
        loop.stop()
        await asyncio.wait_for(task, 5)


async def settled(js: JetStreamContext, spec: ConsumerSpec) -> bool:
    """Nothing left to deliver and nothing awaiting an ack on this consumer."""
    info = await js.consumer_info(spec.stream, spec.durable)
    return info.num_ack_pending == 0 and info.num_pending == 0


def consumer_for(js: JetStreamContext, spec: ConsumerSpec, handler: BatchHandler, **kwargs: object) -> PullConsumer:
    # A short fetch timeout keeps stopping quick; fetch returns as soon as messages arrive anyway.
    return PullConsumer(js, spec, handler, fetch_timeout=0.25, **kwargs)


@contextlib.asynccontextmanager
async def terminated_advisories(nc: Client, spec: ConsumerSpec) -> AsyncIterator[list[int]]:
    """Stream sequences the server reports as term'ed on this consumer (its MSG_TERMINATED advisory)."""
    sequences: list[int] = []

    async def record(msg: Msg) -> None:
        sequences.append(json.loads(msg.data)["stream_seq"])

    sub = await nc.subscribe(f"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{spec.stream}.{spec.durable}", cb=record)
    await nc.flush()
    try:
        yield sequences
    finally:
        await sub.unsubscribe()


@pytest.fixture
async def outbox_engine(fresh_database: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a new empty database holding just the outbox table."""
    engine = create_async_engine(fresh_database, pool_size=5)
    async with engine.begin() as conn:
        await conn.run_sync(outbox.metadata.create_all)
    yield engine
    await engine.dispose()


class _RecordingExporter(InMemorySpanExporter):
    """Keeps spans only while a test asks for them, so the rest of the session does not pile up."""

    recording = False

    def export(self, spans):  # type: ignore[no-untyped-def]
        return super().export(spans) if self.recording else SpanExportResult.SUCCESS


@pytest.fixture(scope="session")
def _installed_exporter() -> _RecordingExporter:
    """The global tracer provider can be set only once per process: reuse an SDK provider someone else
    (e.g. servicekit's `configure_tracing`) already installed, and otherwise install one that they
    will reuse in turn."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        trace.set_tracer_provider(TracerProvider())
        provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider), "a non-SDK tracer provider is installed globally"
    exporter = _RecordingExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def span_exporter(_installed_exporter: _RecordingExporter) -> Iterator[InMemorySpanExporter]:
    """Spans finished anywhere in this process during the test; pick yours by trace or span id."""
    _installed_exporter.clear()
    _installed_exporter.recording = True
    yield _installed_exporter
    _installed_exporter.recording = False
    _installed_exporter.clear()
