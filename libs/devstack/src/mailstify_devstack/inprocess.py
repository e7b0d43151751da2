"""Running ASGI apps inside a test's event loop: a stub of another service on a real loopback port
(services call each other over HTTP), and a Mailstify service booted through its lifespan.

    async with serve_app(stub_audience) as audience_url:
        async with running_service(create_app(settings)) as client:   # httpx client on the app
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import uvicorn
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from mailstify_contracts import Event, decode_event
from mailstify_contracts.topology import ConsumerSpec


class _QuietServer(uvicorn.Server):
    # Leave SIGINT/SIGTERM to pytest: an in-test server must not swallow Ctrl-C.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve_app(app: Any, startup_timeout: float = 10.0, port: int = 0) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 (a free port unless `port` is given); yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    server = _QuietServer(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            task.cancel()
            raise RuntimeError("in-process uvicorn did not start")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def running_service(app: Any, boot_timeout: float = 60.0) -> AsyncIterator[httpx.AsyncClient]:
    """Run a service app's lifespan (database, migrations, NATS, consumers) until its runtime is
    booted; yields an httpx client talking to the app in-process."""
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(app.state.runtime.booted.wait(), boot_timeout)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client:
            yield client


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; AssertionError with its last value at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


async def stream_events(
    js: JetStreamContext,
    stream: str,
    subject: str,
    *,
    expected: int | None = None,
    timeout: float = 10.0,
    idle: float = 0.5,
) -> list[Event]:
    """Every event stored on `stream` under `subject`, read by a throw-away consumer (work-queue
    streams refuse a second overlapping consumer: use stream_info there instead).

    Reading ends at the first fetch that finds nothing for `idle` seconds once at least `expected`
    events were read (None: at the first such fetch), or at the `timeout` deadline, whichever comes
    first; everything read is returned either way. So on a slow machine events still on their way
    are waited for, and events beyond `expected` are still seen (an "exactly N" check can fail)."""
    deadline = time.monotonic() + timeout
    subscription = await js.pull_subscribe(
        subject,
        stream=stream,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, inactive_threshold=max(5.0, 2 * idle)),
    )
    events: list[Event] = []
    try:
        while True:
            enough = expected is None or len(events) >= expected
            left = deadline - time.monotonic()
            if left <= 0:
                return events
            try:
                batch = await subscription.fetch(500, timeout=idle if enough else min(idle, left))
            except TimeoutError:  # nats-py raises either its own or asyncio's at the deadline; both subclass it
                if enough:
                    return events
                continue
            for msg in batch:
                events.append(decode_event(msg.data))
                await msg.ack()
    finally:
        await subscription.unsubscribe()


async def consumed_up_to(js: JetStreamContext, spec: ConsumerSpec, up_to_seq: int) -> bool:
    """The durable `spec` acked everything up to stream sequence `up_to_seq` and holds nothing more:
    the messages were delivered to the service and settled, not merely absent from the stream."""
    info = await js.consumer_info(spec.stream, spec.durable)
    return info.num_pending == 0 and info.num_ack_pending == 0 and info.ack_floor.stream_seq >= up_to_seq
