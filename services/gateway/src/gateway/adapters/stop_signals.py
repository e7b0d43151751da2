"""Knowing that the process was asked to stop, before uvicorn waits for the open responses.

uvicorn's graceful shutdown waits for every response to finish before it runs the application's
shutdown; an event stream never finishes by itself, so the streams must end when the stop signal
arrives, not when the runtime shuts down. The handler that was installed before (uvicorn's) still
runs after ours, so stopping works exactly as it did.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Awaitable, Callable
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def call_on_stop_signal(callback: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    """Run `callback` on the running event loop when SIGINT or SIGTERM arrives, then the previous
    handler. Returns the closer that puts the previous handlers back (where ours is still the one
    installed). Only the main thread may set handlers: elsewhere (a server run inside a test's
    thread) this does nothing, and the runtime's own shutdown ends the streams."""
    if threading.current_thread() is not threading.main_thread():
        return _nothing_to_restore
    loop = asyncio.get_running_loop()
    installed: dict[int, tuple[Callable[[int, FrameType | None], None], object]] = {}

    def notify() -> None:
        with contextlib.suppress(RuntimeError):  # the loop already closed: nothing left to end
            loop.call_soon_threadsafe(callback)

    for signum in STOP_SIGNALS:
        previous = signal.getsignal(signum)

        def handle(received: int, frame: FrameType | None, previous: object = previous) -> None:
            notify()
            if callable(previous):
                previous(received, frame)
            elif previous == signal.SIG_DFL:  # terminate, as without us
                signal.signal(received, signal.SIG_DFL)
                signal.raise_signal(received)

        signal.signal(signum, handle)
        installed[signum] = (handle, previous)

    async def restore() -> None:
        for signum, (handle, previous) in installed.items():
            if signal.getsignal(signum) is handle and previous is not None:
                signal.signal(signum, previous)  # type: ignore[arg-type]

    return restore


async def _nothing_to_restore() -> None:
    return None
