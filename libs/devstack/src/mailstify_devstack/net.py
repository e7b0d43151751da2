"""Loopback ports: pick free ones, wait until a server listens on one."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on right now. Another process may take it before we bind it, which on a
    test machine is rare enough that the simplicity is worth it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """`count` distinct free ports: each socket stays bound until all are picked, so none repeats."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]


def is_listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    still_alive: Callable[[], bool] = lambda: True,
    interval: float = 0.05,
) -> T:
    """Poll `condition` until it returns something truthy, and return that. Gives up early when the
    process that should satisfy it died, so a crash reads as a crash and not as a long timeout."""
    deadline = time.monotonic() + timeout
    while not (outcome := condition()):
        if not still_alive():
            raise RuntimeError(f"{what}: the process exited before it was ready")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not ready within {timeout:.0f} s")
        time.sleep(interval)
    return outcome
