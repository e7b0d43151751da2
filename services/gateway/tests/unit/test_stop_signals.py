"""A stop signal ends the event streams first and is then handled exactly as before (uvicorn's own
handler still runs), and the previous handler comes back at shutdown."""

from __future__ import annotations

import asyncio
import signal

from gateway.adapters.stop_signals import call_on_stop_signal


async def test_the_callback_runs_on_the_loop_and_the_previous_handler_still_runs() -> None:
    seen: list[str] = []

    def server_handler(signum: int, frame: object) -> None:  # stands in for uvicorn's handle_exit
        seen.append(f"server {signal.Signals(signum).name}")

    original = signal.signal(signal.SIGTERM, server_handler)
    try:
        restore = call_on_stop_signal(lambda: seen.append("streams closed"))
        signal.raise_signal(signal.SIGTERM)
        await asyncio.sleep(0)  # the callback was scheduled on the loop
        await asyncio.sleep(0)
        assert seen == ["server SIGTERM", "streams closed"]
        await restore()
        assert signal.getsignal(signal.SIGTERM) is server_handler
    finally:
        signal.signal(signal.SIGTERM, original)
