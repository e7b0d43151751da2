"""One way to connect to NATS: reconnect forever, and say so in the log when the link drops."""

from __future__ import annotations

import logging

from nats.aio.client import Client

log = logging.getLogger(__name__)


async def connect(url: str, name: str) -> Client:
    client = Client()

    async def on_disconnected() -> None:
        if client.is_closed:  # our own close() at shutdown also reports a disconnect
            return
        log.warning("nats disconnected; reconnecting", extra={"nats_client": name})

    async def on_reconnected() -> None:
        log.info("nats reconnected", extra={"nats_client": name})

    async def on_error(exc: Exception) -> None:
        log.warning("nats error: %s", exc, extra={"nats_client": name})

    await client.connect(
        servers=[url],
        name=name,
        # A service outlives any NATS restart: never give up, the readiness probe reports the gap.
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        allow_reconnect=True,
        connect_timeout=2,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
        error_cb=on_error,
    )
    return client
