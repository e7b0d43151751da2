"""What the dispatcher's integration tests share: a JetStream client on the session's NATS server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest
from nats.js import JetStreamContext


@pytest.fixture
async def js(nats_server) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(nats_server.url)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()
