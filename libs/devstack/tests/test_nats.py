"""The session's NATS server has JetStream on."""

from __future__ import annotations

import nats

from mailstify_devstack.nats import NatsServer


async def test_nats_server_answers_jetstream_requests(nats_server: NatsServer) -> None:
    connection = await nats.connect(nats_server.url)
    try:
        info = await connection.jetstream().account_info()
    finally:
        await connection.close()

    assert info.limits is not None
