"""A JetStream cluster of local `nats-server` processes on loopback, for tests that lose a node.

    with nats_cluster.running(directory, logs, size=3) as cluster:
        cluster.urls                    # one client URL per node
        cluster.kill(name)              # SIGKILL, as a crashed machine
        cluster.restart(name)           # same ports, same store: the node rejoins and catches up

Each node gets a config file (cluster routes and a server name cannot all be given on the command
line) and listens on fixed ports chosen up front, so that a restarted node is found where it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from .nats import answers_nats, server_binary, url
from .net import LOOPBACK, free_ports, wait_until
from .processes import ProcessSpec, RunningProcess, stop_all

CLUSTER_NAME = "mailstify-test"


@dataclass(frozen=True)
class ClusterNode:
    name: str
    client_port: int
    route_port: int
    monitor_port: int
    directory: Path

    @property
    def url(self) -> str:
        return url(self.client_port)

    @property
    def config_path(self) -> Path:
        return self.directory / "nats.conf"

    def config(self, peers: list[ClusterNode]) -> str:
        # JSON is valid NATS configuration syntax, and it quotes paths for us.
        return json.dumps(
            {
                "server_name": self.name,
                "host": LOOPBACK,
                "port": self.client_port,
                "http": f"{LOOPBACK}:{self.monitor_port}",
                "jetstream": {"store_dir": str(self.directory / "jetstream")},
                "cluster": {
                    "name": CLUSTER_NAME,
                    "host": LOOPBACK,
                    "port": self.route_port,
                    "routes": [f"nats-route://{LOOPBACK}:{peer.route_port}" for peer in peers if peer != self],
                },
            },
            indent=2,
        )

    def process_spec(self) -> ProcessSpec:
        return ProcessSpec(self.name, [str(server_binary()), "-c", str(self.config_path)])

    def jetstream_healthy(self) -> bool:
        """The server's own verdict: JetStream enabled, meta leader known, its streams current."""
        try:
            return httpx.get(f"http://{LOOPBACK}:{self.monitor_port}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False


def plan(directory: Path, size: int = 3) -> list[ClusterNode]:
    ports = free_ports(3 * size)
    return [
        ClusterNode(f"node-{chr(ord('a') + i)}", *ports[3 * i : 3 * i + 3], directory / f"node-{chr(ord('a') + i)}")
        for i in range(size)
    ]


class NatsCluster:
    def __init__(self, nodes: list[ClusterNode], log_dir: Path):
        self.nodes = {node.name: node for node in nodes}
        self._log_dir = log_dir
        self._processes: dict[str, RunningProcess] = {}

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes.values()]

    def url_of(self, name: str) -> str:
        return self.nodes[name].url

    def start(self, name: str) -> None:
        node = self.nodes[name]
        node.directory.mkdir(parents=True, exist_ok=True)
        node.config_path.write_text(node.config(list(self.nodes.values())))
        self._processes[name] = RunningProcess.start(node.process_spec(), self._log_dir / f"{name}.log")

    def wait_healthy(self, names: list[str] | None = None, timeout: float = 30.0) -> None:
        for name in names or list(self.nodes):
            node, process = self.nodes[name], self._processes[name]
            wait_until(
                lambda: answers_nats(LOOPBACK, node.client_port) and node.jetstream_healthy(),
                timeout=timeout,
                what=f"nats {name}",
                still_alive=process.alive,
            )

    def kill(self, name: str) -> None:
        """SIGKILL: no lame-duck mode, no flush, no leadership hand-over — a machine that died."""
        process = self._processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.stop()  # reaps it

    def restart(self, name: str, timeout: float = 30.0) -> None:
        self.start(name)
        self.wait_healthy([name], timeout)

    def stop(self) -> None:
        stop_all(self._processes.values())


@contextlib.contextmanager
def running(directory: Path, log_dir: Path, size: int = 3, timeout: float = 30.0) -> Iterator[NatsCluster]:
    """`size` nodes started together (a JetStream cluster elects its meta leader once a quorum is
    up), stopped by PID on exit."""
    cluster = NatsCluster(plan(directory, size), log_dir)
    try:
        for name in cluster.nodes:
            cluster.start(name)
        cluster.wait_healthy(timeout=timeout)
        yield cluster
    finally:
        cluster.stop()
