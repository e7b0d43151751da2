"""A gateway process (uvicorn, as deployed) asked to stop with browsers' event streams open ends
those streams and exits, instead of waiting for them forever (uvicorn's graceful shutdown waits
for every open response before the application's own shutdown runs)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from mailstify_devstack.inprocess import until
from mailstify_devstack.net import free_port

from .conftest import csrf, sign_up

pytestmark = pytest.mark.integration

WAIT = 30.0  # only bounds a hang


def gateway_environment(database_url: str, nats_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILSTIFY_", "OTEL_"))}
    return env | {"MAILSTIFY_DATABASE_URL": database_url, "MAILSTIFY_NATS_URL": nats_url}


async def test_a_stop_signal_ends_the_open_streams_and_the_process_exits(
    fresh_database: str, nats_server, tmp_path: Path
) -> None:
    port, log_path = free_port(), tmp_path / "gateway.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", "--factory", "gateway.entrypoints.app:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            env=gateway_environment(fresh_database, nats_server.url),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=WAIT) as client:

            async def ready() -> bool:
                assert process.returncode is None, log_path.read_text()
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await until(ready, timeout=60)
            await sign_up(client)
            key = (await client.post("/api/v1/api-keys", json={"name": "k"}, headers=csrf(client))).json()["key"]
            client.cookies.clear()
            headers = {"Authorization": f"Bearer {key}"}
            async with client.stream("GET", "/api/v1/events", headers=headers) as first, client.stream(
                "GET", "/api/v1/events", headers=headers
            ) as second:
                streams = [first.aiter_lines(), second.aiter_lines()]
                for lines in streams:
                    assert (await anext(lines)).startswith("retry: ")  # listening
                process.send_signal(signal.SIGTERM)
                async with asyncio.timeout(WAIT):
                    for lines in streams:
                        assert [line async for line in lines if line.startswith("data:")] == []
        async with asyncio.timeout(WAIT):
            await process.wait()
        # uvicorn re-raises the signal it handled once it is done, hence the signal's exit status.
        assert process.returncode in (0, -signal.SIGTERM), log_path.read_text()
        assert "Application shutdown complete" in log_path.read_text()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
